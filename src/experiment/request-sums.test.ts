import { describe, expect, it } from 'vitest';
import { countsAsPinned, RequestSums } from './request-sums.js';
import { servedEvent } from './testing/records.js';

const served = (over: Parameters<typeof servedEvent>[1] = {}) => servedEvent(7, { version: 2, latencyMs: 20, ...over });

describe('RequestSums', () => {
  it('adds requests, N_o, latency and only finite surprises', () => {
    const s = new RequestSums();
    s.addServed(served());
    s.addServed(served({ visionSteps: 4, worldModelSurprise: undefined, latencyMs: 40 }));
    s.addServed(served({ worldModelSurprise: Number.NaN }));
    expect([s.requests, s.visionStepsSum, s.surpriseSum, s.surpriseCount, s.latency.count]).toEqual([3, 20, 0.5, 1, 3]);
  });

  it('counts a shed mirror apart from a finished one, whose divergence adds when finite', () => {
    const s = new RequestSums();
    s.addShadow({ experimentId: 7, version: 3, latencyMs: undefined, divergence: 0 });
    s.addShadow({ experimentId: 7, version: 3, latencyMs: 30, divergence: 0.25 });
    s.addShadow({ experimentId: 7, version: 3, latencyMs: 30, divergence: Number.NaN });
    expect([s.shadowShed, s.shadowRequests, s.shadowDivergenceSum, s.shadowLatency.count]).toEqual([1, 2, 0.25, 2]);
  });
});

describe('countsAsPinned', () => {
  const owner = { model: 'm', version: 2, experimentId: 7 };
  it('counts an unpinned request whoever owns its episode', () => {
    expect(countsAsPinned(served(), undefined)).toBe(true);
    expect(countsAsPinned(served(), { ...owner, version: 1 })).toBe(true);
  });

  it('counts a pinned request only when it continues an episode the split gave that version in that experiment', () => {
    const pinned = served({ pinned: true });
    expect(countsAsPinned(pinned, owner)).toBe(true);
    expect(countsAsPinned(pinned, undefined)).toBe(false);
    expect(countsAsPinned(pinned, { ...owner, version: 1 })).toBe(false);
    expect(countsAsPinned(pinned, { ...owner, experimentId: 0 })).toBe(false);
    expect(countsAsPinned(pinned, { ...owner, model: 'other' })).toBe(false);
  });
});
