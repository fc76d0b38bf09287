import { describe, expect, it } from 'vitest';
import { CostModel, stageMs, stepPeriodMs, VlmShareWindow } from './cost-model.js';

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

  it('when recent calls all had one size, still predicts other sizes from the averages measured before', () => {
    // Warm-up measured 1, 4 and 16 rows; then a lone robot's calls (all at 1 row) fill the whole recent window.
    const m = new CostModel(0.2, 8);
    for (let i = 0; i < 3; i++)
      for (const [b, ms] of [
        [1, 2],
        [4, 5],
        [16, 17],
      ])
        m.observe('step', b, ms);
    for (let i = 0; i < 8; i++) m.observe('step', 1, 2);
    // The line through (1, 2), (4, 5), (16, 17) is 1 ms a row plus 1 ms, not 2 ms a row from batch 1 alone.
    expect(m.predict('step', 8)).toBeCloseTo(9, 6);
    expect(m.predict('step', 32)).toBeCloseTo(33, 6);
    expect(m.predict('step', 4)).toBeCloseTo(5, 6);
  });

  it('follows a change in cost', () => {
    const m = new CostModel(0.5);
    for (let i = 0; i < 10; i++) m.observe('step', 4, 1);
    for (let i = 0; i < 10; i++) m.observe('step', 4, 3);
    expect(m.predict('step', 4)).toBeGreaterThan(2.9);
  });
});

describe('snapshot predictions', () => {
  it('predict from a snapshot (plain data, as the main thread gets it) as the model does', () => {
    const m = new CostModel();
    for (let i = 0; i < 5; i++)
      for (const [b, ms] of [
        [1, 2],
        [4, 3],
        [16, 7],
      ] as const)
        m.observe('step', b, ms);
    const snap = structuredClone(m.snapshot());
    for (const b of [1, 2, 4, 8, 16, 32]) expect(stageMs(snap.step, b)).toBeCloseTo(m.predict('step', b), 9);
    expect(snap.vlm.warm).toBe(false);
    expect(stageMs(snap.vlm, 4)).toBe(0);
  });
});

describe('stepPeriodMs', () => {
  const m = new CostModel();
  for (let i = 0; i < 3; i++) for (const b of [1, 2, 4]) m.observe('step', b, b);
  const step = m.snapshot().step;

  it('is one step at the batch the rows make', () => {
    expect(stepPeriodMs(step, 2, 64, 0)).toBeCloseTo(2, 6);
  });
  it('takes several rounds when more rows are active than fit in one call', () => {
    expect(stepPeriodMs(step, 8, 4, 0)).toBeCloseTo(2 * 4, 6);
  });
  it('stretches by the share of executor time VLM calls take', () => {
    expect(stepPeriodMs(step, 2, 64, 0.5)).toBeCloseTo(4, 6);
    // The share is capped: steps always get some of the executor.
    expect(Number.isFinite(stepPeriodMs(step, 2, 64, 1))).toBe(true);
  });
});

describe('VlmShareWindow', () => {
  it('is the busy fraction of the last window, forgetting older calls', () => {
    const w = new VlmShareWindow(100);
    w.record(10, 20);
    w.record(50, 30);
    expect(w.share(60)).toBeCloseTo(0.5, 9);
    expect(w.share(120)).toBeCloseTo(0.3, 9); // the call that ended at 10 left the window
    expect(w.share(1000)).toBe(0);
  });
});
