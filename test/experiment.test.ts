/**
 * A/B testing end to end on the real server with two versions of dust-tiny: traffic splits (sticky per robot
 * and over streams), pins, ReportOutcome credit, GetExperiment statistics, shadow traffic, and AdminService
 * argument checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DustClient, DustClientError, PredictResult } from '@dust-serve/client';
import { twoProportionZTest, wilsonInterval } from '../src/experiment/index.js';
import { editManifest, failureCode, MODEL, robotRequest, serveVersions, withStatistics, type VersionsServer } from './support/versions.js';
import { eventually } from './support/eventually.js';

let s: VersionsServer;
let client: DustClient;

beforeAll(async () => {
  // Version 3 sees the state through other statistics: the same graphs, other actions (for shadow divergence).
  s = await serveVersions([1, 2, 3], (root) =>
    editManifest(root, 3, (m) => withStatistics(m, 'state', ({ min, max }) => ({ min: min.map((v) => v - 2), max }))),
  );
  client = s.client;
});

afterAll(() => s?.close());

describe('without a split', () => {
  it('the newest READY version takes all unpinned traffic; the experiment has no control', async () => {
    const res = await client.predict(await robotRequest('solo'));
    expect(res.modelVersion).toBe(3);
    expect(res.variant).toBe(`${MODEL}@3`);
    const weights = Object.fromEntries((await client.listModels()).models.map((m) => [m.version, m.trafficWeight]));
    expect(weights).toEqual({ 1: 0, 2: 0, 3: 1 });
    const e = await client.getExperiment();
    expect(e).toMatchObject({ model: MODEL, salt: '', controlVersion: 0 });
    expect(e.variants.map((v) => [v.version, v.weight, v.decision])).toEqual([
      [1, 0, 'none'],
      [2, 0, 'none'],
      [3, 1, 'none'],
    ]);
    expect(e.variants[2].requests).toBeGreaterThanOrEqual(1);
  });
});

describe('a 50/50 split of versions 1 and 2', () => {
  const robots = Array.from({ length: 16 }, (_, i) => `robot-${i}`);
  const servedBy = new Map<string, number>();

  beforeAll(async () => {
    const split = await client.setTrafficSplit({
      model: MODEL,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      controlVersion: 1,
      salt: 'ab-test-1',
    });
    expect(split).toMatchObject({
      salt: 'ab-test-1',
      controlVersion: 1,
      newExperiment: true,
      weights: [
        { version: 1, weight: 0.5 },
        { version: 2, weight: 0.5 },
      ],
    });
  });

  it('keeps every robot on one version across requests and episodes, and uses both', async () => {
    for (const robot of robots) {
      const versions = [];
      // Two requests in episode e1 (the second has a world-model surprise), one in e2.
      for (const episode of ['e1', 'e1', 'e2'])
        versions.push((await client.predict(await robotRequest(robot, { episodeId: `${robot}-${episode}` }))).modelVersion);
      expect(new Set(versions).size).toBe(1);
      servedBy.set(robot, versions[0]);
    }
    expect(new Set(servedBy.values())).toEqual(new Set([1, 2]));
    const weights = Object.fromEntries((await client.listModels()).models.map((m) => [m.version, m.trafficWeight]));
    expect(weights).toEqual({ 1: 0.5, 2: 0.5, 3: 0 });
  });

  it('a pin overrides the split and is not counted in the experiment', async () => {
    const before = (await client.getExperiment()).variants.find((v) => v.version === 3)!.requests;
    const res = await client.predict(await robotRequest('robot-0', { model: `${MODEL}@3` }));
    expect(res.modelVersion).toBe(3);
    expect((await client.getExperiment()).variants.find((v) => v.version === 3)!.requests).toBe(before);
  });

  it('credits outcomes to the version that served the episode; GetExperiment computes the statistics from them', async () => {
    // Version 2 succeeds more often: every episode of its robots but one succeeds, none of version 1's but two.
    const outcomes = new Map<number, boolean[]>([
      [1, []],
      [2, []],
    ]);
    for (const [i, robot] of robots.entries()) {
      for (const episode of ['e1', 'e2']) {
        const version = servedBy.get(robot)!;
        const success = version === 2 ? !(i === 1 && episode === 'e1') : i < 2 && episode === 'e1';
        const credit = await client.reportOutcome({ robotId: robot, episodeId: `${robot}-${episode}`, success });
        expect(credit).toEqual({ modelName: MODEL, modelVersion: version, counted: true });
        outcomes.get(version)!.push(success);
      }
    }
    // A repeated report answers the same credit and is not counted twice.
    expect(await client.reportOutcome({ robotId: 'robot-0', episodeId: 'robot-0-e1', success: false })).toMatchObject({ counted: false });
    expect(await failureCode(client.reportOutcome({ robotId: 'robot-0', episodeId: 'never-served', success: true }))).toBe('NOT_FOUND');

    const e = await client.getExperiment(MODEL);
    const [v1, v2] = e.variants;
    const count = (v: number) => ({ successes: outcomes.get(v)!.filter(Boolean).length, trials: outcomes.get(v)!.length });
    for (const [row, version] of [
      [v1, 1],
      [v2, 2],
    ] as const) {
      const { successes, trials } = count(version);
      const robotsOn = robots.filter((r) => servedBy.get(r) === version).length;
      expect(row).toMatchObject({
        version,
        state: 'READY',
        weight: 0.5,
        episodes: trials,
        successes,
        episodesServed: trials,
        robots: robotsOn,
        requests: 3 * robotsOn,
      });
      expect(row.successRate).toBeCloseTo(successes / trials, 12);
      const ci = wilsonInterval({ successes, trials });
      expect([row.ci95Low, row.ci95High]).toEqual([ci.low, ci.high]);
      expect(row.latencyP50Ms).toBeGreaterThan(0);
      expect(row.latencyP99Ms).toBeGreaterThanOrEqual(row.latencyP50Ms);
      expect(row.meanVisionSteps).toBe(4);
    }
    expect(v1.decision).toBe('control');
    expect(v2.pValueVsControl).toBeCloseTo(twoProportionZTest(count(1), count(2)).pValue, 12);
    expect(v2.alwaysValidPValue).toBeGreaterThanOrEqual(v2.pValueVsControl);
    expect(v2.alwaysValidPValue).toBeLessThanOrEqual(1);
    expect(['keep collecting', 'candidate better']).toContain(v2.decision);
    // Episodes report a surprise from their second request on.
    expect(v1.meanWorldModelSurprise).toBeGreaterThan(0);
    expect(v2.meanWorldModelSurprise).toBeGreaterThan(0);
  });

  it('a StreamPredict stream keeps its version when the split moves its robot', async () => {
    const robot = robots.find((r) => servedBy.get(r) === 1)!;
    const stream = client.stream();
    try {
      const first = await stream.send(await robotRequest(robot, { episodeId: 'stream-1' }));
      expect(first.modelVersion).toBe(1);
      // Move every robot to version 2 (same salt: same experiment).
      await client.setTrafficSplit({ model: MODEL, weights: [{ version: 2, weight: 1 }], controlVersion: 2, salt: 'ab-test-1' });
      const later = await Promise.all([0, 1, 2].map(async () => stream.send(await robotRequest(robot, { episodeId: 'stream-1' }))));
      expect(later.map((r) => r.modelVersion)).toEqual([1, 1, 1]);
      expect((await client.predict(await robotRequest(robot, { episodeId: 'after' }))).modelVersion).toBe(2);
    } finally {
      stream.end();
    }
  });

  it('a new salt starts a new experiment with fresh counters', async () => {
    const split = await client.setTrafficSplit({
      model: MODEL,
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      salt: 'ab-test-2',
    });
    expect(split.newExperiment).toBe(true);
    const e = await client.getExperiment(MODEL);
    expect(e.salt).toBe('ab-test-2');
    expect(e.controlVersion).toBe(1);
    expect(e.variants.every((v) => v.requests === 0 && v.episodes === 0)).toBe(true);
  });
});

describe('shadow traffic', () => {
  it('mirrors primary requests to the shadow version, returns only the primary’s actions, and measures divergence', async () => {
    await client.setTrafficSplit({ model: MODEL, weights: [{ version: 1, weight: 1 }], salt: 'shadow-run', shadowVersion: 3, shadowFraction: 1 });
    const seeds = [11, 12, 13, 14, 15, 16];
    const primary: PredictResult[] = [];
    for (const seed of seeds)
      primary.push(await client.predict(await robotRequest(`shadowed-${seed}`, { sampling: { actionSteps: 2, visionSteps: 4, seed } })));
    await eventually(() => s.server.server.shadow.running === 0);
    // The primary's answer is version 1's own: the same as a pinned call with the same seed.
    const pinned = await client.predict(await robotRequest('shadowed-11', { model: `${MODEL}@1`, sampling: { actionSteps: 2, visionSteps: 4, seed: 11 } }));
    expect(primary.every((r) => r.modelVersion === 1)).toBe(true);
    const diff = Math.max(...Array.from(pinned.actions.data).map((v, i) => Math.abs(v - primary[0].actions.data[i])));
    expect(diff).toBeLessThanOrEqual(1e-5);
    const e = await client.getExperiment(MODEL);
    expect(e).toMatchObject({ shadowVersion: 3, shadowFraction: 1 });
    const v3 = e.variants.find((v) => v.version === 3)!;
    expect(v3.shadowRequests + v3.shadowShed).toBe(seeds.length);
    expect(v3.shadowRequests).toBeGreaterThan(0);
    expect(v3.requests).toBe(0);
    expect(v3.shadowActionDivergence).toBeGreaterThan(0.01);
    expect(v3.shadowLatencyP50Ms).toBeGreaterThan(0);
  });

  it('an identical checkpoint as the shadow diverges by nothing but float noise (same seed, same steps)', async () => {
    await client.setTrafficSplit({ model: MODEL, weights: [{ version: 1, weight: 1 }], salt: 'shadow-same', shadowVersion: 2, shadowFraction: 1 });
    for (const seed of [21, 22, 23]) await client.predict(await robotRequest(`same-${seed}`, { sampling: { actionSteps: 2, visionSteps: 4, seed } }));
    await eventually(() => s.server.server.shadow.running === 0);
    const v2 = (await client.getExperiment(MODEL)).variants.find((v) => v.version === 2)!;
    expect(v2.shadowRequests).toBeGreaterThan(0);
    expect(v2.shadowActionDivergence).toBeLessThan(1e-4);
  });
});

describe('AdminService argument checks', () => {
  it.each([
    [{ model: MODEL, weights: [{ version: 9, weight: 1 }] }, 'NOT_FOUND'],
    [{ model: MODEL, weights: [{ version: 1, weight: 0 }] }, 'INVALID_ARGUMENT'],
    [{ model: MODEL, weights: [{ version: 1, weight: 1 }], controlVersion: 2 }, 'INVALID_ARGUMENT'],
    [{ model: MODEL, weights: [{ version: 1, weight: 1 }], shadowVersion: 7, shadowFraction: 0.5 }, 'NOT_FOUND'],
    [{ model: 'nope', weights: [{ version: 1, weight: 1 }] }, 'NOT_FOUND'],
  ])('SetTrafficSplit %j -> %s', async (init, expected) => {
    expect(await failureCode(client.setTrafficSplit(init))).toBe(expected);
  });

  it('SetTrafficSplit with weights whose sum overflows is INVALID_ARGUMENT saying what to fix; routing is unchanged', async () => {
    const before = await client.getExperiment();
    const err = await client
      .setTrafficSplit({
        model: MODEL,
        weights: [
          { version: 1, weight: 1e308 },
          { version: 2, weight: 1e308 },
        ],
      })
      .then(
        () => undefined,
        (e: unknown) => e as DustClientError,
      );
    expect(err?.codeName).toBe('INVALID_ARGUMENT');
    expect(err?.details).toMatch(/sum overflows .*give smaller weights/);
    expect((await client.getExperiment()).experimentId).toBe(before.experimentId);
    const res = await client.predict(await robotRequest('after-overflow'));
    expect(before.variants.find((v) => v.version === res.modelVersion)?.weight).toBeGreaterThan(0);
  });

  it('GetExperiment of an unknown model is NOT_FOUND; LoadModel without a name is INVALID_ARGUMENT', async () => {
    expect(await failureCode(client.getExperiment('nope'))).toBe('NOT_FOUND');
    expect(await failureCode(client.loadModel(''))).toBe('INVALID_ARGUMENT');
    expect(await failureCode(client.loadModel(MODEL, 42))).toBe('NOT_FOUND');
  });
});
