import { describe, expect, it } from 'vitest';
import { SurpriseTracker } from './surprise.js';

const v = (...xs: number[]) => Float32Array.from(xs);

describe('SurpriseTracker', () => {
  it('scores an observation against the episode’s previous prediction: 1 - cosine', () => {
    const t = new SurpriseTracker();
    expect(t.observe('e', v(1, 0), v(1, 0))).toBeUndefined();
    expect(t.observe('e', v(0, 1), v(1, 1))).toBeCloseTo(1);
    expect(t.observe('e', v(2, 2), v(0, 1))).toBeCloseTo(0);
  });

  it('gives no surprise for an observation the prediction was not about, and still remembers the new prediction', () => {
    const t = new SurpriseTracker();
    t.observe('e', v(1, 0), v(1, 0));
    expect(t.observe('e', v(0, 1), v(0, 1), false)).toBeUndefined();
    // Scored against the prediction of the request that was not comparable, not the one before it.
    expect(t.observe('e', v(0, 1), v(1, 0))).toBeCloseTo(0);
  });

  it('forgets the least recently seen episode beyond its capacity', () => {
    const t = new SurpriseTracker(2);
    t.observe('a', v(1), v(1));
    t.observe('b', v(1), v(1));
    t.observe('c', v(1), v(1));
    expect(t.observe('a', v(1), v(1))).toBeUndefined();
    expect(t.observe('c', v(1), v(1))).toBeCloseTo(0);
  });
});
