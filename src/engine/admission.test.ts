import { describe, expect, it } from 'vitest';
import { DeadlineExceededError, OverloadedError, UnavailableError } from '../errors/index.js';
import { IDLE_LOAD, callerShare, earliestFinish, evictsShadow, refusal, requestDeadline, type AdmissionRequest, type AdmissionState } from './admission.js';
import { CostModel } from './cost-model.js';

const warm = (() => {
  const m = new CostModel();
  for (let i = 0; i < 3; i++) {
    for (const b of [1, 2, 4, 8]) {
      m.observe('step', b, 1 + b);
      m.observe('vlm', b, 2 * b);
    }
  }
  return m.snapshot();
})();

const state: AdmissionState = {
  now: 100,
  draining: false,
  queued: 0,
  queuedShadows: 0,
  load: { active: 0, cost: warm, vlmShare: 0 },
  limits: { maxQueue: 4, maxVlmBatch: 8, maxDenoiseBatch: 8 },
};
const req = { receivedAt: 100, deadline: Infinity, actionSteps: 4 };

describe('refusal', () => {
  it('admits when nothing stands in the way', () => {
    expect(refusal(req, state)).toBeUndefined();
  });
  it('refuses everything while draining, with UNAVAILABLE', () => {
    expect(refusal(req, { ...state, draining: true })).toBeInstanceOf(UnavailableError);
  });
  it('sheds with RESOURCE_EXHAUSTED once maxQueue requests are admitted but not started', () => {
    expect(refusal(req, { ...state, queued: 3 })).toBeUndefined();
    const r = refusal(req, { ...state, queued: 4 });
    expect(r).toBeInstanceOf(OverloadedError);
    expect((r as OverloadedError).reason).toBe('queue_full');
  });
  it('refuses a deadline that has passed or that N_A steps cannot meet under the current load', () => {
    expect(refusal({ ...req, deadline: 100 }, state)).toBeInstanceOf(DeadlineExceededError);
    // Alone: VLM 2 ms + 4 steps at 2 ms = 10 ms.
    expect(earliestFinish(req, state)).toBeCloseTo(110, 6);
    expect(refusal({ ...req, deadline: 111 }, state)).toBeUndefined();
    const r = refusal({ ...req, deadline: 109 }, state);
    expect(r).toBeInstanceOf(DeadlineExceededError);
    expect((r as Error).message).toMatch(/about 10 ms are needed.*allows 9 ms/);
    // With 3 rows denoising, each step takes 5 ms.
    expect(refusal({ ...req, deadline: 111 }, { ...state, load: { ...state.load, active: 3 } })).toBeInstanceOf(DeadlineExceededError);
  });
  it('a strict budget is refused like a deadline, in words that name the budget and what to do', () => {
    const r = refusal({ ...req, deadline: 109, deadlineSource: 'budget' }, state);
    expect(r).toBeInstanceOf(DeadlineExceededError);
    expect((r as Error).message).toMatch(
      /^the strict latency budget cannot be met: about 10 ms are needed under the current load, the budget is 9 ms; keep executing/,
    );
    expect(refusal({ ...req, deadline: 111, deadlineSource: 'budget' }, state)).toBeUndefined();
  });
  it('on an idle worker, judges by the best case measured, not by the load and costs of a busier time', () => {
    // Averages from an overloaded spell: 1 row 8 ms, 4 rows 40 ms; the cheapest ever seen at 1 row was 2 ms.
    const m = new CostModel();
    for (let i = 0; i < 3; i++) m.observe('step', 1, 2);
    for (let i = 0; i < 20; i++) m.observe('step', 1, 8);
    for (let i = 0; i < 3; i++) m.observe('step', 4, 40);
    for (let i = 0; i < 3; i++) m.observe('vlm', 1, 2);
    const stale = { ...state, load: { active: 0, cost: m.snapshot(), vlmShare: 0.9 } };
    expect(earliestFinish(req, stale)).toBeCloseTo(100 + 2 + 4 * m.snapshot().step.floor, 6);
    expect(refusal({ ...req, deadline: 140, deadlineSource: 'budget' }, stale)).toBeUndefined();
    // With anything ahead of it the averages and the share stand: 2 rows by the line through 8 and 40 ms, stretched by 1 / 0.1.
    expect(refusal({ ...req, deadline: 140, deadlineSource: 'budget' }, { ...stale, queued: 1 })).toBeInstanceOf(DeadlineExceededError);
  });
  it('never refuses on a cold cost model', () => {
    expect(refusal({ ...req, deadline: 100.5 }, { ...state, load: IDLE_LOAD })).toBeUndefined();
  });
});

describe('refusal and eviction: shadow requests rank below primary ones', () => {
  const shadow = { ...req, priority: 'shadow' as const };
  it('sheds a shadow request while a primary request is admitted and not started', () => {
    const r = refusal(shadow, { ...state, queued: 1 });
    expect(r).toBeInstanceOf(OverloadedError);
    expect((r as OverloadedError).reason).toBe('shadow_shed');
    // Only shadows waiting: it queues behind them.
    expect(refusal(shadow, { ...state, queued: 2, queuedShadows: 2 })).toBeUndefined();
  });
  it("a full queue of shadows admits a primary request, which takes the newest one's place", () => {
    const full = { ...state, queued: 4, queuedShadows: 1 };
    expect(refusal(req, full)).toBeUndefined();
    expect(evictsShadow(req, full)).toBe(true);
    expect(refusal(shadow, { ...state, queued: 4, queuedShadows: 4 })).toBeInstanceOf(OverloadedError);
    expect(evictsShadow(shadow, { ...state, queued: 4, queuedShadows: 4 })).toBe(false);
    // Below the limit nothing is evicted; with no shadow to evict a full queue refuses.
    expect(evictsShadow(req, { ...state, queued: 3, queuedShadows: 1 })).toBe(false);
    expect(refusal(req, { ...state, queued: 4 })).toBeInstanceOf(OverloadedError);
  });
  it("a primary request's earliest finish does not count the shadow requests queued before it", () => {
    const withShadows = { ...state, queued: 3, queuedShadows: 3 };
    expect(earliestFinish(req, withShadows)).toBeCloseTo(earliestFinish(req, state), 6);
    expect(earliestFinish(shadow, withShadows)).toBeGreaterThan(earliestFinish(req, state));
  });
});

/**
 * A model of the main thread's queue: callers ask in turn, admitted requests stay queued (nothing starts),
 * and each request is decided by refusal() on the state the queue is in, as ModelWorker builds it.
 */
class QueueModel {
  readonly held = new Map<string, number>();
  readonly refused = new Map<string, number>();
  constructor(readonly maxQueue: number) {}

  get queued(): number {
    let n = 0;
    for (const v of this.held.values()) n += v;
    return n;
  }

  ask(caller: string): Error | undefined {
    const mine = this.held.get(caller) ?? 0;
    const s: AdmissionState = {
      ...state,
      queued: this.queued,
      limits: { ...state.limits, maxQueue: this.maxQueue },
      callerQueued: mine,
      callers: this.held.size + (mine === 0 ? 1 : 0),
    };
    const r = refusal({ ...req, caller } satisfies AdmissionRequest, s);
    if (r) this.refused.set(caller, (this.refused.get(caller) ?? 0) + 1);
    else this.held.set(caller, mine + 1);
    return r;
  }

  start(caller: string): void {
    const n = (this.held.get(caller) ?? 0) - 1;
    if (n > 0) this.held.set(caller, n);
    else this.held.delete(caller);
  }
}

describe('fair share of a contended queue', () => {
  it('a caller alone fills half the queue, then is refused with queue_full; room stays for others', () => {
    const q = new QueueModel(256);
    for (let i = 0; i < 1000; i++) q.ask('hog');
    expect(q.held.get('hog')).toBe(128);
    const r = q.ask('hog');
    expect(r).toBeInstanceOf(OverloadedError);
    expect((r as OverloadedError).reason).toBe('queue_full');
    expect((r as Error).message).toMatch(/contended and this caller already has 128 requests waiting/);
    expect(q.ask('robot-1')).toBeUndefined();
  });

  it('with one hog flooding and many robots asking one request at a time, no robot is ever refused', () => {
    const q = new QueueModel(256);
    const robots = Array.from({ length: 100 }, (_, i) => `robot-${i}`);
    // Rounds: the hog sends 50 requests, every robot one, then the model starts the oldest few of each.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) q.ask('hog');
      for (const robot of robots) expect(q.ask(robot), `${robot} in round ${round}`).toBeUndefined();
      for (const robot of robots) q.start(robot);
      for (let i = 0; i < 10; i++) if (q.held.has('hog')) q.start('hog');
    }
    expect(q.refused.get('hog')).toBeGreaterThan(0);
    expect([...q.refused.keys()]).toEqual(['hog']);
    // The hog holds no more than its share among 101 callers (plus what it held before the robots came).
    expect(q.held.get('hog')).toBeLessThanOrEqual(128);
  });

  it("shrinks a hog's share as callers arrive, never below MIN_CALLER_SHARE", () => {
    expect(callerShare(256, 1)).toBe(128);
    expect(callerShare(256, 3)).toBe(64);
    expect(callerShare(256, 1000)).toBe(1);
    const q = new QueueModel(16);
    for (let i = 0; i < 8; i++) q.ask('hog');
    for (const robot of ['a', 'b', 'c']) q.ask(robot);
    // 4 callers: a share of 16 / 5 = 3; the hog holds 8 and the queue is contended.
    expect(q.ask('hog')).toBeInstanceOf(OverloadedError);
    expect(q.ask('a')).toBeUndefined();
    expect(q.ask('a')).toBeUndefined();
    expect(q.ask('a')).toBeInstanceOf(OverloadedError);
  });

  it('holds no caller to a share below half a queue, nor requests without a caller, nor shadow requests', () => {
    expect(refusal({ ...req, caller: 'hog' }, { ...state, queued: 1, callerQueued: 1, callers: 1 })).toBeUndefined();
    // maxQueue 4: contended from 2 on, a lone caller's share is 2.
    expect(refusal({ ...req, caller: 'hog' }, { ...state, queued: 2, callerQueued: 2, callers: 1 })).toBeInstanceOf(OverloadedError);
    expect(refusal(req, { ...state, queued: 3, callerQueued: 3, callers: 1 })).toBeUndefined();
    expect(refusal({ ...req, caller: 'hog', priority: 'shadow' }, { ...state, queued: 2, queuedShadows: 2, callerQueued: 2, callers: 1 })).toBeUndefined();
  });
});

describe('requestDeadline', () => {
  it('is the call deadline unless a strict budget ends first', () => {
    expect(requestDeadline(100, Infinity, 50, true)).toEqual({ at: 150, source: 'budget' });
    expect(requestDeadline(100, 120, 50, true)).toEqual({ at: 120, source: 'call' });
    // A budget that is not strict is a request for scaling only; no budget is nothing to be strict about.
    expect(requestDeadline(100, Infinity, 50, false)).toEqual({ at: Infinity, source: 'call' });
    expect(requestDeadline(100, 300, 0, true)).toEqual({ at: 300, source: 'call' });
  });
});
