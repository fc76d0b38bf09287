/** Tensors on the wire: float32 little-endian, row-major (docs/api.md, PredictResponse). Pure. */

/** A decoded float32 tensor. `data` holds the values row-major; `shape` its dimensions. */
export interface FloatTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const FLOAT32_BYTES = 4;

/**
 * Decodes a wire tensor. Copies through a DataView, so the result is correct on any host byte order and
 * for any byte offset of `data` (grpc-js hands out slices of larger buffers, not aligned to 4).
 * Throws a RangeError when the byte count does not match the shape.
 */
export function decodeTensor(shape: readonly number[], data: Uint8Array): FloatTensor {
  const count = shape.reduce((n, d) => n * d, 1);
  if (data.byteLength !== count * FLOAT32_BYTES) {
    throw new RangeError(`tensor of shape [${shape.join(', ')}] needs ${count * FLOAT32_BYTES} bytes, got ${data.byteLength}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * FLOAT32_BYTES, true);
  return { shape: [...shape], data: values };
}

/** Encodes values as a wire tensor (the inverse of decodeTensor). */
export function encodeTensor(shape: readonly number[], values: ArrayLike<number>): { shape: number[]; data: Uint8Array } {
  const count = shape.reduce((n, d) => n * d, 1);
  if (values.length !== count) throw new RangeError(`shape [${shape.join(', ')}] needs ${count} values, got ${values.length}`);
  const data = new Uint8Array(count * FLOAT32_BYTES);
  const view = new DataView(data.buffer);
  for (let i = 0; i < count; i++) view.setFloat32(i * FLOAT32_BYTES, values[i], true);
  return { shape: [...shape], data };
}

/**
 * The rows of a 2-D tensor (e.g. the action chunk: one row per action step), as views into `data` that
 * share its memory. A 1-D tensor is one row.
 */
export function tensorRows(tensor: FloatTensor): Float32Array[] {
  if (tensor.shape.length === 1) return [tensor.data];
  if (tensor.shape.length !== 2) throw new RangeError(`tensorRows needs a 1-D or 2-D tensor, got shape [${tensor.shape.join(', ')}]`);
  const [rows, cols] = tensor.shape;
  const out: Float32Array[] = [];
  for (let r = 0; r < rows; r++) out.push(tensor.data.subarray(r * cols, (r + 1) * cols));
  return out;
}

/** A 2-D tensor as nested plain arrays (for JSON), each value printed as the shortest decimal that reads back to the same float32. */
export function tensorToArrays(tensor: FloatTensor): number[][] {
  return tensorRows(tensor).map((row) => Array.from(row, shortestFloat32));
}

/** The shortest decimal that parses back to the same float32 (0.1f is 0.1, not 0.10000000149011612). */
export function shortestFloat32(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const f = Math.fround(value);
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(f.toPrecision(digits));
    if (Math.fround(candidate) === f) return candidate;
  }
  return Number(f.toPrecision(9));
}
