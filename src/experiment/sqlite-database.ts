/**
 * The embedded SQLite database of a one-process experiment store (better-sqlite3). Start-up reads and the rare admin writes
 * (a new experiment, a changed split) use a connection on the calling thread; the batches of counters, robots and
 * episodes that the experiment book flushes every second go to a writer thread with its own connection
 * (sqlite-writer-thread.ts), so SQLite's work and checkpoint fsyncs never run on the gRPC event loop. An
 * in-memory database (IN_MEMORY) cannot be shared between connections: its batches are written on the calling
 * thread.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { BatchWriter, IN_MEMORY, openDatabase } from './sqlite-schema.js';
import type { FromWriter, ToWriter, WriterInit } from './sqlite-writer-protocol.js';
import type { Decision } from './statistics.js';
import type { CounterRecord, ExperimentDatabase, PersistedState, StoreBatch } from './sqlite-records.js';
import type { ExperimentRecord, NewExperiment } from './store.js';
import type { StickyKeyKind, VersionWeight } from './traffic-split.js';

/** Episodes kept in the database for crediting late outcomes; older rows are pruned at flush. @default 200000 */
export const DEFAULT_LEDGER_RETENTION = 200_000;

export { IN_MEMORY };

/**
 * The compiled writer script. Under vitest this module runs from its .ts source, and a worker thread cannot load
 * TypeScript, so it falls back to the build output (`npm test` builds first).
 */
function writerScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, 'sqlite-writer-thread.js'), path.resolve(here, '../../dist/src/experiment/sqlite-writer-thread.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`sqlite-writer-thread.js not found next to ${here} nor in dist/; run \`npm run build\``);
}

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

/**
 * The stored weights, unchecked: text that is not JSON at all is handed on as it is, so that the experiment
 * book refuses that one split (storedWeightsProblem) instead of the whole store failing to open.
 */
function parseWeights(text: string): VersionWeight[] {
  try {
    return JSON.parse(text) as VersionWeight[];
  } catch {
    return text as unknown as VersionWeight[];
  }
}

function toExperiment(r: ExperimentRow): ExperimentRecord {
  return {
    id: r.id,
    model: r.model,
    salt: r.salt,
    weights: parseWeights(r.weights),
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

/** The writer thread of a file database; restarted on the next write if it dies. */
class WriterThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  constructor(private readonly init: WriterInit) {}

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(writerScript(), { workerData: this.init });
    worker.on('message', (msg: FromWriter) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.kind === 'failed') p?.reject(new Error(msg.message));
      else p?.resolve();
    });
    const lost = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the experiment store's writer thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  send(msg: ToWriter extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.started().postMessage({ ...msg, id } as ToWriter);
    });
  }

  async close(): Promise<void> {
    if (!this.worker) return;
    const worker = this.worker;
    await this.send({ kind: 'close' }).catch(() => undefined);
    this.worker = undefined;
    await worker.terminate();
  }
}

export class SqliteDatabase implements ExperimentDatabase {
  private readonly db: Database.Database;
  private readonly statements;
  private readonly writer: WriterThread | BatchWriter;

  /**
   * Opens (creating when missing) the database at `file`, or an in-memory one for IN_MEMORY.
   * @throws Error that names the file and the option to change when it cannot be opened or written.
   */
  constructor(
    readonly file: string,
    ledgerRetention = DEFAULT_LEDGER_RETENTION,
  ) {
    this.db = openDatabase(file);
    const db = this.db;
    this.writer = file === IN_MEMORY ? new BatchWriter(db, ledgerRetention) : new WriterThread({ file, ledgerRetention });
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

  async write(batch: StoreBatch): Promise<void> {
    if (this.writer instanceof BatchWriter) this.writer.run(batch);
    else await this.writer.send({ kind: 'write', batch });
  }

  async close(): Promise<void> {
    if (this.writer instanceof WriterThread) await this.writer.close();
    if (this.db.open) this.db.close();
  }
}
