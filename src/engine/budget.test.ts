import { describe, expect, it } from 'vitest';
import { arrivalStay, finishAlone, planVisionSteps, stepEnds, steadyRows, type PlanQuery } from './budget.js';
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

  it("plans with the arrivals expected over the row's life, staying as long as the traffic's mean N_o once it has joined", () => {
    // 1 ms + 1 ms per row, like a compute-bound model on a CPU.
    const linear = stepCost((b) => 1 + b);
    const idle = planVisionSteps({ ...base, step: linear, budgetMs: 200 });
    // 0.1 requests/ms: each row raises the step time for everyone.
    const load = { ...base.load, arrivalsPerMs: 0.1 };
    const q = { ...base, step: linear, budgetMs: 200, load };
    const loaded = planVisionSteps(q);
    expect(idle.visionSteps).toBeGreaterThan(loaded.visionSteps);
    expect(loaded.visionSteps).toBeGreaterThan(4);
    // The arrivals stay the moving average of N_o moved by this row (weight 0.05), and the plan holds in the
    // steady state of that traffic: the executor keeps up (0.1 * S row-steps per ms at 1 ms each) and the
    // row's life there stays within the budget.
    const N = loaded.visionSteps;
    const S = arrivalStay(q, N);
    expect(S).toBeCloseTo(4 + 0.05 * (N - 4), 9);
    expect(0.1 * S).toBeLessThan(1);
    const ends = stepEnds(q, N, 10 * N);
    expect(ends[10 * N] - ends[9 * N]).toBeLessThanOrEqual(200);
  });

  it("scales a row above the traffic's mean N_o while the executor could still keep up with the mean after it", () => {
    const linear = stepCost((b) => 1 + b);
    // 0.2 requests/ms * S steps * 1 ms per row-step must stay below 1: S < 5. The mean is 4, and a row of N_o
    // moves it to 4 + 0.05 (N_o - 4), below 5 for N_o < 24: the largest multiple of 4 is 20.
    const q = { ...base, step: linear, budgetMs: 10_000, load: { ...base.load, arrivalsPerMs: 0.2 } };
    expect(planVisionSteps(q).visionSteps).toBe(20);
    expect(steadyRows(q, 20)).toBeDefined();
    expect(steadyRows(q, 24)).toBeUndefined();
  });

  it("does not scale up once the traffic's mean N_o is at what the executor can sustain", () => {
    const linear = stepCost((b) => 1 + b);
    // A mean of 4.9 steps at 0.2 requests/ms: even N_o = 8 would move it past 5.
    const p = planVisionSteps({ ...base, step: linear, budgetMs: 10_000, load: { ...base.load, arrivalsPerMs: 0.2, meanSteps: 4.9 } });
    expect(p).toMatchObject({ visionSteps: 4, feasible: true });
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

describe('finishAlone (what sheds a strict budget)', () => {
  const linear = stepCost((b) => 1 + b);
  it('counts the rows present, those waiting and the response path, but no arrivals', () => {
    // 3 rows with 10 steps left, 1 waiting, this row: 5 rows, 6 ms a step, 4 steps, 2 ms to respond.
    const q: PlanQuery = {
      ...base,
      now: 5,
      step: linear,
      rows: [1, 2, 3].map(() => ({ remainingSteps: 10, promise: undefined })),
      waiting: 1,
      load: { ...base.load, responsePathMs: 2 },
    };
    expect(finishAlone(q)).toBe(5 + 4 * 6 + 2);
    const busy = { ...q, load: { ...q.load, arrivalsPerMs: 1, meanSteps: 16 }, headroom: 2 };
    expect(finishAlone(busy)).toBe(finishAlone(q));
    // The planner's forecast of that traffic finds N_A too late for a 31 ms budget, which the row makes alone.
    expect(planVisionSteps({ ...busy, budgetMs: 31 }).feasible).toBe(false);
  });
  it('is undefined while nothing is measured', () => {
    expect(finishAlone({ ...base, step: new CostModel().snapshot().step })).toBeUndefined();
  });
});
