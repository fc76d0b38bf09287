import { describe, expect, it } from 'vitest';
import { TokenBuckets } from './token-buckets.js';

describe('TokenBuckets', () => {
  it('grants a burst, then one token per 1/rate seconds, and says how long to wait', () => {
    const b = new TokenBuckets({ ratePerSecond: 10, burst: 3, maxKeys: 10 });
    expect([b.take('r1', 0), b.take('r1', 0), b.take('r1', 0)]).toEqual([0, 0, 0]);
    expect(b.take('r1', 0)).toBe(100);
    expect(b.take('r1', 40)).toBe(60);
    expect(b.take('r1', 100)).toBe(0);
    expect(b.take('r1', 100)).toBe(100);
  });

  it('keeps robots apart', () => {
    const b = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 10 });
    expect(b.take('a', 0)).toBe(0);
    expect(b.take('a', 0)).toBeGreaterThan(0);
    expect(b.take('b', 0)).toBe(0);
  });

  it('refills up to the burst only', () => {
    const b = new TokenBuckets({ ratePerSecond: 100, burst: 2, maxKeys: 10 });
    b.take('r', 0);
    const granted = [0, 0, 0].map(() => b.take('r', 60_000)).filter((w) => w === 0).length;
    expect(granted).toBe(2);
  });

  it('remembers at most maxKeys robots, forgetting the least recently used', () => {
    const b = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 2 });
    b.take('a', 0);
    b.take('b', 0);
    b.take('a', 0); // a is now the most recent
    b.take('c', 0); // evicts b
    expect(b.size).toBe(2);
    expect(b.take('a', 0)).toBeGreaterThan(0); // a kept its empty bucket
    expect(b.take('b', 0)).toBe(0); // b was forgotten: a fresh bucket
  });

  it('refuses nonsense settings', () => {
    expect(() => new TokenBuckets({ ratePerSecond: 0, burst: 1, maxKeys: 1 })).toThrow(RangeError);
  });
});
