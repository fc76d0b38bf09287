import { afterEach, describe, expect, it } from 'vitest';
import { IN_MEMORY, SqliteDatabase } from './sqlite-database.js';
import type { ExperimentDatabase, StoreBatch } from './sqlite-records.js';
import { SqliteExperimentStore } from './sqlite-store.js';
import { newExperiment, servedEvent as event } from './testing/records.js';

const stores: SqliteExperimentStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A database whose writes fail when `fail(batchNumber)` says so. */
function flaky(inner: SqliteDatabase, fail: (n: number) => boolean): { db: ExperimentDatabase; writes: StoreBatch[] } {
  const writes: StoreBatch[] = [];
  let n = 0;
  const db: ExperimentDatabase = {
    load: (limit) => inner.load(limit),
    createExperiment: (e) => inner.createExperiment(e),
    updateExperiment: (e) => inner.updateExperiment(e),
    async write(batch) {
      if (fail(++n)) throw new Error('busy');
      writes.push(batch);
      await inner.write(batch);
    },
    close: () => inner.close(),
  };
  return { db, writes };
}

function open(db: ExperimentDatabase | string = IN_MEMORY): SqliteExperimentStore {
  const store = new SqliteExperimentStore(db, { flushIntervalMs: 0 });
  stores.push(store);
  return store;
}

describe('SqliteExperimentStore', () => {
  it('a flood of new episodes is written in chunks; a chunk that fails is written at the next flush', async () => {
    const inner = new SqliteDatabase(IN_MEMORY);
    const { db, writes } = flaky(inner, (n) => n === 2);
    const store = open(db);
    const { id } = await store.ensureExperiment(newExperiment());
    for (let i = 0; i < 2500; i++) await store.served(event(id, { robotId: `r${i % 10}`, episodeId: `e${i}` }));
    await store.flush();
    // 10 robots + 2500 episodes in chunks of 1000 rows; the second chunk failed, the third was not tried.
    expect(writes.map((w) => [w.counters.length, w.robots.length, w.ledger.length])).toEqual([[1, 10, 990]]);
    await store.flush();
    expect(writes.slice(1).map((w) => [w.counters.length, w.robots.length, w.ledger.length])).toEqual([
      [0, 0, 1000],
      [0, 0, 510],
    ]);
    expect(inner.load(10_000).ledger).toHaveLength(2500);
  });

  it('a failed write is retried at the next flush', async () => {
    let failing = true;
    const { db, writes } = flaky(new SqliteDatabase(IN_MEMORY), () => failing);
    const store = open(db);
    const { id } = await store.ensureExperiment(newExperiment());
    await store.served(event(id));
    await store.flush();
    failing = false;
    await store.flush();
    expect(writes).toHaveLength(1);
    expect(writes[0].counters[0]).toMatchObject({ version: 1, requests: 1 });
    expect(writes[0].robots).toEqual([{ experimentId: id, version: 1, robotId: 'r' }]);
    expect(writes[0].ledger).toHaveLength(1);
    await store.flush();
    expect(writes).toHaveLength(1); // nothing new
  });

  it('a pin to the version the split gave the episode counts (a resumed stream); other pins do not', async () => {
    const store = open();
    const { id } = await store.ensureExperiment(newExperiment());
    await store.served(event(id, { version: 2, episodeId: 'routed' }));
    await store.served(event(id, { version: 2, episodeId: 'routed', pinned: true }));
    await store.served(event(id, { version: 1, episodeId: 'routed', pinned: true }));
    await store.served(event(id, { version: 2, episodeId: 'pinned-from-the-start', pinned: true }));
    await store.served(event(id, { version: 2, episodeId: 'pinned-from-the-start', pinned: true }));
    await store.served(event(id, { version: 2, episodeId: '', pinned: true }));
    const v2 = (await store.totals(id)).find((t) => t.version === 2)!;
    expect(v2).toMatchObject({ requests: 2, episodesServed: 1 });
    expect((await store.totals(id)).find((t) => t.version === 1)).toBeUndefined();
    expect(await store.credit('r', 'routed', true)).toEqual({ model: 'm', version: 2, experimentId: id, counted: true });
    expect(await store.credit('r', 'pinned-from-the-start', true)).toEqual({ model: 'm', version: 2, experimentId: 0, counted: false });
  });
});
