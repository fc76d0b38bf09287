/**
 * Token buckets keyed by a client identity (the robot), with bounded memory: the least recently used key is
 * forgotten past `maxKeys`, which only ever hands that key a fresh (full) bucket. Pure: the caller passes
 * the time.
 */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size: the burst a quiet client may send at once. */
  readonly burst: number;
  /** Most keys remembered. */
  readonly maxKeys: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used key first.
  private readonly buckets = new Map<string, Bucket>();

  constructor(readonly options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1) || !(options.maxKeys >= 1)) {
      throw new RangeError('token buckets need ratePerSecond > 0, burst >= 1 and maxKeys >= 1');
    }
  }

  /** Takes a token for `key` at `nowMs`: 0 when granted, else the milliseconds until one is available. */
  take(key: string, nowMs: number): number {
    const { ratePerSecond, burst, maxKeys } = this.options;
    const found = this.buckets.get(key);
    const bucket = found ?? { tokens: burst, at: nowMs };
    if (found) {
      this.buckets.delete(key);
      bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, nowMs - bucket.at) * ratePerSecond) / 1000);
      bucket.at = nowMs;
    }
    this.buckets.set(key, bucket);
    if (this.buckets.size > maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / ratePerSecond);
  }

  get size(): number {
    return this.buckets.size;
  }
}
