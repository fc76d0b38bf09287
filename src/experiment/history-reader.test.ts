import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readStoredExperiments } from './history-reader.js';
import { SqliteDatabase } from './sqlite-database.js';
import type { ExperimentDatabase } from './sqlite-records.js';
import { BatchWriter, openDatabase } from './sqlite-schema.js';
import { SqliteExperimentStore } from './sqlite-store.js';
import { newExperiment, servedEvent } from './testing/records.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'dust-history-'));
  dirs.push(d);
  return path.join(d, 'experiments.sqlite');
}

/** The file database with its batches written on this thread (no writer thread in a unit test). */
function onThisThread(file: string): ExperimentDatabase {
  const admin = new SqliteDatabase(file);
  const db = openDatabase(file);
  const writer = new BatchWriter(db, 1000);
  return {
    load: (limit) => admin.load(limit),
    createExperiment: (e) => admin.createExperiment(e),
    updateExperiment: (e) => admin.updateExperiment(e),
    write: (batch) => Promise.resolve(writer.run(batch)),
    close: async () => {
      db.close();
      await admin.close();
    },
  };
}

describe('the experiment history', () => {
  it('keeps each version’s running totals once per window in which they changed, and reads them back', async () => {
    const file = tempFile();
    let now = 0;
    const store = new SqliteExperimentStore(onThisThread(file), { flushIntervalMs: 0, historyWindowMs: 60_000, now: () => now });
    const { id } = await store.ensureExperiment(newExperiment({ startedAt: 0 }));
    const served = (version: number, episodeId: string, latencyMs: number) =>
      store.served(servedEvent(id, { version, robotId: `r${version}`, episodeId, latencyMs, visionSteps: 4 * version }));

    now = 10_000;
    await served(1, 'a', 10);
    await served(2, 'b', 30);
    await store.credit('r1', 'a', false);
    await store.credit('r2', 'b', true);
    await store.flush();
    now = 30_000; // the same window: version 1's row is replaced, version 2 (unchanged) keeps its row
    await served(1, 'c', 20);
    await store.flush();
    now = 70_000; // the next window
    await served(2, 'd', 50);
    await store.flush();

    const [stored] = readStoredExperiments(file);
    expect(stored.experiment).toMatchObject({ id, model: 'm', controlVersion: 1 });
    expect(stored.history.map((p) => [p.version, p.at, p.requests, p.episodes, p.successes, p.visionStepsSum])).toEqual([
      [2, 10_000, 1, 1, 1, 8],
      [1, 30_000, 2, 1, 0, 8],
      [2, 70_000, 2, 1, 1, 16],
    ]);
    // The sketch is of every request so far, within its 1% accuracy.
    expect(stored.history[0].latencyP50Ms).toBeCloseTo(30, 0);
    expect(stored.history[2].latencyP99Ms).toBeGreaterThan(29);
    expect(stored.versions.map((v) => [v.version, v.requests, v.episodes, v.successes])).toEqual([
      [1, 2, 1, 0],
      [2, 2, 1, 1],
    ]);
    expect(stored.versions[0].latencyP50Ms).toBeGreaterThan(9);
    await store.close();
  });

  it('says which file or model is wrong', () => {
    const missing = path.join(path.dirname(tempFile()), 'missing.sqlite');
    expect(() => readStoredExperiments(missing)).toThrow(`cannot open the experiment database ${missing}`);
    const notOurs = tempFile();
    writeFileSync(notOurs, '');
    expect(() => readStoredExperiments(notOurs)).toThrow('is not an experiment database');
    const file = tempFile();
    openDatabase(file).close();
    expect(readStoredExperiments(file)).toEqual([]);
    expect(() => readStoredExperiments(file, 'push')).toThrow('has no experiment of model "push"');
  });
});
