import { describe, expect, it } from 'vitest';
import { DeadlineExceededError, OverloadedError, UnavailableError } from '../errors/index.js';
import { IDLE_LOAD, earliestFinish, evictsShadow, refusal, type AdmissionState } from './admission.js';
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
  it('a full queue of shadows admits a primary request, which takes the newest one\'s place', () => {
    const full = { ...state, queued: 4, queuedShadows: 1 };
    expect(refusal(req, full)).toBeUndefined();
    expect(evictsShadow(req, full)).toBe(true);
    expect(refusal(shadow, { ...state, queued: 4, queuedShadows: 4 })).toBeInstanceOf(OverloadedError);
    expect(evictsShadow(shadow, { ...state, queued: 4, queuedShadows: 4 })).toBe(false);
    // Below the limit nothing is evicted; with no shadow to evict a full queue refuses.
    expect(evictsShadow(req, { ...state, queued: 3, queuedShadows: 1 })).toBe(false);
    expect(refusal(req, { ...state, queued: 4 })).toBeInstanceOf(OverloadedError);
  });
  it('a primary request\'s earliest finish does not count the shadow requests queued before it', () => {
    const withShadows = { ...state, queued: 3, queuedShadows: 3 };
    expect(earliestFinish(req, withShadows)).toBeCloseTo(earliestFinish(req, state), 6);
    expect(earliestFinish(shadow, withShadows)).toBeGreaterThan(earliestFinish(req, state));
  });
});
