import { describe, expect, it } from 'vitest';
import { CostModel } from './cost-model.js';

describe('CostModel', () => {
  it('predicts 0 when cold, an observed size from its average, and unseen sizes from a line', () => {
    const m = new CostModel();
    expect(m.isWarm('step')).toBe(false);
    expect(m.predict('step', 8)).toBe(0);
    for (let i = 0; i < 5; i++) {
      m.observe('step', 1, 2);
      m.observe('step', 16, 5);
    }
    expect(m.predict('step', 1)).toBeCloseTo(2, 6);
    expect(m.predict('step', 16)).toBeCloseTo(5, 6);
    // Linear between 1 -> 2 ms and 16 -> 5 ms: 8 rows -> 3.4 ms.
    expect(m.predict('step', 8)).toBeCloseTo(3.4, 1);
    expect(m.predict('vlm', 8)).toBe(0);
  });

  it('extrapolates from a single observed size no faster than linearly', () => {
    const m = new CostModel();
    m.observe('vlm', 4, 8);
    expect(m.predict('vlm', 2)).toBe(8);
    expect(m.predict('vlm', 8)).toBe(16);
  });

  it('follows a change in cost', () => {
    const m = new CostModel(0.5);
    for (let i = 0; i < 10; i++) m.observe('step', 4, 1);
    for (let i = 0; i < 10; i++) m.observe('step', 4, 3);
    expect(m.predict('step', 4)).toBeGreaterThan(2.9);
  });
});
