import { describe, expect, it } from 'vitest';
import { alwaysValidInterval, type HistoryPoint, type StoredExperiment, type VersionSummary } from '../experiment/index.js';
import { candidateTest, reportPage } from './experiment-report-model.js';

const T0 = Date.UTC(2026, 11, 7, 6, 0, 0);
const MIN = 60_000;

function point(version: number, minute: number, episodes: number, successes: number, over: Partial<HistoryPoint> = {}): HistoryPoint {
  return {
    version,
    at: T0 + minute * MIN,
    requests: episodes * 5,
    episodes,
    successes,
    visionStepsSum: episodes * 5 * 4,
    surpriseSum: 0,
    surpriseCount: 0,
    latencyP50Ms: 40,
    latencyP99Ms: 80,
    shadowRequests: 0,
    shadowDivergenceSum: 0,
    alwaysValidPValue: 1,
    decision: 'keep collecting',
    ...over,
  };
}

function summary(version: number, episodes: number, successes: number, over: Partial<VersionSummary> = {}): VersionSummary {
  return {
    version,
    requests: episodes * 5,
    robots: 4,
    episodesServed: episodes,
    episodes,
    successes,
    visionStepsSum: episodes * 5 * 4,
    surpriseSum: 0,
    surpriseCount: 0,
    latencyP50Ms: 40,
    latencyP99Ms: 80,
    shadowRequests: 0,
    shadowShed: 0,
    shadowDivergenceSum: 0,
    alwaysValidPValue: 1,
    decision: 'keep collecting',
    ...over,
  };
}

// Control v1 and candidate v2 over three minutes; the server's test decided for v2 in the third.
const history: HistoryPoint[] = [
  point(1, 1, 10, 5),
  point(2, 1, 10, 6),
  point(1, 2, 20, 10),
  point(2, 2, 20, 15),
  point(1, 3, 40, 15),
  point(2, 3, 40, 36, { decision: 'candidate better', alwaysValidPValue: 1e-5 }),
  // The shadow version: 4 mirrored requests at divergence 0.5 in minute 2, then 6 at 0.25 in minute 3.
  point(3, 2, 0, 0, { requests: 0, shadowRequests: 4, shadowDivergenceSum: 2 }),
  point(3, 3, 0, 0, { requests: 0, shadowRequests: 10, shadowDivergenceSum: 3.5 }),
];

const stored: StoredExperiment = {
  experiment: {
    id: 7,
    model: 'dust-push',
    salt: 'ab',
    weights: [
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.5 },
    ],
    controlVersion: 1,
    stickyKey: 'robot',
    shadowVersion: 3,
    shadowFraction: 0.1,
    startedAt: T0,
  },
  versions: [
    summary(2, 40, 36, { decision: 'candidate better', alwaysValidPValue: 1e-5 }),
    summary(1, 40, 15),
    summary(3, 0, 0, { requests: 0, shadowRequests: 10, shadowDivergenceSum: 3.5 }),
  ],
  history,
};

const settings = { alpha: 0.05, tau: 0.1, generatedAt: T0 + 4 * MIN };

describe('candidateTest', () => {
  const test = candidateTest(history, 1, stored.versions[0], settings);

  it('dates the decision at the first history point that carried it', () => {
    expect(test.decision).toBe('candidate better');
    expect(test.decidedAt).toBe(T0 + 3 * MIN);
  });

  it("draws the server's always-valid interval at each moment", () => {
    const at = (c: number, cn: number, k: number, kn: number) => alwaysValidInterval({ successes: c, trials: cn }, { successes: k, trials: kn })!;
    const [i1, i2, i3] = [at(5, 10, 6, 10), at(10, 20, 15, 20), at(15, 40, 36, 40)];
    expect(test.points.map((p) => p.t)).toEqual([T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]);
    expect(test.points[0]).toMatchObject({ value: i1.difference, low: i1.low, high: i1.high });
    // Minute 2 by hand (statistics.test.ts): 0.25 ± 0.705261.
    expect(test.points[1].value).toBeCloseTo(0.25, 12);
    expect(test.points[1].low).toBeCloseTo(0.25 - 0.705261, 5);
    expect(test.points[1].high).toBeCloseTo(0.25 + 0.705261, 5);
    expect(test.points[2]).toMatchObject({ value: i3.difference, low: i3.low, high: i3.high });
    expect(i2).toMatchObject({ low: test.points[1].low, high: test.points[1].high });
    // Decided: the interval has left 0 on the candidate's side, and still holds the estimate.
    expect(test.current).toEqual({ low: i3.low, high: i3.high });
    expect(test.current!.low).toBeGreaterThan(0);
    expect(test.current!.high).toBeGreaterThan(0.525);
  });

  it('has no decision time while collecting', () => {
    const collecting = candidateTest(history.slice(0, 4), 1, summary(2, 20, 15), settings);
    expect(collecting.decidedAt).toBeUndefined();
    expect(collecting.points).toHaveLength(2);
  });
});

describe('reportPage', () => {
  const page = reportPage(stored, settings);

  it('has a row per version with its role, rates and decision', () => {
    expect(page.rows.map((r) => [r.version, r.role, r.weight, r.decision])).toEqual([
      [1, 'control', 0.5, 'control'],
      [2, 'candidate', 0.5, 'candidate better'],
      [3, 'shadow', 0, 'not tested'],
    ]);
    expect(page.rows[1]).toMatchObject({ successRate: 0.9, meanVisionSteps: 4, pValue: 1e-5 });
    expect(page.rows[0].pValue).toBeUndefined();
    expect(page.rows[2].pValue).toBeUndefined();
    expect(page.tests.map((t) => t.version)).toEqual([2]);
    expect(page.timeRange).toEqual([T0, T0 + 3 * MIN]);
  });

  it('draws success rates with Wilson intervals and shadow divergence per window', () => {
    const v2 = page.successRate.find((s) => s.version === 2)!;
    expect(v2.points.map((p) => p.value)).toEqual([0.6, 0.75, 0.9]);
    expect(v2.points[2].low).toBeLessThan(0.9);
    expect(page.successRate.map((s) => s.version)).toEqual([1, 2]);
    expect(page.shadowDivergence).toEqual([
      {
        version: 3,
        points: [
          { t: T0 + 2 * MIN, value: 0.5 },
          { t: T0 + 3 * MIN, value: 0.25 },
        ],
      },
    ]);
  });

  it('has no tests without a control', () => {
    const noSplit = reportPage({ ...stored, experiment: { ...stored.experiment, controlVersion: 0, weights: [] } }, settings);
    expect(noSplit.tests).toEqual([]);
    expect(noSplit.rows.every((r) => r.decision === 'no control')).toBe(true);
    // Without a split the store has no weights: the newest READY version took the traffic.
    expect(noSplit.rows.map((r) => r.weight)).toEqual([undefined, undefined, undefined]);
  });
});
