import { describe, expect, it } from 'vitest';
import { condition, EXPERIMENTS } from './conditions.js';
import type { EpisodeResult } from './push-robot.js';
import { compareConditions, scalingPlot, type ConditionSummary } from './report.js';

/** Episodes on seeds 0..n-1 of one condition, succeeding where `won(seed)`; only what the comparison reads. */
function episodes(id: string, n: number, won: (seed: number) => boolean): EpisodeResult[] {
  return Array.from({ length: n }, (_, seed) => ({ conditionId: id, seed, success: won(seed) }) as unknown as EpisodeResult);
}

describe('compareConditions', () => {
  it('pairs the first condition’s version with every other version on the same layouts, whatever the version numbers', () => {
    const dust = condition(4, 4, 4);
    const baseline = condition(5, 4, 4);
    const results = new Map([
      [dust.id, episodes(dust.id, 20, (s) => s < 12)],
      [baseline.id, episodes(baseline.id, 20, (s) => s < 2 || s === 15)],
    ]);
    const [c, ...rest] = compareConditions([dust, baseline], results);
    expect(rest).toEqual([]);
    expect(c).toMatchObject({ a: dust.id, b: baseline.id, success_a: 0.6, success_b: 0.15, only_a: 10, only_b: 1 });
    // Exact McNemar on 10 against 1 discordant layouts: 2 * P(X <= 1), X ~ Bin(11, 1/2) = 24 / 2048.
    expect(c.p_value).toBeCloseTo(24 / 2048, 4);
    // Listed the other way round, the base changes with it.
    expect(compareConditions([baseline, dust], results)[0]).toMatchObject({ a: baseline.id, b: dust.id, only_a: 1, only_b: 10 });
  });

  it('keeps the named experiments’ comparisons on version 1', () => {
    const versions = EXPERIMENTS.versions();
    const results = new Map(versions.map((c) => [c.id, episodes(c.id, 4, () => true)]));
    expect(compareConditions(versions, results).map((c) => [c.a, c.b])).toEqual([
      ['v1 NA4 No4', 'v2 NA4 No4'],
      ['v1 NA4 No4', 'v3 NA4 No4'],
    ]);
  });
});

describe('scalingPlot', () => {
  const summary = (version: number, na: number, no: number, rate: number) =>
    ({ version, action_steps: na, vision_steps: no, budget_ms: 0, success_rate: rate, ci95: [0, 1], episodes: 100 }) as unknown as ConditionSummary;
  const settings = { episodes_per_condition: 100, robots: 8, held_out_seeds: [1, 100] };

  it('plots the first condition’s version, asynchronous and synchronous, and leaves other versions out', () => {
    const spec = scalingPlot([summary(4, 4, 4, 0.5), summary(4, 4, 8, 0.52), summary(4, 8, 8, 0.49), summary(1, 4, 8, 0.3)], settings)!;
    expect(spec.title).toMatch(/^dust-push@4 /);
    // Version 4's points only: asynchronous N_A = 4 at N_o = 4 and 8, synchronous N_A = N_o at 4 and 8.
    expect(spec.series.map((s) => s.points.map((p) => [p.x, p.rate]))).toEqual([
      [
        [4, 0.5],
        [8, 0.52],
      ],
      [
        [4, 0.5],
        [8, 0.49],
      ],
    ]);
    expect(scalingPlot([], settings)).toBeUndefined();
  });
});
