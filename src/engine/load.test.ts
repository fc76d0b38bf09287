import { describe, expect, it } from 'vitest';
import { Ema, LoadTracker, RateMeter } from './load.js';

describe('RateMeter', () => {
  it('converges to the rate of a steady stream and decays when it stops', () => {
    const r = new RateMeter(1000);
    expect(r.perMs(0)).toBe(0);
    // 0.1 events per ms for 10 s.
    for (let t = 0; t <= 10_000; t += 10) r.record(t);
    expect(r.perMs(10_000)).toBeCloseTo(0.1, 2);
    expect(r.perMs(11_000)).toBeCloseTo(0.1 / Math.E, 2);
  });

  it('reads a young stream at its rate, not at the fraction of it the average has built up', () => {
    const r = new RateMeter(1000);
    // 0.2 events per ms for 100 ms: an uncorrected average would read 0.2 * (1 - e^-0.1), about 0.019.
    for (let t = 0; t < 100; t += 5) r.record(t);
    expect(r.perMs(100)).toBeGreaterThan(0.18);
    expect(r.perMs(100)).toBeLessThan(0.22);
    // After a lull of a minute, a new stream at 0.05 per ms is a young stream again.
    for (let t = 60_000; t < 60_200; t += 20) r.record(t);
    expect(r.perMs(60_200)).toBeGreaterThan(0.045);
    expect(r.perMs(60_200)).toBeLessThan(0.055);
  });
});

describe('Ema', () => {
  it('starts at its first sample and moves by alpha', () => {
    const e = new Ema(0.5);
    expect(e.get(7)).toBe(7);
    e.record(4);
    e.record(8);
    expect(e.get()).toBe(6);
  });
});

describe('LoadTracker', () => {
  it('reports arrivals, mean steps, VLM share and the response path', () => {
    const l = new LoadTracker();
    expect(l.at(0, 4)).toEqual({ arrivalsPerMs: 0, meanSteps: 4, vlmShare: 0, meanBatch: 0, responsePathMs: 0 });
    for (let t = 0; t < 5000; t += 20) {
      l.arrived(t);
      l.joined(8);
    }
    l.vlmCall(4990, 100);
    l.stepCall(6);
    l.responded(2);
    l.responded(-1); // a clock glitch is ignored
    const load = l.at(5000, 4);
    expect(load.arrivalsPerMs).toBeCloseTo(0.05, 2);
    expect(load.meanSteps).toBe(8);
    expect(load.vlmShare).toBeCloseTo(0.1, 9);
    expect(load.responsePathMs).toBe(2);
    expect(load.meanBatch).toBe(6);
  });
});
