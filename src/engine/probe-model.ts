/**
 * The smallest ONNX model that makes an execution provider do real work: y = Conv(x, w), x [1, 1, 4, 4],
 * w [1, 1, 2, 2]. A Conv because ONNX Runtime's CUDA provider loads cuDNN only for kernels that need it, and a
 * missing cuDNN should show at start-up, not at the first request. Encoded here (onnx.proto field numbers) so
 * that the device probe needs no file on disk.
 */
import protobuf from 'protobufjs/minimal.js';

const FLOAT = 1;
const IR_VERSION = 8;
const OPSET = 17;
export const PROBE_INPUT_SHAPE: readonly number[] = [1, 1, 4, 4];
const WEIGHT_SHAPE = [1, 1, 2, 2] as const;

type W = protobuf.Writer;
const LEN = 2;
const VARINT = 0;
const key = (w: W, field: number, wire: number) => w.uint32((field << 3) | wire);
const str = (w: W, field: number, s: string) => key(w, field, LEN).string(s);
const int = (w: W, field: number, n: number) => key(w, field, VARINT).int64(n);
function message(w: W, field: number, body: (w: W) => void): W {
  key(w, field, LEN).fork();
  body(w);
  return w.ldelim();
}

/** ValueInfoProto of a float tensor with a fixed shape. */
function valueInfo(w: W, field: number, name: string, shape: readonly number[]): void {
  message(w, field, (v) => {
    str(v, 1, name);
    message(v, 2, (type) =>
      message(type, 1, (tensor) => {
        int(tensor, 1, FLOAT);
        message(tensor, 2, (s) => shape.forEach((d) => message(s, 1, (dim) => int(dim, 1, d))));
      }),
    );
  });
}

export function probeModel(): Uint8Array {
  const weights = new Float32Array([0.25, -0.5, 0.75, 1]);
  const w = protobuf.Writer.create();
  int(w, 1, IR_VERSION);
  str(w, 2, 'dust-serve device probe');
  message(w, 7, (graph) => {
    message(graph, 1, (node) => {
      str(node, 1, 'x');
      str(node, 1, 'w');
      str(node, 2, 'y');
      str(node, 3, 'conv');
      str(node, 4, 'Conv');
    });
    str(graph, 2, 'probe');
    message(graph, 5, (t) => {
      WEIGHT_SHAPE.forEach((d) => int(t, 1, d));
      int(t, 2, FLOAT);
      str(t, 8, 'w');
      key(t, 9, LEN).bytes(new Uint8Array(weights.buffer));
    });
    valueInfo(graph, 11, 'x', PROBE_INPUT_SHAPE);
    valueInfo(graph, 12, 'y', [1, 1, 3, 3]);
  });
  message(w, 8, (op) => int(op, 2, OPSET));
  return w.finish();
}
