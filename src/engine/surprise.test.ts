import { describe, expect, it } from 'vitest';
import { episodeKey, SurpriseTracker } from './surprise.js';

const v = (...xs: number[]) => Float32Array.from(xs);

describe('SurpriseTracker', () => {
  it('scores an observation against the episode’s previous prediction: 1 - cosine', () => {
    const t = new SurpriseTracker();
    expect(t.observe('r', 'e', v(1, 0), v(1, 0))).toBeUndefined();
    expect(t.observe('r', 'e', v(0, 1), v(1, 1))).toBeCloseTo(1);
    expect(t.observe('r', 'e', v(2, 2), v(0, 1))).toBeCloseTo(0);
  });

  it('gives no surprise for an observation the prediction was not about, and still remembers the new prediction', () => {
    const t = new SurpriseTracker();
    t.observe('r', 'e', v(1, 0), v(1, 0));
    expect(t.observe('r', 'e', v(0, 1), v(0, 1), false)).toBeUndefined();
    // Scored against the prediction of the request that was not comparable, not the one before it.
    expect(t.observe('r', 'e', v(0, 1), v(1, 0))).toBeCloseTo(0);
  });

  it('keeps each robot’s episode apart: another robot with the same episode id neither scores against it nor changes it', () => {
    const t = new SurpriseTracker();
    expect(t.observe('robot-a', 'shared', v(1, 0), v(1, 0))).toBeUndefined();
    // Robot B's first request of "its" episode has no surprise, though A's prediction is there under that id.
    expect(t.observe('robot-b', 'shared', v(0, 1), v(0, 1))).toBeUndefined();
    // A scores against its own prediction (1, 0), not B's (0, 1).
    expect(t.observe('robot-a', 'shared', v(1, 0), v(1, 0))).toBeCloseTo(0);
    expect(t.observe('robot-b', 'shared', v(0, 1), v(0, 1))).toBeCloseTo(0);
  });

  it('forgets the least recently seen episode beyond its capacity', () => {
    const t = new SurpriseTracker(2);
    t.observe('r', 'a', v(1), v(1));
    t.observe('r', 'b', v(1), v(1));
    t.observe('r', 'c', v(1), v(1));
    expect(t.observe('r', 'a', v(1), v(1))).toBeUndefined();
    expect(t.observe('r', 'c', v(1), v(1))).toBeCloseTo(0);
  });
});

describe('episodeKey', () => {
  it('gives distinct pairs distinct keys, whatever characters the ids hold', () => {
    const pairs: Array<[string, string]> = [
      ['a', 'b\u0000c'],
      ['a\u0000b', 'c'],
      ['ab', 'c'],
      ['a', 'bc'],
      ['1:a', ''],
      ['', '1:a'],
      ['', ''],
    ];
    expect(new Set(pairs.map(([r, e]) => episodeKey(r, e))).size).toBe(pairs.length);
  });
});
