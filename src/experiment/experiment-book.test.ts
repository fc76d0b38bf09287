import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { DEFAULT_SERVE_OPTIONS } from '../config/index.js';
import { ExperimentBook, experimentSettings, type ExperimentOptions, type SplitSpec } from './experiment-book.js';
import { IN_MEMORY } from './sqlite-database.js';
import { SqliteExperimentStore } from './sqlite-store.js';
import { twoProportionZTest, wilsonInterval } from './statistics.js';
import type { ExperimentStore } from './store.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
/** The server's defaults. */
const SETTINGS = experimentSettings(DEFAULT_SERVE_OPTIONS);
const books: ExperimentBook[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const b of books.splice(0)) await b.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(
  store: ExperimentStore = new SqliteExperimentStore(IN_MEMORY, { flushIntervalMs: 0 }),
  options: Partial<ExperimentOptions> = {},
): Promise<ExperimentBook> {
  const book = await ExperimentBook.open(store, quiet, { ...SETTINGS, newSalt: () => 'drawn-salt', ...options });
  books.push(book);
  return book;
}

const split = (over: Partial<SplitSpec> = {}): SplitSpec => ({
  weights: [
    { version: 1, weight: 1 },
    { version: 2, weight: 1 },
  ],
  controlVersion: 1,
  stickyKey: 'robot',
  salt: '',
  shadowVersion: 0,
  shadowFraction: 0,
  ...over,
});

const served = (robotId: string, episodeId = '', latencyMs = 10) => ({
  robotId,
  episodeId,
  requestId: '',
  latencyMs,
  visionSteps: 8,
  worldModelSurprise: 0.25,
});

describe('ExperimentBook without a split', () => {
  it('sends unpinned traffic to the newest READY version and counts it', async () => {
    const book = await open();
    await book.ensure('m');
    const a = book.assign('m', [1, 2], 'r1', 'e1')!;
    expect(a.version).toBe(2);
    expect(book.assign('m', [1], 'r1', '')!.version).toBe(1);
    expect(book.assign('m', [], 'r1', '')).toBeUndefined();
    await book.served(a, served('r1', 'e1', 12));
    await book.served(a, served('r2', '', 20));
    const report = await book.report('m', [1, 2], [1, 2]);
    expect(report.salt).toBe('');
    const v2 = report.variants.find((v) => v.version === 2)!;
    expect(v2).toMatchObject({ weight: 1, requests: 2, robots: 2, episodesServed: 1, meanVisionSteps: 8, meanWorldModelSurprise: 0.25, decision: 'none' });
    expect(v2.latencyP50Ms).toBeGreaterThan(11);
    expect(report.variants.find((v) => v.version === 1)).toMatchObject({ weight: 0, requests: 0 });
    expect(book.trafficWeight('m', 2, [1, 2])).toBe(1);
    expect(book.trafficWeight('m', 1, [1, 2])).toBe(0);
  });
});

describe('ExperimentBook with a split', () => {
  it('the first split draws a salt and starts an experiment; robots stick to their version', async () => {
    const book = await open();
    await book.ensure('m');
    const before = book.assign('m', [1, 2], 'r', '')!.experimentId;
    expect(before).toBeGreaterThan(0);
    const rec = await book.setSplit(
      'm',
      split({
        weights: [
          { version: 1, weight: 3 },
          { version: 2, weight: 1 },
        ],
      }),
    );
    expect(rec.salt).toBe('drawn-salt');
    expect(rec.id).not.toBe(before);
    expect(rec.weights).toEqual([
      { version: 1, weight: 0.75 },
      { version: 2, weight: 0.25 },
    ]);
    const counts = { 1: 0, 2: 0 } as Record<number, number>;
    for (let i = 0; i < 4000; i++) {
      const v = book.assign('m', [1, 2], `robot-${i}`, '')!.version;
      expect(book.assign('m', [1, 2], `robot-${i}`, 'another-episode')!.version).toBe(v);
      counts[v]++;
    }
    expect(Math.abs(counts[2] / 4000 - 0.25)).toBeLessThan(0.03);
    expect(book.trafficWeight('m', 2, [1, 2])).toBeCloseTo(0.25, 12);
    // Version 2 not READY: its share goes to version 1.
    expect(book.trafficWeight('m', 1, [1])).toBe(1);
  });

  it('per-episode stickiness assigns episodes of one robot independently', async () => {
    const book = await open();
    await book.setSplit('m', split({ stickyKey: 'episode' }));
    const versions = new Set(Array.from({ length: 40 }, (_, i) => book.assign('m', [1, 2], 'r', `e${i}`)!.version));
    expect(versions).toEqual(new Set([1, 2]));
  });

  it('an ongoing episode keeps its version when a weight change moves its robot, unless the version loses its weight', async () => {
    const book = await open();
    await book.setSplit('m', split({ salt: 's1' }));
    const robot = Array.from({ length: 100 }, (_, i) => `r${i}`).find((r) => book.assign('m', [1, 2], r, '')!.version === 2)!;
    await book.served(book.assign('m', [1, 2], robot, 'ep')!, served(robot, 'ep'));
    await book.setSplit(
      'm',
      split({
        salt: 's1',
        weights: [
          { version: 1, weight: 1e6 },
          { version: 2, weight: 1e-6 },
        ],
      }),
    );
    expect(book.assign('m', [1, 2], robot, '')!.version).toBe(1); // its next episode moves
    expect(book.assign('m', [1, 2], robot, 'ep')!.version).toBe(2); // this one finishes on version 2
    await book.setSplit('m', split({ salt: 's1', weights: [{ version: 1, weight: 1 }] }));
    expect(book.assign('m', [1, 2], robot, 'ep')!.version).toBe(1); // rolled back: version 2 has no weight
  });

  it('credits outcomes to the version that served the episode, once; pinned episodes are credited, not counted', async () => {
    const book = await open();
    await book.setSplit('m', split({ salt: 's' }));
    const a = book.assign('m', [1, 2], 'r1', 'e1')!;
    await book.served(a, served('r1', 'e1'));
    // A later request of the episode pinned elsewhere does not change who owns it.
    await book.served(book.pinned('m', a.version === 1 ? 2 : 1), served('r1', 'e1'));
    expect(await book.outcome('r1', 'e1', true)).toEqual({ model: 'm', version: a.version, counted: true });
    expect(await book.outcome('r1', 'e1', false)).toEqual({ model: 'm', version: a.version, counted: false });
    await book.served(book.pinned('m', 2), served('r2', 'e2'));
    expect(await book.outcome('r2', 'e2', true)).toEqual({ model: 'm', version: 2, counted: false });
    expect(await book.outcome('r3', 'e3', true)).toBeUndefined();
    const v = (await book.report('m', [1, 2], [1, 2])).variants.find((x) => x.version === a.version)!;
    expect(v).toMatchObject({ episodes: 1, successes: 1, successRate: 1, requests: 1 });
  });

  it('reports success rates, Wilson intervals, the z-test and the always-valid decision against the control', async () => {
    const book = await open();
    await book.setSplit(
      'm',
      split({
        salt: 's',
        weights: [
          { version: 1, weight: 1 },
          { version: 2, weight: 1 },
        ],
      }),
    );
    let i = 0;
    const run = async (version: number, success: boolean) => {
      const a = { model: 'm', version, experimentId: book.split('m')!.id, pinned: false };
      await book.served(a, served(`robot-${version}-${i % 7}`, `ep-${i}`));
      await book.outcome(`robot-${version}-${i % 7}`, `ep-${i++}`, success);
    };
    for (let k = 0; k < 300; k++) {
      await run(1, k % 10 < 3); // control: 30%
      await run(2, k % 10 < 6); // candidate: 60%
    }
    const report = await book.report('m', [1, 2], [1, 2]);
    const [control, candidate] = report.variants;
    expect(control).toMatchObject({ version: 1, episodes: 300, successes: 90, decision: 'control', pValueVsControl: 1, alwaysValidPValue: 1, robots: 7 });
    expect(candidate).toMatchObject({ version: 2, episodes: 300, successes: 180, successRate: 0.6, decision: 'candidate better' });
    expect(candidate.ci95).toEqual(wilsonInterval({ successes: 180, trials: 300 }));
    expect(candidate.pValueVsControl).toBe(twoProportionZTest({ successes: 90, trials: 300 }, { successes: 180, trials: 300 }).pValue);
    expect(candidate.alwaysValidPValue).toBeLessThan(0.05);
    // The always-valid p-value pays for peeking: it is larger than the fixed-sample one.
    expect(candidate.alwaysValidPValue).toBeGreaterThan(candidate.pValueVsControl);
  });

  it('a worse candidate is called worse; changing the control restarts the tests from the data so far', async () => {
    const book = await open();
    await book.setSplit('m', split({ salt: 's' }));
    const id = book.split('m')!.id;
    for (let k = 0; k < 400; k++) {
      for (const [version, rate] of [
        [1, 6],
        [2, 2],
      ] as const) {
        await book.served({ model: 'm', version, experimentId: id, pinned: false }, served('r', `${version}-${k}`));
        await book.outcome('r', `${version}-${k}`, k % 10 < rate);
      }
    }
    expect((await book.report('m', [1, 2], [1, 2])).variants[1].decision).toBe('candidate worse');
    await book.setSplit('m', split({ salt: 's', controlVersion: 2 }));
    const after = await book.report('m', [1, 2], [1, 2]);
    expect(after.id).toBe(id);
    expect(after.variants.map((v) => v.decision)).toEqual(['candidate better', 'control']);
  });

  it('a new salt starts a new experiment with fresh counters; episodes of the old one are credited, not counted', async () => {
    const book = await open();
    const first = await book.setSplit('m', split({ salt: 'a' }));
    const a = book.assign('m', [1, 2], 'r', 'old')!;
    await book.served(a, served('r', 'old'));
    const second = await book.setSplit('m', split({ salt: 'b' }));
    expect(second.id).toBeGreaterThan(first.id);
    expect((await book.report('m', [1, 2], [1, 2])).variants.every((v) => v.requests === 0)).toBe(true);
    expect(await book.outcome('r', 'old', true)).toEqual({ model: 'm', version: a.version, counted: false });
    // The same salt again keeps the experiment.
    expect(
      (
        await book.setSplit(
          'm',
          split({
            salt: 'b',
            weights: [
              { version: 1, weight: 1 },
              { version: 2, weight: 3 },
            ],
          }),
        )
      ).id,
    ).toBe(second.id);
    expect(
      (
        await book.setSplit(
          'm',
          split({
            salt: '',
            weights: [
              { version: 1, weight: 1 },
              { version: 2, weight: 3 },
            ],
          }),
        )
      ).salt,
    ).toBe('b');
    // Another sticky key reassigns everyone: a new experiment.
    expect((await book.setSplit('m', split({ salt: 'b', stickyKey: 'episode' }))).id).toBeGreaterThan(second.id);
  });

  it.each([
    [{ controlVersion: 3 }, /control_version 3 is not in the split/],
    [{ shadowFraction: 1.5, shadowVersion: 2 }, /outside \[0, 1\]/],
    [{ shadowFraction: 0.5 }, /shadow_version is 0/],
    [{ weights: [] }, /empty/],
    [
      {
        weights: [
          { version: 1, weight: 1e308 },
          { version: 2, weight: 1e308 },
        ],
      },
      /sum overflows/,
    ],
  ])('refuses a bad split %j', async (over, message) => {
    const book = await open();
    await expect(book.setSplit('m', split(over as Partial<SplitSpec>))).rejects.toThrow(InvalidArgumentError);
    await expect(book.setSplit('m', split(over as Partial<SplitSpec>))).rejects.toThrow(message);
  });
});

describe('shadow traffic', () => {
  it('mirrors the configured fraction of split-routed requests, never pinned ones or the shadow itself', async () => {
    let draw = 0;
    const draws = [0.1, 0.3, 0.1];
    const book = await open(undefined, { random: () => draws[draw++ % draws.length] });
    await book.setSplit('m', split({ weights: [{ version: 1, weight: 1 }], shadowVersion: 2, shadowFraction: 0.25 }));
    const a = book.assign('m', [1, 2], 'r', '')!;
    expect(a.version).toBe(1);
    expect(book.shadowFor(a, [1, 2])).toBe(2); // 0.1 < 0.25
    expect(book.shadowFor(a, [1, 2])).toBeUndefined(); // 0.3
    expect(book.shadowFor(a, [1])).toBeUndefined(); // shadow not READY
    expect(book.shadowFor(book.pinned('m', 1), [1, 2])).toBeUndefined();
    expect(book.shadowFor({ ...a, version: 2 }, [1, 2])).toBeUndefined();
    book.shadowServed('m', 2, 30, 0.2);
    book.shadowServed('m', 2, 50, 0.4);
    book.shadowShed('m', 2);
    const v2 = (await book.report('m', [1, 2], [1, 2])).variants.find((v) => v.version === 2)!;
    expect(v2).toMatchObject({ weight: 0, requests: 0, shadowRequests: 2, shadowShed: 1 });
    expect(v2.shadowActionDivergence).toBeCloseTo(0.3, 12);
    expect(Math.abs(v2.shadowLatencyP50Ms / 30 - 1)).toBeLessThan(0.011);
  });
});

describe('persistence', () => {
  function tempDb(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-exp-'));
    dirs.push(dir);
    return path.join(dir, 'sub', 'experiments.sqlite');
  }

  it('salt, weights, counters, robots, sequential tests and the episode ledger survive a restart', async () => {
    const file = tempDb();
    const first = await open(new SqliteExperimentStore(file, { flushIntervalMs: 0 }));
    await first.setSplit('m', split({ salt: 'persist', shadowVersion: 2, shadowFraction: 0.1 }));
    const assigned = Array.from({ length: 50 }, (_, i) => first.assign('m', [1, 2], `r${i}`, '')!.version);
    const id = first.split('m')!.id;
    for (let k = 0; k < 200; k++) {
      for (const [version, rate] of [
        [1, 2],
        [2, 8],
      ] as const) {
        await first.served({ model: 'm', version, experimentId: id, pinned: false }, served(`r${k % 5}`, `${version}-${k}`, 5 + (k % 20)));
        await first.outcome(`r${k % 5}`, `${version}-${k}`, k % 10 < rate);
      }
    }
    await first.served({ model: 'm', version: 2, experimentId: id, pinned: false }, served('late', 'unfinished'));
    first.shadowServed('m', 2, 40, 0.5);
    const before = await first.report('m', [1, 2], [1, 2]);
    expect(before.variants[1].decision).toBe('candidate better');
    await first.close();
    books.splice(books.indexOf(first), 1);

    const second = await open(new SqliteExperimentStore(file, { flushIntervalMs: 0 }));
    expect(await second.report('m', [1, 2], [1, 2])).toEqual(before);
    expect(Array.from({ length: 50 }, (_, i) => second.assign('m', [1, 2], `r${i}`, '')!.version)).toEqual(assigned);
    // An episode served before the restart is credited after it, to its version, and counted.
    expect(await second.outcome('late', 'unfinished', true)).toEqual({ model: 'm', version: 2, counted: true });
    // A robot seen before the restart is not counted twice.
    await second.served({ model: 'm', version: 1, experimentId: id, pinned: false }, served('r0'));
    expect((await second.report('m', [1, 2], [1, 2])).variants[0].robots).toBe(before.variants[0].robots);
  });
});

describe('a stored split that cannot route', () => {
  function tempDb(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-exp-'));
    dirs.push(dir);
    return path.join(dir, 'experiments.sqlite');
  }

  /** A split written by this server, then its weights replaced in the file (as an older server or a hand edit left them). */
  async function storedWith(weightsText: string): Promise<{ file: string; id: number }> {
    const file = tempDb();
    const first = await open(new SqliteExperimentStore(file, { flushIntervalMs: 0 }));
    const { id } = await first.setSplit('m', split({ salt: 'stored' }));
    await first.close();
    books.splice(books.indexOf(first), 1);
    const db = new Database(file);
    db.prepare('UPDATE experiments SET weights = ? WHERE id = ?').run(weightsText, id);
    db.close();
    return { file, id };
  }

  it.each([
    // What a server without the sum check stored for weights [1e308, 1e308].
    ['shares of 0', '[{"version":1,"weight":0},{"version":2,"weight":0}]'],
    ['non-finite weights (JSON null)', '[{"version":1,"weight":null},{"version":2,"weight":null}]'],
    ['text that is not JSON', '[{"version":1,'],
  ])('%s: refused at load with a warning; the model serves its newest READY version; a new split starts a new experiment', async (_what, text) => {
    const { file, id } = await storedWith(text);
    const warnings: Array<{ obj: object; msg: string }> = [];
    const book = await ExperimentBook.open(
      new SqliteExperimentStore(file, { flushIntervalMs: 0 }),
      { ...quiet, warn: (obj, msg) => warnings.push({ obj, msg }) },
      { ...SETTINGS, newSalt: () => 'drawn-salt' },
    );
    books.push(book);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/stored traffic split refused/);
    expect(warnings[0].obj).toMatchObject({ model: 'm', experiment: id });
    for (let i = 0; i < 200; i++) expect(book.assign('m', [1, 2], `robot-${i}`, `e${i}`)).toMatchObject({ version: 2, experimentId: id });
    expect(book.trafficWeight('m', 2, [1, 2])).toBe(1);
    expect((await book.report('m', [1, 2], [1, 2])).variants.map((v) => v.weight)).toEqual([0, 1]);
    // Re-reading the store (as a shared store's replicas do) keeps refusing it without repeating the warning.
    await book.refresh();
    expect(warnings).toHaveLength(1);
    expect(book.assign('m', [1, 2], 'robot-0', '')!.version).toBe(2);

    const fresh = await book.setSplit('m', split({ weights: [{ version: 1, weight: 1 }] }));
    expect(fresh.id).toBeGreaterThan(id);
    expect(book.assign('m', [1, 2], 'robot-0', '')).toMatchObject({ version: 1, experimentId: fresh.id });
  });
});
