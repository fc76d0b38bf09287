/**
 * The smallest ONNX model that makes an execution provider do real work: y = Conv(x, w), x [1, 1, 4, 4],
 * w [1, 1, 2, 2]. A Conv because ONNX Runtime's CUDA provider loads cuDNN only for kernels that need it, and a
 * missing cuDNN should show at start-up, not at the first request. Written in code (onnx-writer.ts) so that the
 * device probe needs no file on disk.
 */
import { int, key, message, model, node, ONNX_TYPE, str, valueInfo } from './onnx-writer.js';

export const PROBE_INPUT_SHAPE: readonly number[] = [1, 1, 4, 4];
const WEIGHT_SHAPE = [1, 1, 2, 2] as const;
const LEN = 2;

export function probeModel(): Uint8Array {
  const weights = new Float32Array([0.25, -0.5, 0.75, 1]);
  return model('dust-serve device probe', 'probe', (graph) => {
    node(graph, { op: 'Conv', inputs: ['x', 'w'], outputs: ['y'] }, 0);
    message(graph, 5, (t) => {
      WEIGHT_SHAPE.forEach((d) => int(t, 1, d));
      int(t, 2, ONNX_TYPE.float32);
      str(t, 8, 'w');
      key(t, 9, LEN).bytes(new Uint8Array(weights.buffer));
    });
    valueInfo(graph, 11, 'x', 'float32', PROBE_INPUT_SHAPE);
    valueInfo(graph, 12, 'y', 'float32', [1, 1, 3, 3]);
  });
}
