import { describe, expect, it } from 'vitest';
import { DEFAULT_SKETCH_ACCURACY, LatencySketch } from './latency-sketch.js';

describe('LatencySketch', () => {
  it('reports p50 and p99 within its relative accuracy', () => {
    const s = new LatencySketch();
    // 1..10000 ms shuffled: p50 = 5000, p99 = 9900 (rank q·(n-1)).
    const values = Array.from({ length: 10_000 }, (_, i) => i + 1).sort((a, b) => ((a * 7919) % 10_007) - ((b * 7919) % 10_007));
    for (const v of values) s.record(v);
    expect(s.count).toBe(10_000);
    expect(Math.abs(s.quantile(0.5) / 5000.5 - 1)).toBeLessThan(DEFAULT_SKETCH_ACCURACY + 1e-3);
    expect(Math.abs(s.quantile(0.99) / 9900 - 1)).toBeLessThan(DEFAULT_SKETCH_ACCURACY + 1e-3);
  });

  it('is 0 while empty and ignores values that are not latencies', () => {
    const s = new LatencySketch();
    s.record(Number.NaN);
    s.record(-1);
    expect(s.count).toBe(0);
    expect(s.quantile(0.99)).toBe(0);
  });

  it('survives a round trip through bytes', () => {
    const s = new LatencySketch();
    for (let i = 0; i < 500; i++) s.record(10 + (i % 50));
    const r = LatencySketch.fromBytes(s.toBytes());
    expect(r.count).toBe(500);
    expect(r.quantile(0.5)).toBe(s.quantile(0.5));
    expect(r.quantile(0.99)).toBe(s.quantile(0.99));
    expect(LatencySketch.fromBytes(new Uint8Array()).count).toBe(0);
  });
});
