/**
 * The experiment database's schema and the one function that writes a batch into it, used by the writer thread
 * (sqlite-writer-thread.ts) for file databases and by the main thread for in-memory ones. Plain columns, so an
 * operator can read the database with the sqlite3 shell.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoreBatch } from './sqlite-records.js';

/** The special path that keeps everything in memory (nothing survives a restart). */
export const IN_MEMORY = ':memory:';

const SCHEMA_VERSION = 1;

/** History rows kept (one per version per window in which it changed), oldest pruned first. @default 100000 */
export const DEFAULT_HISTORY_RETENTION = 100_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS experiments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  salt TEXT NOT NULL,
  weights TEXT NOT NULL,           -- JSON [{"version":1,"weight":0.9}, ...], normalized
  control_version INTEGER NOT NULL,
  sticky_key TEXT NOT NULL,
  shadow_version INTEGER NOT NULL,
  shadow_fraction REAL NOT NULL,
  started_at INTEGER NOT NULL      -- epoch ms
);
CREATE INDEX IF NOT EXISTS experiments_model ON experiments (model, id);
CREATE TABLE IF NOT EXISTS counters (
  experiment_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  robots INTEGER NOT NULL,
  robots_capped INTEGER NOT NULL,
  episodes_served INTEGER NOT NULL,
  episodes INTEGER NOT NULL,
  successes INTEGER NOT NULL,
  vision_steps_sum REAL NOT NULL,
  surprise_sum REAL NOT NULL,
  surprise_count INTEGER NOT NULL,
  latency BLOB NOT NULL,           -- DDSketch protobuf
  shadow_requests INTEGER NOT NULL,
  shadow_shed INTEGER NOT NULL,
  shadow_divergence_sum REAL NOT NULL,
  shadow_latency BLOB NOT NULL,
  always_valid_p REAL NOT NULL,
  decision TEXT NOT NULL,
  PRIMARY KEY (experiment_id, version)
);
CREATE TABLE IF NOT EXISTS history (  -- running totals per version, one row per window (experiment report)
  experiment_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  window_start INTEGER NOT NULL,   -- epoch ms
  at INTEGER NOT NULL,             -- epoch ms of the flush that wrote the row
  requests INTEGER NOT NULL,
  episodes INTEGER NOT NULL,
  successes INTEGER NOT NULL,
  vision_steps_sum REAL NOT NULL,
  surprise_sum REAL NOT NULL,
  surprise_count INTEGER NOT NULL,
  latency_p50_ms REAL NOT NULL,
  latency_p99_ms REAL NOT NULL,
  shadow_requests INTEGER NOT NULL,
  shadow_divergence_sum REAL NOT NULL,
  always_valid_p REAL NOT NULL,
  decision TEXT NOT NULL,
  PRIMARY KEY (experiment_id, version, window_start)
);
CREATE TABLE IF NOT EXISTS robots (
  experiment_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  robot_id TEXT NOT NULL,
  PRIMARY KEY (experiment_id, version, robot_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS episodes (
  robot_id TEXT NOT NULL,
  episode_id TEXT NOT NULL,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  experiment_id INTEGER NOT NULL,  -- 0: served by a pinned request
  outcome INTEGER,                 -- NULL until reported; 1 success, 0 failure
  PRIMARY KEY (robot_id, episode_id)
);
`;

/**
 * Opens (creating when missing) a database with the current schema. WAL journal with synchronous=NORMAL: a
 * commit appends to the WAL without an fsync; checkpoints sync.
 * @throws Error naming the file and the option to change when it cannot be opened or is newer than this server.
 */
export function openDatabase(file: string): Database.Database {
  try {
    if (file !== IN_MEMORY) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new Error(`it has schema version ${version}, newer than this server's ${SCHEMA_VERSION}`);
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return db;
  } catch (err) {
    throw new Error(
      `cannot open the experiment database ${file} (${(err as Error).message}); set --experiment-db (DUST_EXPERIMENT_DB) to a writable file, or to ${IN_MEMORY} to keep experiments in memory only`,
      { cause: err },
    );
  }
}

/** Writes batches into one connection, each in one transaction. */
export class BatchWriter {
  private readonly write: (batch: StoreBatch) => void;

  constructor(db: Database.Database, ledgerRetention: number) {
    const upsertCounter = db.prepare(
      `INSERT INTO counters VALUES (@experimentId, @version, @requests, @robots, @robotsCapped, @episodesServed, @episodes,
         @successes, @visionStepsSum, @surpriseSum, @surpriseCount, @latency, @shadowRequests, @shadowShed,
         @shadowDivergenceSum, @shadowLatency, @alwaysValidPValue, @decision)
       ON CONFLICT (experiment_id, version) DO UPDATE SET requests = excluded.requests, robots = excluded.robots,
         robots_capped = excluded.robots_capped, episodes_served = excluded.episodes_served, episodes = excluded.episodes,
         successes = excluded.successes, vision_steps_sum = excluded.vision_steps_sum, surprise_sum = excluded.surprise_sum,
         surprise_count = excluded.surprise_count, latency = excluded.latency, shadow_requests = excluded.shadow_requests,
         shadow_shed = excluded.shadow_shed, shadow_divergence_sum = excluded.shadow_divergence_sum,
         shadow_latency = excluded.shadow_latency, always_valid_p = excluded.always_valid_p, decision = excluded.decision`,
    );
    const insertRobot = db.prepare('INSERT OR IGNORE INTO robots VALUES (?, ?, ?)');
    const upsertEpisode = db.prepare(
      `INSERT INTO episodes VALUES (@robotId, @episodeId, @model, @version, @experimentId, @outcome)
       ON CONFLICT (robot_id, episode_id) DO UPDATE SET outcome = excluded.outcome`,
    );
    const upsertHistory = db.prepare(
      `INSERT OR REPLACE INTO history VALUES (@experimentId, @version, @windowStart, @at, @requests, @episodes, @successes,
         @visionStepsSum, @surpriseSum, @surpriseCount, @latencyP50Ms, @latencyP99Ms, @shadowRequests, @shadowDivergenceSum,
         @alwaysValidPValue, @decision)`,
    );
    // Bounded like the ledger: the oldest rows go first (a new table, so older servers simply do not write it).
    const pruneHistory = db.prepare('DELETE FROM history WHERE rowid <= (SELECT MAX(rowid) FROM history) - ?');
    const pruneEpisodes = db.prepare('DELETE FROM episodes WHERE rowid <= (SELECT MAX(rowid) FROM episodes) - ?');
    this.write = db.transaction((batch: StoreBatch) => {
      for (const c of batch.counters) {
        upsertCounter.run({ ...c, robotsCapped: c.robotsCapped ? 1 : 0, latency: Buffer.from(c.latency), shadowLatency: Buffer.from(c.shadowLatency) });
      }
      for (const h of batch.history) upsertHistory.run(h);
      if (batch.history.length > 0) pruneHistory.run(DEFAULT_HISTORY_RETENTION);
      for (const r of batch.robots) insertRobot.run(r.experimentId, r.version, r.robotId);
      for (const e of batch.ledger) upsertEpisode.run({ ...e, outcome: e.outcome === undefined ? null : e.outcome ? 1 : 0 });
      if (batch.ledger.length > 0) pruneEpisodes.run(ledgerRetention);
    });
  }

  run(batch: StoreBatch): void {
    this.write(batch);
  }
}
