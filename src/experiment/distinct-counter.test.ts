import { describe, expect, it } from 'vitest';
import { DistinctCounter } from './distinct-counter.js';

describe('DistinctCounter', () => {
  it('counts each id once', () => {
    const c = new DistinctCounter();
    expect(c.add('a')).toBe(true);
    expect(c.add('a')).toBe(false);
    expect(c.add('b')).toBe(true);
    expect(c.count).toBe(2);
    expect(c.capped).toBe(false);
  });
  it('stops at its cap and says so', () => {
    const c = new DistinctCounter(2);
    c.add('a');
    c.add('b');
    expect(c.add('c')).toBe(false);
    expect(c.add('a')).toBe(false);
    expect(c.count).toBe(2);
    expect(c.capped).toBe(true);
  });
});
