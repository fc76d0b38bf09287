import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, sliceOf } from '../config/index.js';
import { CancelledError, DeadlineExceededError, InferenceError, OverloadedError, UnavailableError } from '../errors/index.js';
import type { BatchEvent } from './batch-report.js';
import type { JobInput, JobResult } from './job.js';
import { Scheduler, type SchedulerListeners, type SchedulerOptions } from './scheduler.js';
import { FakeExecutor, ManualClock, TEST_SHAPES } from './testing/fakes.js';

function setup(options: Partial<SchedulerOptions> = {}, capacity = 64, cost?: ConstructorParameters<typeof FakeExecutor>[2], listeners?: SchedulerListeners) {
  const clock = new ManualClock();
  const executor = new FakeExecutor(clock, capacity, cost);
  const scheduler = new Scheduler(executor, clock, { ...sliceOf(DEFAULT_SERVE_OPTIONS, 'scheduler'), maxQueueDelayMs: 2, ...options }, listeners);
  let id = 0;
  const job = (over: Partial<JobInput> & { value?: number } = {}): JobInput => {
    const value = over.value ?? ++id;
    const s = TEST_SHAPES;
    return {
      requestId: `r${value}`,
      robotId: over.robotId ?? `robot-${value}`,
      embodimentId: 0,
      pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth),
      inputIds: new BigInt64Array(s.textTokens),
      attentionMask: new BigInt64Array(s.textTokens),
      state: new Float32Array(s.stateDim).fill(value),
      noise: { actions: new Float32Array(s.horizon * s.actionDim), future: new Float32Array(s.futureTokens * s.futureDim) },
      actionSteps: 4,
      visionSteps: 4,
      budgetMs: 0,
      receivedAt: clock.now(),
      deadline: Infinity,
      ...over,
    };
  };
  return { clock, executor, scheduler, job };
}

/** Collects a submission's outcome without an unhandled rejection. */
function track(p: Promise<JobResult>) {
  const out: { result?: JobResult; error?: unknown; at?: number } = {};
  p.then(
    (r) => (out.result = r),
    (e) => (out.error = e),
  );
  return out;
}

describe('Scheduler: step-level batching', () => {
  it('returns each row its own result even as rows join, leave and move slots', async () => {
    const { clock, scheduler, job } = setup();
    const a = track(scheduler.submit(job({ value: 3, visionSteps: 16 })));
    const b = track(scheduler.submit(job({ value: 5, visionSteps: 4 })));
    await clock.advance(3);
    const c = track(scheduler.submit(job({ value: 7, actionSteps: 2, visionSteps: 8 })));
    await clock.advance(1000);
    for (const [t, v] of [
      [a, 3],
      [b, 5],
      [c, 7],
    ] as const) {
      expect(t.error).toBeUndefined();
      expect(Array.from(t.result!.actions)).toEqual(new Array(4).fill(v));
      expect(t.result!.future[0]).toBeCloseTo(v, 5);
    }
    expect(a.result!.visionSteps).toBe(16);
    expect(c.result!.actionSteps).toBe(2);
  });

  it('a 4-step request joins a running batch and leaves before a 64-step one finishes', async () => {
    const { clock, executor, scheduler, job } = setup();
    const long = track(scheduler.submit(job({ value: 1, visionSteps: 64 })));
    await clock.advance(20); // the long one is denoising
    const t0 = clock.now();
    const short = track(scheduler.submit(job({ value: 2, visionSteps: 4 })));
    let shortDoneAt = NaN;
    // On the injected clock, bounded: a short request that never finishes fails the assertions below.
    for (let ms = 0; ms < 1000 && !short.result && !short.error; ms++) {
      await clock.advance(1);
      if (short.result) shortDoneAt = clock.now();
    }
    expect(long.result).toBeUndefined();
    // Joined at once: VLM + 4 steps at batch 2, nowhere near the 64-step request's remaining time.
    expect(shortDoneAt - t0).toBeLessThan(4 + 0.5 + 2 + 4 * 1.3 + 2);
    const shared = executor.calls.filter((c) => c.kind === 'step' && c.rows.includes(1) && c.rows.includes(2));
    expect(shared).toHaveLength(4);
    // Rows at different steps share a call with their own flow times.
    expect(new Set(shared[0].tauO).size).toBe(2);
    await clock.advance(1000);
    expect(long.result!.actions[0]).toBe(1);
  });

  it('mixes q within one denoiser call (per-row tau_a and tau_o)', async () => {
    const { clock, executor, scheduler, job } = setup();
    track(scheduler.submit(job({ value: 1, actionSteps: 4, visionSteps: 4 })));
    track(scheduler.submit(job({ value: 2, actionSteps: 2, visionSteps: 8 })));
    await clock.advance(100);
    const first = executor.calls.find((c) => c.kind === 'step')!;
    expect(first.rows).toEqual([1, 2]);
    const second = executor.calls.filter((c) => c.kind === 'step')[1];
    expect(second.tauO).toEqual([0.25, 0.125]);
    expect(second.tauA).toEqual([0.25, 0]);
  });

  it('batches requests that arrive together into one VLM call, waiting at most maxQueueDelayMs', async () => {
    const { clock, executor, scheduler, job } = setup({ maxQueueDelayMs: 2 });
    track(scheduler.submit(job()));
    await clock.advance(1);
    track(scheduler.submit(job()));
    track(scheduler.submit(job()));
    expect(executor.calls).toHaveLength(0);
    await clock.advance(1);
    expect(executor.calls[0]).toMatchObject({ kind: 'vlm', batch: 3, at: 2 });
  });

  it('starts an idle VLM call at once when nothing else is decoding, and waits while something is', async () => {
    const { clock, executor, scheduler, job } = setup({ maxQueueDelayMs: 2 });
    track(scheduler.submit(job(), true));
    await clock.advance(0);
    expect(executor.calls).toHaveLength(0);
    // The request it waited for arrives, and nothing is behind it: the batch of two starts without the rest of the wait.
    track(scheduler.submit(job(), false));
    await clock.advance(0);
    expect(executor.calls[0]).toMatchObject({ kind: 'vlm', batch: 2, at: 0 });
    await clock.advance(50);
    const { executor: idle, scheduler: alone, job: lone, clock: c2 } = setup({ maxQueueDelayMs: 2 });
    track(alone.submit(lone(), false));
    await c2.advance(0);
    expect(idle.calls[0]).toMatchObject({ kind: 'vlm', batch: 1, at: 0 });
  });

  it('in request-level mode, newcomers wait for the whole running batch', async () => {
    const { clock, executor, scheduler, job } = setup({ batching: 'request' });
    track(scheduler.submit(job({ value: 1, visionSteps: 16 })));
    await clock.advance(10);
    const short = track(scheduler.submit(job({ value: 2, visionSteps: 4 })));
    await clock.advance(1000);
    expect(short.result).toBeDefined();
    expect(executor.calls.some((c) => c.kind === 'step' && c.rows.includes(1) && c.rows.includes(2))).toBe(false);
  });
});

describe('Scheduler: admission, deadlines, cancellation', () => {
  it('a row past its deadline leaves the batch with DEADLINE_EXCEEDED; its batch mates finish', async () => {
    const { clock, executor, scheduler, job } = setup();
    const late = track(scheduler.submit(job({ value: 1, visionSteps: 64, deadline: 30 })));
    const mate = track(scheduler.submit(job({ value: 2, visionSteps: 64 })));
    await clock.advance(1000);
    expect(late.error).toBeInstanceOf(DeadlineExceededError);
    expect(mate.result!.actions[0]).toBe(2);
    const lateSteps = executor.calls.filter((c) => c.kind === 'step' && c.rows.includes(1));
    expect(lateSteps.length).toBeGreaterThan(0);
    expect(lateSteps.length).toBeLessThan(64);
    expect(Math.max(...lateSteps.map((c) => c.at))).toBeLessThan(30);
  });

  it('a cancelled call leaves at the next step; others in its batch are unaffected', async () => {
    const { clock, executor, scheduler, job } = setup();
    const ctl = new AbortController();
    const gone = track(scheduler.submit(job({ value: 1, visionSteps: 64, signal: ctl.signal })));
    const stay = track(scheduler.submit(job({ value: 2, visionSteps: 64 })));
    await clock.advance(15);
    const before = executor.calls.filter((c) => c.rows.includes(1)).length;
    ctl.abort();
    await clock.advance(1000);
    expect(gone.error).toBeInstanceOf(CancelledError);
    expect(executor.calls.filter((c) => c.rows.includes(1)).length).toBeLessThanOrEqual(before + 1);
    expect(stay.result!.actions[0]).toBe(2);
  });

  it('a failed denoiser call fails only the rows in it; the scheduler keeps serving', async () => {
    const { clock, executor, scheduler, job } = setup();
    executor.failNextStep = new Error('boom');
    const a = track(scheduler.submit(job({ value: 1 })));
    await clock.advance(100);
    expect(a.error).toBeInstanceOf(InferenceError);
    const b = track(scheduler.submit(job({ value: 2 })));
    await clock.advance(100);
    expect(b.result!.actions[0]).toBe(2);
  });

  it('drain waits for in-flight work; close fails what is left with UNAVAILABLE', async () => {
    const { clock, scheduler, job } = setup();
    const a = track(scheduler.submit(job({ visionSteps: 16 })));
    let drained = false;
    void scheduler.drain().then(() => (drained = true));
    await clock.advance(0);
    expect(drained).toBe(false);
    await clock.advance(1000);
    expect(a.result).toBeDefined();
    expect(drained).toBe(true);
    const b = track(scheduler.submit(job({ visionSteps: 64 })));
    await clock.advance(5);
    await scheduler.close();
    await clock.advance(0);
    expect(b.error).toBeInstanceOf(UnavailableError);
  });
});

describe('Scheduler: shadow requests rank below primary ones', () => {
  it('shed() fails a queued shadow job with its reason; a job that has started runs on', async () => {
    const started: JobInput[] = [];
    const { clock, scheduler, job } = setup({ maxVlmBatch: 1, maxQueueDelayMs: 5 }, 64, undefined, { onStart: (jobs) => started.push(...jobs) });
    const first = job({ value: 1, priority: 'shadow' });
    const queued = job({ value: 2, priority: 'shadow' });
    const a = track(scheduler.submit(first));
    const b = track(scheduler.submit(queued));
    await clock.advance(5); // the first one's VLM call is running; the second waits (maxVlmBatch 1)
    expect(started).toEqual([first]);
    const reason = new OverloadedError('shadow request shed to admit a primary request', 'shadow_shed');
    scheduler.shed(first, reason);
    scheduler.shed(queued, reason);
    await clock.advance(0);
    expect(b.error).toBe(reason);
    await clock.advance(1000);
    expect(a.result).toBeDefined();
    expect(started).toEqual([first]);
  });

  it('primary rows are picked before shadow rows when a call cannot take all', async () => {
    const { clock, executor, scheduler, job } = setup({ maxVlmBatch: 2, maxQueueDelayMs: 5 });
    track(scheduler.submit(job({ value: 1, visionSteps: 16 })));
    await clock.advance(5); // the VLM call of request 1 is running
    const shadows = [track(scheduler.submit(job({ value: 2, priority: 'shadow' }))), track(scheduler.submit(job({ value: 3, priority: 'shadow' })))];
    const primary = track(scheduler.submit(job({ value: 4 })));
    await clock.advance(1000);
    expect(primary.result).toBeDefined();
    const second = executor.calls.filter((c) => c.kind === 'vlm')[1];
    expect(second.rows).toEqual(expect.arrayContaining([4]));
    expect(second.rows).toHaveLength(2);
    expect(shadows.every((t) => t.result !== undefined)).toBe(true);
  });
});

describe('Scheduler: fairness and budgets', () => {
  it('one robot that floods gets no more than its share of a contended batch', async () => {
    const { clock, executor, scheduler, job } = setup({ maxDenoiseBatch: 8, maxVlmBatch: 16 }, 64);
    for (let i = 0; i < 12; i++) track(scheduler.submit(job({ value: 100 + i, robotId: 'flooder', visionSteps: 16 })));
    for (let i = 0; i < 4; i++) track(scheduler.submit(job({ value: 200 + i, robotId: `polite-${i}`, visionSteps: 16 })));
    await clock.advance(15);
    const step = executor.calls.find((c) => c.kind === 'step')!;
    expect(step.batch).toBe(8);
    const polite = step.rows.filter((v) => v >= 200).length;
    expect(polite).toBe(4);
    expect(step.rows.filter((v) => v < 200).length).toBe(4);
  });

  it('with a latency budget, picks the largest N_o that fits, a multiple of N_A', async () => {
    // Steps cost 1 ms + 0.1 ms per row; VLM 4 ms + 0.5 ms per row.
    const { clock, scheduler, job } = setup();
    track(scheduler.submit(job({ visionSteps: 4 })));
    await clock.advance(100); // warm up
    const r = track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 40 })));
    await clock.advance(1000);
    const used = r.result!.visionSteps;
    expect(used % 4).toBe(0);
    // (40 ms * 0.8 safety - ~6.5 ms queue+VLM) / 1.1 ms per step ~ 23 steps -> 20.
    expect(used).toBeGreaterThanOrEqual(16);
    expect(used).toBeLessThanOrEqual(24);
    expect(r.result!.budget).toMatchObject({ feasible: true });
    expect(r.result!.budget!.plannedTotalMs).toBeLessThanOrEqual(40 * 0.8);
    expect(r.result!.timing.totalMs).toBeLessThanOrEqual(40);
  });

  it('a tiny budget still runs N_A steps and is judged infeasible when the row joins', async () => {
    const { clock, scheduler, job } = setup();
    track(scheduler.submit(job()));
    await clock.advance(100);
    const r = track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 3 })));
    await clock.advance(1000);
    expect(r.result!.visionSteps).toBe(4);
    expect(r.result!.budget!.feasible).toBe(false);
    expect(r.result!.budget!.plannedTotalMs).toBeGreaterThan(3);
  });

  it('a strict budget that N_A steps cannot meet is shed when the row joins, before any step; its VLM batch mate runs', async () => {
    const { clock, executor, scheduler, job } = setup();
    track(scheduler.submit(job({ value: 1 })));
    await clock.advance(100);
    const strict = track(scheduler.submit(job({ value: 2, receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 3, strictBudget: true })));
    const mate = track(scheduler.submit(job({ value: 3, receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 3 })));
    await clock.advance(1000);
    expect(strict.error).toBeInstanceOf(DeadlineExceededError);
    expect((strict.error as Error).message).toMatch(/strict latency budget of 3 ms cannot be met.*shed before its denoiser steps/);
    expect(executor.calls.some((c) => c.kind === 'vlm' && c.rows.includes(2))).toBe(true);
    expect(executor.calls.some((c) => c.kind === 'step' && c.rows.includes(2))).toBe(false);
    // Without strict_budget the same budget is only a request for scaling: answered late, at N_A.
    expect(mate.result!.visionSteps).toBe(4);
    expect(mate.result!.budget!.feasible).toBe(false);
  });

  it('shed requests do not count as load: robots asking again at once after each shed do not raise the predicted arrivals', async () => {
    const { clock, scheduler, job } = setup();
    // 200 hopeless requests in 200 ms beside long rows that keep the stage occupied (a row alone is never shed).
    const hopeless = [];
    for (let i = 0; i < 200; i++) {
      if (i % 25 === 0) track(scheduler.submit(job({ visionSteps: 64 })));
      hopeless.push(track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 4, budgetMs: 1, strictBudget: true }))));
      await clock.advance(1);
    }
    const shed = hopeless.filter((h) => h.error instanceof DeadlineExceededError).length;
    expect(shed).toBeGreaterThan(150);
    // What joined: the 8 long rows and the few hopeless ones that were not shed, not the 200 that arrived.
    expect(scheduler.load.at(clock.now(), 4).arrivalsPerMs * 200).toBeLessThan(200 - shed + 8 + 5);
  });

  it('a row alone in the stage is never shed: only rows that run correct the costs its verdict rests on', async () => {
    const { clock, scheduler, job } = setup();
    track(scheduler.submit(job({ value: 1 })));
    await clock.advance(100);
    const alone = track(scheduler.submit(job({ value: 2, receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 3, strictBudget: true })));
    await clock.advance(1000);
    // Judged hopeless (the deadline that admission and expiry enforce is the caller's, here none), yet run at N_A.
    expect(alone.error).toBeUndefined();
    expect(alone.result!.visionSteps).toBe(4);
    expect(alone.result!.budget!.feasible).toBe(false);
  });

  it('a strict budget that fits is served like any budgeted request', async () => {
    const { clock, scheduler, job } = setup();
    track(scheduler.submit(job({ visionSteps: 4 })));
    await clock.advance(100);
    const r = track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 40, strictBudget: true })));
    await clock.advance(1000);
    expect(r.result!.budget).toMatchObject({ feasible: true });
    expect(r.result!.visionSteps).toBeGreaterThan(4);
  });

  it('a strict budget passing between steps names the budget in its DEADLINE_EXCEEDED', async () => {
    const { clock, scheduler, job } = setup();
    const late = track(scheduler.submit(job({ value: 1, visionSteps: 64, deadline: 30, deadlineSource: 'budget' })));
    await clock.advance(1000);
    expect((late.error as Error).message).toMatch(/^the strict latency budget passed after \d+ of 64 denoiser steps/);
  });

  it('a newcomer with a large cap does not push an earlier budgeted request past its budget', async () => {
    // Steep per-row cost: every extra row slows each step a lot.
    const { clock, scheduler, job } = setup({}, 64, { vlm: () => 2, step: (b) => 1 + 2 * (b - 1) });
    track(scheduler.submit(job()));
    await clock.advance(50);
    track(scheduler.submit(job()));
    track(scheduler.submit(job()));
    await clock.advance(50); // the cost model has seen batches of 1 and 2
    const first = track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 60 })));
    await clock.advance(8);
    const second = track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 400 })));
    await clock.advance(2000);
    expect(first.result!.timing.totalMs).toBeLessThanOrEqual(60);
    expect(second.result!.timing.totalMs).toBeLessThanOrEqual(400);
    // The newcomer was held to few steps while the first was running; unconstrained it would take 64.
    expect(second.result!.visionSteps).toBeLessThan(64);
  });

  it('rows of one VLM batch plan with each other: the first to join counts the rest as joining at once', async () => {
    // Steep per-row cost, as above; eight budgeted requests arrive together and share one VLM call.
    const { clock, scheduler, job } = setup({ maxQueueDelayMs: 5 }, 64, { vlm: () => 2, step: (b) => 1 + 2 * (b - 1) });
    for (const n of [1, 2, 4, 8]) {
      for (let i = 0; i < n; i++) track(scheduler.submit(job()));
      await clock.advance(200);
    }
    const rows = Array.from({ length: 8 }, () => track(scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: 64, budgetMs: 150 }))));
    await clock.advance(5000);
    for (const r of rows) {
      expect(r.result!.timing.vlmBatchSize).toBe(8);
      expect(r.result!.timing.totalMs).toBeLessThanOrEqual(150);
      // Each plan counted the rows joining with it, so none was optimistic (without them the third row's plan
      // said 33 ms for a 67 ms response).
      expect(r.result!.budget!.plannedTotalMs).toBeGreaterThanOrEqual(r.result!.timing.totalMs);
    }
  });
});

describe('Scheduler: latency budgets under Poisson load (fake clock)', () => {
  /** Deterministic uniform [0, 1) numbers (an LCG): the same arrivals on every run. */
  function uniforms(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  /** A compute-bound executor (each row costs about as much as the call's fixed part), Poisson arrivals. */
  async function run(budgetMs: number, count: number, ratePerMs = 0.12, boundMs = budgetMs || 40) {
    const cost = { vlm: (b: number) => 1 + 0.5 * b, step: (b: number) => 0.5 + 0.25 * b };
    const { clock, scheduler, job } = setup({ maxQueueDelayMs: 1 }, 256, cost);
    // Warm the cost model at a few batch sizes, as the server's warm-up does.
    for (const size of [1, 4, 16]) {
      for (let i = 0; i < size; i++) track(scheduler.submit(job()));
      await clock.advance(100);
    }
    const next = uniforms(7);
    const results: JobResult[] = [];
    let sent = 0;
    // One pending arrival at a time keeps the fake clock's timer list short.
    const arrive = () => {
      void scheduler.submit(job({ receivedAt: clock.now(), actionSteps: 4, visionSteps: budgetMs > 0 ? 64 : 4, budgetMs })).then((r) => results.push(r));
      if (++sent < count) clock.setTimeout(arrive, -Math.log(1 - next()) / ratePerMs);
    };
    clock.setTimeout(arrive, 0);
    const at = clock.now() + (count / ratePerMs) * 2;
    await clock.advanceTo(at + 10_000);
    const within = results.filter((r) => r.timing.totalMs <= boundMs).length / results.length;
    const meanSteps = results.reduce((s, r) => s + r.visionSteps, 0) / results.length;
    return { done: results.length, within, meanSteps };
  }

  it('spends the budget on vision steps and still meets it for 99% of requests', async () => {
    const without = await run(0, 3000);
    expect(without.done).toBe(3000);
    expect(without.within).toBeGreaterThanOrEqual(0.99); // the budget is reachable at this load without scaling
    const budgeted = await run(40, 3000);
    expect(budgeted.done).toBe(3000);
    expect(budgeted.within).toBeGreaterThanOrEqual(0.99);
    expect(budgeted.meanSteps).toBeGreaterThan(4);
  });

  it('spends it at two thirds of saturation too, where N_o = 2 N_A for every request would overload the executor', async () => {
    // Per request at large batches: 0.5 ms of VLM + 0.25 ms per step, 1.5 ms at N_A = 4 (0.67 requests/ms at
    // most), 2.5 ms at N_o = 8: at 0.45 requests/ms the executor keeps up with a mix, not with 8 for all.
    const without = await run(0, 3000, 0.45, 80);
    expect(without.within).toBeGreaterThanOrEqual(0.99);
    const budgeted = await run(80, 3000, 0.45);
    expect(budgeted.done).toBe(3000);
    expect(budgeted.within).toBeGreaterThanOrEqual(0.99);
    expect(budgeted.meanSteps).toBeGreaterThan(4);
  });
});

describe('Scheduler: batch reports', () => {
  it('reports every executor call with its rows and the step each ran, and a failed call with its error', async () => {
    const events: BatchEvent[] = [];
    const { clock, executor, scheduler, job } = setup({}, 64, undefined, { onBatch: (e) => events.push(e) });
    const a = job({ value: 1, visionSteps: 8 });
    const b = job({ value: 2, visionSteps: 4 });
    const done = [track(scheduler.submit(a)), track(scheduler.submit(b))];
    await clock.advance(1000);
    expect(done.every((d) => d.result)).toBe(true);
    expect(events).toHaveLength(executor.calls.length);
    const vlm = events.filter((e) => e.stage === 'vlm');
    expect(vlm).toHaveLength(1);
    expect(new Set(vlm[0].rows.map((r) => r.job))).toEqual(new Set([a, b]));
    const stepsOf = (j: JobInput) => events.filter((e) => e.stage === 'denoise').flatMap((e) => e.rows.filter((r) => r.job === j).map((r) => r.step));
    expect(stepsOf(a)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(stepsOf(b)).toEqual([0, 1, 2, 3]);
    for (const e of events) expect(e.end).toBeGreaterThanOrEqual(e.start);

    executor.failNextStep = new Error('boom');
    track(scheduler.submit(job({ value: 3 })));
    await clock.advance(100);
    expect(events.at(-1)).toMatchObject({ stage: 'denoise', error: 'boom' });
  });
});

describe('Scheduler: real-time chunking rows', () => {
  it('shares denoiser calls between rows with and without a prefix, with different delays, and pins each hard position', async () => {
    const { clock, executor, scheduler, job } = setup();
    const s = TEST_SHAPES;
    const target = Float32Array.from({ length: s.horizon * s.actionDim }, (_, j) => -0.25 * (j + 1));
    const chunking = (method: 'inpaint' | 'ensemble', hard: number) => ({
      method,
      target,
      weights: Float32Array.from({ length: s.horizon }, (_, i) => (i < hard ? 1 : 0)),
    });
    const plain = track(scheduler.submit(job({ value: 3 })));
    const one = track(scheduler.submit(job({ value: 3, chunking: chunking('inpaint', 1) })));
    const two = track(scheduler.submit(job({ value: 3, chunking: chunking('inpaint', 2) })));
    const ens = track(scheduler.submit(job({ value: 3, chunking: chunking('ensemble', 1) })));
    await clock.advance(1000);
    expect(executor.calls.filter((c) => c.kind === 'step').every((c) => c.batch === 4)).toBe(true);
    expect(Array.from(plain.result!.actions)).toEqual([3, 3, 3, 3]);
    expect(Array.from(one.result!.actions)).toEqual([target[0], target[1], 3, 3]);
    expect(Array.from(two.result!.actions)).toEqual(Array.from(target));
    expect(Array.from(ens.result!.actions)).toEqual([target[0], target[1], 3, 3]);
  });
});
