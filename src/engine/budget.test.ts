import { describe, expect, it } from 'vitest';
import { chooseVisionSteps } from './budget.js';

describe('chooseVisionSteps', () => {
  const base = { actionSteps: 4, maxVisionSteps: 64, activeRows: 0, others: [], safety: 1 };
  it('picks the largest multiple of N_A that fits', () => {
    const c = chooseVisionSteps({ ...base, remainingMs: 50, stepPeriodMs: () => 2 });
    expect(c).toEqual({ visionSteps: 24, predictedMs: 48, fits: true });
  });
  it('never exceeds the cap', () => {
    expect(chooseVisionSteps({ ...base, maxVisionSteps: 16, remainingMs: 1000, stepPeriodMs: () => 1 }).visionSteps).toBe(16);
  });
  it('falls back to N_A and says it will not fit', () => {
    expect(chooseVisionSteps({ ...base, remainingMs: 5, stepPeriodMs: () => 2 })).toEqual({ visionSteps: 4, predictedMs: 8, fits: false });
  });
  it('holds back when joining would push another budgeted row past its budget', () => {
    // Joining raises the period from 1 to 2 ms; the other row has 10 steps left and 14 ms of budget.
    const q = { ...base, remainingMs: 1000, activeRows: 1, stepPeriodMs: (n: number) => n, others: [{ remainingSteps: 10, remainingBudgetMs: 14 }] };
    expect(chooseVisionSteps(q).visionSteps).toBe(4);
    expect(chooseVisionSteps({ ...q, others: [{ remainingSteps: 10, remainingBudgetMs: 100 }] }).visionSteps).toBe(64);
  });
});
