/**
 * Batch-size buckets of the native executor's denoiser calls: a step of B rows runs padded to the smallest bucket
 * that holds it, so that a CUDA graph, captured once per bucket at fixed shapes and addresses, covers every batch.
 * The buckets are the powers of two below the largest batch (maxDenoiseBatch) and that batch itself: at most half a
 * call is padding, and a few graphs cover every size. Pure.
 */

/** 1, 2, 4, ... below maxBatch, then maxBatch. */
export function batchBuckets(maxBatch: number): number[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, not ${maxBatch}`);
  const out: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) out.push(b);
  out.push(maxBatch);
  return out;
}

/** The smallest bucket holding `rows` (ascending buckets), or undefined when none does. */
export function bucketFor(rows: number, buckets: readonly number[]): number | undefined {
  return buckets.find((b) => b >= rows);
}

/** Consecutive pieces of at most `size` items: a step larger than the largest bucket runs as several calls. */
export function chunks<T extends { subarray(begin: number, end: number): T; readonly length: number }>(items: T, size: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.subarray(i, Math.min(items.length, i + size)));
  return out;
}
