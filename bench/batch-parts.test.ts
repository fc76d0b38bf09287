import { describe, expect, it } from 'vitest';
import { batchDurations, batchParts } from './batch-parts.js';

const exposition = (vlmRun: number, vlmCalls: number, versions = 1) =>
  Array.from({ length: versions }, (_, v) =>
    [
      `dust_batch_duration_seconds_sum{model="m",version="${v + 1}",stage="vlm",part="run"} ${vlmRun}`,
      `dust_batch_duration_seconds_count{model="m",version="${v + 1}",stage="vlm",part="run"} ${vlmCalls}`,
      `dust_batch_duration_seconds_sum{model="m",version="${v + 1}",stage="vlm",part="wait"} ${vlmCalls * 0.03}`,
      `dust_batch_duration_seconds_count{model="m",version="${v + 1}",stage="vlm",part="wait"} ${vlmCalls}`,
      `dust_batch_duration_seconds_bucket{model="m",version="${v + 1}",stage="vlm",part="run",le="0.01"} 1`,
      `dust_vlm_batch_size_sum{model="m",version="${v + 1}"} 99`,
    ].join('\n'),
  ).join('\n');

describe('batch parts between two scrapes', () => {
  it('gives the mean milliseconds per call of each part over the calls made in between', () => {
    const parts = batchParts(batchDurations(exposition(0.5, 10)), batchDurations(exposition(0.9, 30)));
    expect(parts.vlm.calls).toBe(20);
    expect(parts.vlm.run).toBeCloseTo(20, 6);
    expect(parts.vlm.wait).toBeCloseTo(30, 6);
    expect(parts.vlm.host).toBe(0);
  });

  it('adds every model version up, and reads no other series', () => {
    const d = batchDurations(exposition(0.5, 10, 2));
    expect(d.vlm.run).toEqual({ sum: 1, count: 20 });
    expect(d.denoise.run).toEqual({ sum: 0, count: 0 });
  });

  it('has no mean for a stage without calls', () => {
    const d = batchDurations('');
    expect(batchParts(d, d).denoise.calls).toBe(0);
    expect(batchParts(d, d).denoise.run).toBeNaN();
  });
});
