/**
 * The experiment store in an embedded SQLite database (better-sqlite3). WAL journal with synchronous=NORMAL:
 * a commit appends to the WAL without an fsync (durable across a process crash, and across power loss up to
 * the last checkpoint), so a flush of a batch costs the event loop well under a millisecond. The schema is
 * plain columns so that an operator can read it with the sqlite3 shell.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Decision } from './statistics.js';
import type {
  CounterRecord,
  ExperimentRecord,
  ExperimentStore,
  NewExperiment,
  PersistedState,
  StoreBatch,
} from './store.js';
import type { StickyKeyKind, VersionWeight } from './traffic-split.js';

/** Episodes kept in the database for crediting late outcomes; older rows are pruned at flush. @default 200000 */
export const DEFAULT_LEDGER_RETENTION = 200_000;

/** The special path that keeps everything in memory (nothing survives a restart). */
export const IN_MEMORY = ':memory:';

const SCHEMA_VERSION = 1;

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

interface ExperimentRow {
  id: number;
  model: string;
  salt: string;
  weights: string;
  control_version: number;
  sticky_key: string;
  shadow_version: number;
  shadow_fraction: number;
  started_at: number;
}

interface CounterRow {
  experiment_id: number;
  version: number;
  requests: number;
  robots: number;
  robots_capped: number;
  episodes_served: number;
  episodes: number;
  successes: number;
  vision_steps_sum: number;
  surprise_sum: number;
  surprise_count: number;
  latency: Buffer;
  shadow_requests: number;
  shadow_shed: number;
  shadow_divergence_sum: number;
  shadow_latency: Buffer;
  always_valid_p: number;
  decision: string;
}

interface EpisodeRow {
  robot_id: string;
  episode_id: string;
  model: string;
  version: number;
  experiment_id: number;
  outcome: number | null;
}

const CURRENT_IDS = 'SELECT MAX(id) FROM experiments GROUP BY model';

function toExperiment(r: ExperimentRow): ExperimentRecord {
  return {
    id: r.id,
    model: r.model,
    salt: r.salt,
    weights: JSON.parse(r.weights) as VersionWeight[],
    controlVersion: r.control_version,
    stickyKey: r.sticky_key as StickyKeyKind,
    shadowVersion: r.shadow_version,
    shadowFraction: r.shadow_fraction,
    startedAt: r.started_at,
  };
}

function toCounter(r: CounterRow): CounterRecord {
  return {
    experimentId: r.experiment_id,
    version: r.version,
    requests: r.requests,
    robots: r.robots,
    robotsCapped: r.robots_capped === 1,
    episodesServed: r.episodes_served,
    episodes: r.episodes,
    successes: r.successes,
    visionStepsSum: r.vision_steps_sum,
    surpriseSum: r.surprise_sum,
    surpriseCount: r.surprise_count,
    latency: new Uint8Array(r.latency),
    shadowRequests: r.shadow_requests,
    shadowShed: r.shadow_shed,
    shadowDivergenceSum: r.shadow_divergence_sum,
    shadowLatency: new Uint8Array(r.shadow_latency),
    alwaysValidPValue: r.always_valid_p,
    decision: r.decision as Decision,
  };
}

export class SqliteExperimentStore implements ExperimentStore {
  private readonly db: Database.Database;
  private readonly statements;

  /**
   * Opens (creating when missing) the database at `file`, or an in-memory one for IN_MEMORY.
   * @throws Error that names the file and the option to change when it cannot be opened or written.
   */
  constructor(
    readonly file: string,
    private readonly ledgerRetention = DEFAULT_LEDGER_RETENTION,
  ) {
    try {
      if (file !== IN_MEMORY) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 2000');
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(`it has schema version ${version}, newer than this server's ${SCHEMA_VERSION}`);
      }
      this.db.exec(SCHEMA);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (err) {
      throw new Error(
        `cannot open the experiment database ${file} (${(err as Error).message}); set --experiment-db (DUST_EXPERIMENT_DB) to a writable file, or to ${IN_MEMORY} to keep experiments in memory only`,
        { cause: err },
      );
    }
    const db = this.db;
    this.statements = {
      insertExperiment: db.prepare(
        `INSERT INTO experiments (model, salt, weights, control_version, sticky_key, shadow_version, shadow_fraction, started_at)
         VALUES (@model, @salt, @weights, @controlVersion, @stickyKey, @shadowVersion, @shadowFraction, @startedAt)`,
      ),
      updateExperiment: db.prepare(
        `UPDATE experiments SET weights = @weights, control_version = @controlVersion, sticky_key = @stickyKey,
           shadow_version = @shadowVersion, shadow_fraction = @shadowFraction WHERE id = @id`,
      ),
      // Robot ids of finished experiments are not needed again: their counts stay in the counters rows.
      pruneRobots: db.prepare(`DELETE FROM robots WHERE experiment_id NOT IN (${CURRENT_IDS})`),
      upsertCounter: db.prepare(
        `INSERT INTO counters VALUES (@experimentId, @version, @requests, @robots, @robotsCapped, @episodesServed, @episodes,
           @successes, @visionStepsSum, @surpriseSum, @surpriseCount, @latency, @shadowRequests, @shadowShed,
           @shadowDivergenceSum, @shadowLatency, @alwaysValidPValue, @decision)
         ON CONFLICT (experiment_id, version) DO UPDATE SET requests = excluded.requests, robots = excluded.robots,
           robots_capped = excluded.robots_capped, episodes_served = excluded.episodes_served, episodes = excluded.episodes,
           successes = excluded.successes, vision_steps_sum = excluded.vision_steps_sum, surprise_sum = excluded.surprise_sum,
           surprise_count = excluded.surprise_count, latency = excluded.latency, shadow_requests = excluded.shadow_requests,
           shadow_shed = excluded.shadow_shed, shadow_divergence_sum = excluded.shadow_divergence_sum,
           shadow_latency = excluded.shadow_latency, always_valid_p = excluded.always_valid_p, decision = excluded.decision`,
      ),
      insertRobot: db.prepare('INSERT OR IGNORE INTO robots VALUES (?, ?, ?)'),
      upsertEpisode: db.prepare(
        `INSERT INTO episodes VALUES (@robotId, @episodeId, @model, @version, @experimentId, @outcome)
         ON CONFLICT (robot_id, episode_id) DO UPDATE SET outcome = excluded.outcome`,
      ),
      pruneEpisodes: db.prepare('DELETE FROM episodes WHERE rowid <= (SELECT MAX(rowid) FROM episodes) - ?'),
      currentExperiments: db.prepare(`SELECT * FROM experiments WHERE id IN (${CURRENT_IDS}) ORDER BY model`),
      currentCounters: db.prepare(`SELECT * FROM counters WHERE experiment_id IN (${CURRENT_IDS})`),
      currentRobots: db.prepare(`SELECT experiment_id, version, robot_id FROM robots WHERE experiment_id IN (${CURRENT_IDS})`),
      recentEpisodes: db.prepare('SELECT * FROM (SELECT rowid AS seq, * FROM episodes ORDER BY rowid DESC LIMIT ?) ORDER BY seq'),
    };
  }

  load(ledgerLimit: number): PersistedState {
    const s = this.statements;
    return {
      experiments: (s.currentExperiments.all() as ExperimentRow[]).map(toExperiment),
      counters: (s.currentCounters.all() as CounterRow[]).map(toCounter),
      robots: (s.currentRobots.all() as Array<{ experiment_id: number; version: number; robot_id: string }>).map((r) => ({
        experimentId: r.experiment_id,
        version: r.version,
        robotId: r.robot_id,
      })),
      ledger: (s.recentEpisodes.all(ledgerLimit) as EpisodeRow[]).map((r) => ({
        robotId: r.robot_id,
        episodeId: r.episode_id,
        model: r.model,
        version: r.version,
        experimentId: r.experiment_id,
        outcome: r.outcome === null ? undefined : r.outcome === 1,
      })),
    };
  }

  createExperiment(e: NewExperiment): number {
    return this.db.transaction(() => {
      const { lastInsertRowid } = this.statements.insertExperiment.run({ ...e, weights: JSON.stringify(e.weights) });
      this.statements.pruneRobots.run();
      return Number(lastInsertRowid);
    })();
  }

  updateExperiment(e: ExperimentRecord): void {
    this.statements.updateExperiment.run({ ...e, weights: JSON.stringify(e.weights) });
  }

  write(batch: StoreBatch): void {
    const s = this.statements;
    this.db.transaction(() => {
      for (const c of batch.counters) {
        s.upsertCounter.run({ ...c, robotsCapped: c.robotsCapped ? 1 : 0, latency: Buffer.from(c.latency), shadowLatency: Buffer.from(c.shadowLatency) });
      }
      for (const r of batch.robots) s.insertRobot.run(r.experimentId, r.version, r.robotId);
      for (const e of batch.ledger) s.upsertEpisode.run({ ...e, outcome: e.outcome === undefined ? null : e.outcome ? 1 : 0 });
      if (batch.ledger.length > 0) s.pruneEpisodes.run(this.ledgerRetention);
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

