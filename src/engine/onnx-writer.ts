/**
 * Just enough of onnx.proto's encoding (field numbers of ModelProto, GraphProto, NodeProto, TensorProto,
 * ValueInfoProto) to write the server's own small graphs in code: the device probe (probe-model.ts) and the native
 * executor's Euler update and copy graphs (executor-graphs.ts). No file on disk, nothing generated to keep in step.
 */
import protobuf from 'protobufjs/minimal.js';

/** TensorProto.DataType values. */
export const ONNX_TYPE = { float32: 1, uint8: 2, int64: 7, float64: 11 } as const;
export type OnnxType = keyof typeof ONNX_TYPE;

const IR_VERSION = 8;
const OPSET = 17;

export type W = protobuf.Writer;
const LEN = 2;
const VARINT = 0;
export const key = (w: W, field: number, wire: number) => w.uint32((field << 3) | wire);
export const str = (w: W, field: number, s: string) => key(w, field, LEN).string(s);
export const int = (w: W, field: number, n: number) => key(w, field, VARINT).int64(n);
export function message(w: W, field: number, body: (w: W) => void): W {
  key(w, field, LEN).fork();
  body(w);
  return w.ldelim();
}

/** A dimension: a size, or a symbol's name (a dynamic axis). */
export type Dim = number | string;

/** ValueInfoProto of a tensor (GraphProto field 11 for inputs, 12 for outputs). */
export function valueInfo(w: W, field: 11 | 12, name: string, type: OnnxType, shape: readonly Dim[]): void {
  message(w, field, (v) => {
    str(v, 1, name);
    message(v, 2, (t) =>
      message(t, 1, (tensor) => {
        int(tensor, 1, ONNX_TYPE[type]);
        message(tensor, 2, (s) => shape.forEach((d) => message(s, 1, (dim) => (typeof d === 'number' ? int(dim, 1, d) : str(dim, 2, d)))));
      }),
    );
  });
}

export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Integer attributes (Cast's `to`). */
  readonly ints?: Readonly<Record<string, number>>;
}

export function node(w: W, n: OnnxNode, index: number): void {
  message(w, 1, (m) => {
    n.inputs.forEach((i) => str(m, 1, i));
    n.outputs.forEach((o) => str(m, 2, o));
    str(m, 3, `${n.op.toLowerCase()}_${index}`);
    str(m, 4, n.op);
    for (const [name, value] of Object.entries(n.ints ?? {}))
      message(m, 5, (a) => {
        str(a, 1, name);
        int(a, 3, value);
        int(a, 20, 2); // AttributeProto.INT
      });
  });
}

/** A ModelProto around the graph that `body` writes (nodes, initializers, inputs, outputs). */
export function model(producer: string, graphName: string, body: (graph: W) => void): Uint8Array {
  const w = protobuf.Writer.create();
  int(w, 1, IR_VERSION);
  str(w, 2, producer);
  message(w, 7, (graph) => {
    body(graph);
    str(graph, 2, graphName);
  });
  message(w, 8, (op) => int(op, 2, OPSET));
  return w.finish();
}
