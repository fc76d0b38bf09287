import { decode, encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors/index.js';
import { arrayNumbers, asNdArray, decodeFrame, OutArray, packFrame, scanFrame, type FrameLimits } from './msgpack-numpy.js';

const limits: FrameLimits = { maxBytes: 1 << 20, maxItems: 1000, maxDepth: 8 };
/** A bytes map key, as Python's msgpack packs b"...": bin 8. */
const binKey = (s: string) => Buffer.concat([Buffer.from([0xc4, s.length]), Buffer.from(s)]);

describe('scanFrame', () => {
  it('accepts every msgpack type @msgpack/msgpack writes', () => {
    const value = { a: [1, -1, 300, -40000, 2 ** 40, 1.5, true, false, null, 'x'.repeat(40), new Uint8Array(300)], b: { c: 2n ** 63n } };
    expect(() => scanFrame(encode(value, { useBigInt64: true }), limits)).not.toThrow();
  });

  it('refuses a frame over the size limit before reading it', () => {
    expect(() => scanFrame(new Uint8Array(limits.maxBytes + 1), limits)).toThrow(/above this server's limit of 1048576/);
  });

  it('refuses too many items, too deep nesting, lying lengths, trailing bytes and unused type bytes', () => {
    const many = Buffer.concat([Buffer.from([0xdd, 0, 0, 0x07, 0xd0]), Buffer.alloc(2000, 0xc0)]);
    expect(() => scanFrame(many, limits)).toThrow(/more than 1000 msgpack items/);
    expect(() => scanFrame(Buffer.concat([Buffer.alloc(20, 0x91), Buffer.from([0xc0])]), limits)).toThrow(/more than 8 deep/);
    expect(() => scanFrame(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), limits)).toThrow(/claims 4294967295 items/);
    expect(() => scanFrame(Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 1]), limits)).toThrow(/needs 4294967295 bytes, 1 remain/);
    expect(() => scanFrame(Buffer.from([0xc0, 0xc0]), limits)).toThrow(/1 bytes follow the first object/);
    expect(() => scanFrame(Buffer.from([0xc1]), limits)).toThrow(/byte 0xc1 at 0 is not a msgpack type/);
    expect(() => scanFrame(Buffer.from([]), limits)).toThrow(/needs 1 bytes, 0 remain/);
  });

  it('decodeFrame refuses anything it cannot decode with InvalidArgumentError, and nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeFrame(bytes, limits);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decodeFrame', () => {
  it('reads bytes keys (Python\'s b"__ndarray__") as strings, and refuses __proto__ keys and non-string keys', () => {
    const frame = Buffer.concat([Buffer.from([0x81]), binKey('__ndarray__'), Buffer.from([0xc3])]);
    expect(decodeFrame(frame, limits)).toEqual({ __ndarray__: true });
    expect(() => decodeFrame(Buffer.concat([Buffer.from([0x81]), binKey('__proto__'), Buffer.from([0xc0])]), limits)).toThrow(InvalidArgumentError);
    expect(() => decodeFrame(Buffer.from([0x81, 0x01, 0xc0]), limits)).toThrow(/map keys must be strings/);
  });
});

describe('asNdArray', () => {
  const nd = (dtype: string, shape: number[], data: Uint8Array) => ({ __ndarray__: true, dtype, shape, data });

  it('reads numeric arrays of every accepted dtype, in either byte order', () => {
    const f4 = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    expect(arrayNumbers(asNdArray(nd('<f4', [2], f4), 'x')!)).toEqual([1.5, -2]);
    expect(arrayNumbers(asNdArray(nd('>i2', [2], Uint8Array.from([0xff, 0xfe, 0, 7])), 'x')!)).toEqual([-2, 7]);
    expect(arrayNumbers(asNdArray(nd('<f2', [2], Uint8Array.from([0x00, 0x3c, 0x00, 0xc0])), 'x')!)).toEqual([1, -2]);
    expect(arrayNumbers(asNdArray(nd('|b1', [2], Uint8Array.from([0, 5])), 'x')!)).toEqual([0, 1]);
    expect(arrayNumbers(asNdArray(nd('<i8', [1], new Uint8Array(new BigInt64Array([-3n]).buffer)), 'x')!)).toEqual([-3]);
    expect(asNdArray({ a: 1 }, 'x')).toBeUndefined();
  });

  it('refuses object, string, structured and complex dtypes, odd sizes, and data that does not fill the shape', () => {
    expect(() => asNdArray(nd('|O', [1], new Uint8Array(8)), 'obs')).toThrow(/obs is an object array .*plain numeric arrays/);
    expect(() => asNdArray(nd('<U1', [1], new Uint8Array(4)), 'obs')).toThrow(/a string array/);
    expect(() => asNdArray(nd('|V8', [1], new Uint8Array(8)), 'obs')).toThrow(/a structured array/);
    expect(() => asNdArray(nd('<c8', [1], new Uint8Array(8)), 'obs')).toThrow(/a complex array/);
    expect(() => asNdArray(nd('<f3', [1], new Uint8Array(3)), 'obs')).toThrow(/not a plain numeric numpy dtype/);
    expect(() => asNdArray(nd('|u1', [2, 2], new Uint8Array(3)), 'obs')).toThrow(/needs 4 bytes of data, got 3/);
    expect(() => asNdArray(nd('|u1', [-1], new Uint8Array(0)), 'obs')).toThrow(/non-negative integers/);
    expect(() => asNdArray({ __ndarray__: true, dtype: '|u1', shape: [1], data: 'x' }, 'obs')).toThrow(/data must be bytes/);
  });
});

describe('packFrame', () => {
  it('writes arrays as openpi_client reads them: bin keys, dtype <f4, the shape, little-endian data', () => {
    const bytes = packFrame({ actions: OutArray.ofFloats(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]) });
    expect(Buffer.from(bytes).includes(binKey('__ndarray__'))).toBe(true);
    const out = decode(bytes, { mapKeyConverter: (k) => (typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString()) }) as {
      actions: { __ndarray__: boolean; dtype: string; shape: number[]; data: Uint8Array };
    };
    expect(out.actions).toMatchObject({ __ndarray__: true, dtype: '<f4', shape: [2, 3] });
    expect([...new Float32Array(Uint8Array.from(out.actions.data).buffer)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('round-trips scalars, strings, lists, maps and uint64 through a standard decoder', () => {
    const value = { a: 0, b: 127, c: 70000, d: -5, e: -(2 ** 40), f: 0.25, g: 'é'.repeat(40), h: [true, false, null], i: { j: 'k' }, seed: 2n ** 64n - 1n };
    expect(decode(packFrame(value), { useBigInt64: true })).toEqual({ ...value, e: -(2 ** 40), seed: 2n ** 64n - 1n });
    const long = Array.from({ length: 70000 }, (_, i) => i % 100);
    expect(decode(packFrame({ long }))).toEqual({ long });
  });
});
