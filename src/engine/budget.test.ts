import { describe, expect, it } from 'vitest';
import { planVisionSteps, stepEnds, type PlanQuery } from './budget.js';
import { CostModel, type StageCost } from './cost-model.js';

/** A step cost model that has seen these (batch, ms) pairs often enough to trust them. */
function stepCost(ms: (batch: number) => number, sizes = [1, 2, 4, 8, 16, 32, 64]): StageCost {
  const m = new CostModel();
  for (let i = 0; i < 3; i++) for (const b of sizes) m.observe('step', b, ms(b));
  return m.snapshot().step;
}

const flat = stepCost(() => 2);
const base: PlanQuery = {
  now: 0,
  receivedAt: 0,
  budgetMs: 100,
  actionSteps: 4,
  maxVisionSteps: 64,
  rows: [],
  waiting: 0,
  load: { arrivalsPerMs: 0, meanSteps: 4, vlmShare: 0, meanBatch: 0, responsePathMs: 0 },
  step: flat,
  maxBatch: 64,
  safety: 1,
  headroom: 0,
};

describe('planVisionSteps', () => {
  it('on an idle stage picks the largest multiple of N_A that fits, and reports its finish', () => {
    expect(planVisionSteps(base)).toEqual({ visionSteps: 48, finish: 96, feasible: true, promise: 100 });
  });

  it('never exceeds the cap, and plans safety x budget', () => {
    expect(planVisionSteps({ ...base, maxVisionSteps: 16 }).visionSteps).toBe(16);
    expect(planVisionSteps({ ...base, safety: 0.5 }).visionSteps).toBe(24);
  });

  it('counts the time already spent and the response path', () => {
    expect(planVisionSteps({ ...base, now: 20 }).visionSteps).toBe(40);
    const p = planVisionSteps({ ...base, load: { ...base.load, responsePathMs: 10 } });
    expect(p.visionSteps).toBe(44);
    expect(p.finish).toBe(98);
  });

  it('falls back to N_A at once, and says so, when even N_A cannot fit', () => {
    const p = planVisionSteps({ ...base, now: 95 });
    expect(p).toMatchObject({ visionSteps: 4, feasible: false, promise: undefined });
    expect(p.finish).toBe(103);
  });

  it('plans with the arrivals expected over the row\'s life, as if they scale up as far as it does', () => {
    // 1 ms + 1 ms per row, like a compute-bound model on a CPU.
    const linear = stepCost((b) => 1 + b);
    const idle = planVisionSteps({ ...base, step: linear, budgetMs: 200 });
    // 0.1 requests/ms: each row raises the step time for everyone.
    const load = { ...base.load, arrivalsPerMs: 0.1 };
    const loaded = planVisionSteps({ ...base, step: linear, budgetMs: 200, load });
    expect(idle.visionSteps).toBeGreaterThan(loaded.visionSteps);
    // The plan holds in the steady state it assumes, when every request takes as many steps: the executor
    // keeps up (0.1 * N_o row-steps per ms at 1 ms each) and a row's life stays within the budget.
    const N = loaded.visionSteps;
    expect(0.1 * N).toBeLessThan(1);
    const ends = stepEnds({ ...base, step: linear, load: { ...load, meanSteps: N } }, N, 10 * N);
    expect(ends[10 * N] - ends[9 * N]).toBeLessThanOrEqual(200);
  });

  it('does not plan an N_o the executor could not sustain if every request took it', () => {
    const linear = stepCost((b) => 1 + b);
    // 0.2 requests/ms * N_o steps * 1 ms per row-step must stay below 1: N_o < 5, so N_A only.
    const p = planVisionSteps({ ...base, step: linear, budgetMs: 10_000, load: { ...base.load, arrivalsPerMs: 0.2 } });
    expect(p.visionSteps).toBe(4);
  });

  it('plans fewer steps with more headroom for fluctuating arrivals', () => {
    const linear = stepCost((b) => 1 + b);
    const q = { ...base, step: linear, budgetMs: 200, load: { ...base.load, arrivalsPerMs: 0.05 } };
    expect(planVisionSteps({ ...q, headroom: 2 }).visionSteps).toBeLessThan(planVisionSteps(q).visionSteps);
  });

  it('does not push a row admitted earlier past its promise', () => {
    // Each extra row costs 1 ms per step. The earlier row has 20 steps left and may end no later than 50.
    const linear = stepCost((b) => 1 + b);
    const q = { ...base, step: linear, budgetMs: 1000, rows: [{ remainingSteps: 20, promise: 50 }] };
    // Alongside the newcomer a step takes 3 ms, else 2: with N_o = 8 the row ends at 8 * 3 + 12 * 2 = 48, with
    // 12 at 52.
    expect(planVisionSteps(q).visionSteps).toBe(8);
    // Without the promise it would take the cap.
    expect(planVisionSteps({ ...q, rows: [{ remainingSteps: 20, promise: undefined }] }).visionSteps).toBe(64);
    // A promise far away leaves room.
    expect(planVisionSteps({ ...q, rows: [{ remainingSteps: 20, promise: 1000 }] }).visionSteps).toBe(64);
  });

  it('lets a newcomer scale up once its extra steps come after the earlier row is done', () => {
    const linear = stepCost((b) => 1 + b);
    // 4 steps left: with the newcomer they take 4 * 3 = 12 ms, within the promise of 12; whatever the newcomer
    // does after that cannot touch the earlier row.
    const p = planVisionSteps({ ...base, step: linear, budgetMs: 1000, rows: [{ remainingSteps: 4, promise: 12 }] });
    expect(p.visionSteps).toBe(64);
  });

  it('waiting requests count as rows that join at once', () => {
    const linear = stepCost((b) => 1 + b);
    const q = { ...base, step: linear, budgetMs: 100 };
    expect(planVisionSteps({ ...q, waiting: 10 }).visionSteps).toBeLessThan(planVisionSteps(q).visionSteps);
  });

  it('plans no smaller batch than the traffic recently made', () => {
    const linear = stepCost((b) => 1 + b);
    const q = { ...base, step: linear, budgetMs: 100 };
    expect(planVisionSteps({ ...q, load: { ...q.load, meanBatch: 20 } }).visionSteps).toBeLessThan(planVisionSteps(q).visionSteps);
  });

  it('without any measured step time, runs N_A', () => {
    const cold = new CostModel().snapshot().step;
    expect(planVisionSteps({ ...base, step: cold })).toMatchObject({ visionSteps: 4, feasible: true });
  });
});
