import { describe, expect, it } from 'vitest';
import { actionDivergence, type ActionChunk } from './divergence.js';

const chunk = (values: number[], rows: number, stride: number): ActionChunk => ({ values: Float32Array.from(values), rows, stride });

describe('actionDivergence', () => {
  it('is the mean over rows of the L2 distance, over the real action columns only', () => {
    // Two rows, stride 3, 2 real columns; the padding column differs wildly and must not count.
    const a = chunk([0, 0, 9, 0.5, 0.5, -9], 2, 3);
    const b = chunk([0.3, 0.4, -9, 0.5, 0.5, 9], 2, 3);
    expect(actionDivergence(a, b, 2)).toBeCloseTo((0.5 + 0) / 2, 6);
  });
  it('clips to [-1, 1] first, as the robot receives the actions', () => {
    expect(actionDivergence(chunk([5, 0], 1, 2), chunk([1, 0], 1, 2), 2)).toBe(0);
    expect(actionDivergence(chunk([-3, 0], 1, 2), chunk([1, 0], 1, 2), 2)).toBe(2);
  });
  it('compares the rows both have when horizons and paddings differ', () => {
    const a = chunk([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3, 2);
    const b = chunk([0.1, 0.2, 0, 0.3, 0.4, 0], 2, 3);
    expect(actionDivergence(a, b, 2)).toBe(0);
  });
  it('is 0 for equal chunks and symmetric', () => {
    const a = chunk([0.1, -0.5, 0.3, 0.9], 2, 2);
    const b = chunk([-0.2, 0.5, 0.3, 0.1], 2, 2);
    expect(actionDivergence(a, a, 2)).toBe(0);
    expect(actionDivergence(a, b, 2)).toBeCloseTo(actionDivergence(b, a, 2), 12);
  });
  it('refuses chunks shorter than their shape', () => {
    expect(() => actionDivergence(chunk([0, 0, 0], 2, 2), chunk([0, 0, 0, 0], 2, 2), 2)).toThrow(RangeError);
  });
});
