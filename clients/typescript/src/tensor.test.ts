import { describe, expect, it } from 'vitest';
import { decodeTensor, encodeTensor, shortestFloat32, tensorRows, tensorToArrays } from './tensor.js';

describe('decodeTensor', () => {
  it('reads float32 little-endian, row-major', () => {
    // 1.0 = 00 00 80 3f, -2.5 = 00 00 20 c0 (little-endian)
    const bytes = Uint8Array.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0]);
    const t = decodeTensor([1, 2], bytes);
    expect(t.shape).toEqual([1, 2]);
    expect(Array.from(t.data)).toEqual([1, -2.5]);
  });

  it('reads a tensor at an unaligned offset of a larger buffer, as grpc-js hands them out', () => {
    const encoded = encodeTensor([2, 2], [0.5, -1, 3, 1e-3]).data;
    const backing = new Uint8Array(encoded.length + 3);
    backing.set(encoded, 3);
    const t = decodeTensor([2, 2], backing.subarray(3));
    expect(Array.from(t.data)).toEqual([0.5, -1, 3, Math.fround(1e-3)]);
  });

  it('rejects a byte count that does not match the shape', () => {
    expect(() => decodeTensor([2, 3], new Uint8Array(20))).toThrow(/needs 24 bytes, got 20/);
  });

  it('round-trips through encodeTensor', () => {
    const values = [0, -0, 1.5, -3.25, 65504, Math.fround(Math.PI)];
    const { shape, data } = encodeTensor([3, 2], values);
    expect(Array.from(decodeTensor(shape, data).data)).toEqual(values);
  });
});

describe('tensorRows', () => {
  it('splits a [steps, dims] tensor into one row per step that share memory', () => {
    const t = decodeTensor([3, 2], encodeTensor([3, 2], [1, 2, 3, 4, 5, 6]).data);
    const rows = tensorRows(t);
    expect(rows.map((r) => Array.from(r))).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    rows[1][0] = 9;
    expect(t.data[2]).toBe(9);
  });

  it('gives zero rows for an empty chunk and refuses 3-D tensors', () => {
    expect(tensorRows({ shape: [0, 7], data: new Float32Array(0) })).toEqual([]);
    expect(() => tensorRows({ shape: [1, 1, 1], data: new Float32Array(1) })).toThrow(/1-D or 2-D/);
  });
});

describe('tensorToArrays', () => {
  it('prints float32 values as their shortest decimals', () => {
    const t = { shape: [1, 3], data: Float32Array.from([0.1, -0.2, 1 / 3]) };
    expect(tensorToArrays(t)).toEqual([[0.1, -0.2, 0.33333334]]);
  });

  it('keeps every float32 exactly recoverable', () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 20) - 10));
    const back = Float32Array.from(tensorToArrays({ shape: [1000, 1], data }).map((r) => r[0]));
    expect(back).toEqual(data);
  });

  it('leaves zero and non-finite values alone', () => {
    expect([0, Infinity, -Infinity].map(shortestFloat32)).toEqual([0, Infinity, -Infinity]);
    expect(shortestFloat32(NaN)).toBeNaN();
  });
});
