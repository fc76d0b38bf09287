import { describe, expect, it } from 'vitest';
import { actionDivergence } from './divergence.js';

describe('actionDivergence', () => {
  it('is the mean over rows of the L2 distance, over the real action columns only', () => {
    // Two rows, stride 3, 2 real columns; the padding column differs wildly and must not count.
    const a = Float32Array.from([0, 0, 9, 0.5, 0.5, -9]);
    const b = Float32Array.from([0.3, 0.4, -9, 0.5, 0.5, 9]);
    expect(actionDivergence(a, b, 2, 3, 2)).toBeCloseTo((0.5 + 0) / 2, 6);
  });
  it('clips to [-1, 1] first, as the robot receives the actions', () => {
    expect(actionDivergence(Float32Array.from([5, 0]), Float32Array.from([1, 0]), 1, 2, 2)).toBe(0);
    expect(actionDivergence(Float32Array.from([-3, 0]), Float32Array.from([1, 0]), 1, 2, 2)).toBe(2);
  });
  it('is 0 for equal chunks and symmetric', () => {
    const a = Float32Array.from([0.1, -0.5, 0.3, 0.9]);
    const b = Float32Array.from([-0.2, 0.5, 0.3, 0.1]);
    expect(actionDivergence(a, a, 2, 2, 2)).toBe(0);
    expect(actionDivergence(a, b, 2, 2, 2)).toBeCloseTo(actionDivergence(b, a, 2, 2, 2), 12);
  });
  it('refuses chunks shorter than their shape', () => {
    expect(() => actionDivergence(new Float32Array(3), new Float32Array(4), 2, 2, 2)).toThrow(RangeError);
  });
});
