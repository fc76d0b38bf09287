import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { IN_MEMORY, SqliteDatabase } from './sqlite-database.js';
import type { CounterRecord } from './sqlite-records.js';
import { newExperiment } from './testing/records.js';

const experiment = (over: Parameters<typeof newExperiment>[0] = {}) => newExperiment({ startedAt: 1_700_000_000_000, ...over });

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'dust-store-'));
  dirs.push(d);
  return d;
}

const counter = (experimentId: number, version: number, requests: number): CounterRecord => ({
  experimentId,
  version,
  requests,
  robots: 1,
  robotsCapped: false,
  episodesServed: 2,
  episodes: 2,
  successes: 1,
  visionStepsSum: 16,
  surpriseSum: 0.5,
  surpriseCount: 2,
  latency: Uint8Array.from([1, 2, 3]),
  shadowRequests: 0,
  shadowShed: 0,
  shadowDivergenceSum: 0,
  shadowLatency: new Uint8Array(),
  alwaysValidPValue: 0.5,
  decision: 'keep collecting',
});

describe('SqliteDatabase', () => {
  it('reads back each model’s newest experiment with its counters, robots and recent episodes (written by the writer thread)', async () => {
    const file = path.join(tempDir(), 'x.sqlite');
    const store = new SqliteDatabase(file);
    const old = store.createExperiment(experiment({ salt: 'old' }));
    await store.write({ counters: [counter(old, 1, 5)], history: [], robots: [{ experimentId: old, version: 1, robotId: 'r-old' }], ledger: [] });
    const cur = store.createExperiment(experiment({ salt: 'new' }));
    const other = store.createExperiment(experiment({ model: 'n', salt: '', weights: [] }));
    store.updateExperiment({ ...experiment({ salt: 'new', controlVersion: 2, shadowVersion: 2, shadowFraction: 0.2 }), id: cur });
    await store.write({
      counters: [counter(cur, 1, 7), counter(cur, 2, 9)],
      history: [],
      robots: [
        { experimentId: cur, version: 2, robotId: 'r1' },
        { experimentId: cur, version: 2, robotId: 'r1' },
      ],
      ledger: [
        { robotId: 'r1', episodeId: 'e1', model: 'm', version: 2, experimentId: cur, outcome: undefined },
        { robotId: 'r1', episodeId: 'e2', model: 'm', version: 2, experimentId: 0, outcome: false },
      ],
    });
    await store.write({
      counters: [counter(cur, 2, 10)],
      history: [],
      robots: [],
      ledger: [{ robotId: 'r1', episodeId: 'e1', model: 'm', version: 2, experimentId: cur, outcome: true }],
    });
    await store.close();

    const again = new SqliteDatabase(file);
    const state = again.load(10);
    expect(state.experiments.map((e) => [e.model, e.id, e.salt])).toEqual([
      ['m', cur, 'new'],
      ['n', other, ''],
    ]);
    expect(state.experiments[0]).toMatchObject({ controlVersion: 2, shadowVersion: 2, shadowFraction: 0.2, weights: experiment().weights });
    expect(state.counters.map((c) => [c.experimentId, c.version, c.requests]).sort()).toEqual([
      [cur, 1, 7],
      [cur, 2, 10],
    ]);
    expect(state.counters[0].latency).toEqual(Uint8Array.from([1, 2, 3]));
    // Robots of the replaced experiment are pruned; duplicates are stored once.
    expect(state.robots).toEqual([{ experimentId: cur, version: 2, robotId: 'r1' }]);
    expect(state.ledger.map((e) => [e.episodeId, e.outcome])).toEqual([
      ['e1', true],
      ['e2', false],
    ]);
    await again.close();
  });

  it('keeps only the most recent episodes', async () => {
    const store = new SqliteDatabase(IN_MEMORY, 3);
    const id = store.createExperiment(experiment());
    const ep = (i: number) => ({ robotId: 'r', episodeId: `e${i}`, model: 'm', version: 1, experimentId: id, outcome: undefined });
    await store.write({ counters: [], history: [], robots: [], ledger: [ep(1), ep(2), ep(3), ep(4), ep(5)] });
    expect(store.load(100).ledger.map((e) => e.episodeId)).toEqual(['e3', 'e4', 'e5']);
    expect(store.load(2).ledger.map((e) => e.episodeId)).toEqual(['e4', 'e5']);
    await store.close();
  });

  it('says which option to change when the file cannot be opened', () => {
    const dir = tempDir();
    const notADir = path.join(dir, 'file');
    writeFileSync(notADir, 'x');
    expect(() => new SqliteDatabase(path.join(notADir, 'db.sqlite'))).toThrow(/--experiment-db \(DUST_EXPERIMENT_DB\)/);
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o500);
      expect(() => new SqliteDatabase(path.join(dir, 'db.sqlite'))).toThrow(/cannot open the experiment database/);
    }
  });

  it('refuses a database written by a newer schema instead of corrupting it', () => {
    const file = path.join(tempDir(), 'future.sqlite');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteDatabase(file)).toThrow(/schema version 99/);
  });
});
