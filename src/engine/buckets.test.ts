import { describe, expect, it } from 'vitest';
import { batchBuckets, bucketFor, chunks } from './buckets.js';

describe('batch-size buckets', () => {
  it('are the powers of two below the largest batch, then the largest batch', () => {
    expect(batchBuckets(64)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(batchBuckets(5)).toEqual([1, 2, 4, 5]);
    expect(batchBuckets(1)).toEqual([1]);
    expect(() => batchBuckets(0)).toThrow(RangeError);
  });

  it('pad a batch to the smallest bucket that holds it, at most doubling it', () => {
    const buckets = batchBuckets(64);
    expect([1, 2, 3, 5, 17, 33, 64].map((n) => bucketFor(n, buckets))).toEqual([1, 2, 4, 8, 32, 64, 64]);
    expect(bucketFor(65, buckets)).toBeUndefined();
    for (let n = 1; n <= 64; n++) expect(bucketFor(n, buckets)!).toBeLessThan(2 * n);
  });

  it('split a step larger than the largest bucket into calls that each fit', () => {
    const slots = Int32Array.from({ length: 10 }, (_, i) => i);
    expect(chunks(slots, 4).map((c) => [...c])).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    expect(chunks(slots, 16)).toHaveLength(1);
  });
});
