/**
 * Reads an experiment database the way an operator's report needs it (`dust-serve experiment report`): each
 * model's current experiment, its totals per version and its history (the running totals the store keeps once
 * per window, sqlite-schema.ts). It opens the file read-only, beside a running server: SQLite's WAL lets a reader
 * see the last committed flush while the server goes on writing.
 */
import Database from 'better-sqlite3';
import { LatencySketch } from './latency-sketch.js';
import type { HistoryRecord } from './sqlite-records.js';
import type { Decision } from './statistics.js';
import type { ExperimentRecord, VariantCounts } from './store.js';
import type { StickyKeyKind, VersionWeight } from './traffic-split.js';

/** One version's running totals at one moment. */
export type HistoryPoint = Omit<HistoryRecord, 'experimentId' | 'windowStart'>;

/** What an experiment counted for one version, as last flushed: its counts, latency quantiles and test state. */
export interface VersionSummary extends Omit<VariantCounts, 'robotsCapped'> {
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly alwaysValidPValue: number;
  readonly decision: Decision;
}

export interface StoredExperiment {
  readonly experiment: ExperimentRecord;
  /** By version. */
  readonly versions: readonly VersionSummary[];
  /** Oldest first. */
  readonly history: readonly HistoryPoint[];
}

interface Row {
  [column: string]: number | string | Buffer | null;
}

/** The rows are ours (sqlite-schema.ts), so their columns are read by name without further checks. */
const n = (r: Row, column: string) => r[column] as number;

/**
 * Every model's current experiment, or only `model`'s, read from the SQLite file the server writes.
 * @throws Error naming the file when it cannot be opened, has no experiments table, or `model` has no experiment.
 */
export function readStoredExperiments(file: string, model?: string): StoredExperiment[] {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new Error(`cannot open the experiment database ${file} (${(err as Error).message}); give the server's --experiment-db`, { cause: err });
  }
  try {
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name));
    if (!tables.has('experiments')) throw new Error(`${file} is not an experiment database (it has no experiments table)`);
    const experiments = (db.prepare('SELECT * FROM experiments WHERE id IN (SELECT MAX(id) FROM experiments GROUP BY model) ORDER BY model').all() as Row[])
      .map(toExperiment)
      .filter((e) => model === undefined || model === '' || e.model === model);
    if (model && experiments.length === 0) throw new Error(`${file} has no experiment of model "${model}"`);
    const counters = db.prepare('SELECT * FROM counters WHERE experiment_id = ? ORDER BY version');
    // A database written by a server from before the history table has totals but no history.
    const history = tables.has('history') ? db.prepare('SELECT * FROM history WHERE experiment_id = ? ORDER BY at, version') : undefined;
    return experiments.map((experiment) => ({
      experiment,
      versions: (counters.all(experiment.id) as Row[]).map(toSummary),
      history: ((history?.all(experiment.id) ?? []) as Row[]).map(toPoint),
    }));
  } finally {
    db.close();
  }
}

function toExperiment(r: Row): ExperimentRecord {
  let weights: VersionWeight[] = [];
  try {
    weights = JSON.parse(r.weights as string) as VersionWeight[];
  } catch {
    // A split the server itself refuses to route by (storedWeightsProblem); the report shows no weights.
  }
  return {
    id: n(r, 'id'),
    model: r.model as string,
    salt: r.salt as string,
    weights: Array.isArray(weights) ? weights : [],
    controlVersion: n(r, 'control_version'),
    stickyKey: r.sticky_key as StickyKeyKind,
    shadowVersion: n(r, 'shadow_version'),
    shadowFraction: n(r, 'shadow_fraction'),
    startedAt: n(r, 'started_at'),
  };
}

function toSummary(r: Row): VersionSummary {
  const latency = LatencySketch.fromBytes(new Uint8Array(r.latency as Buffer));
  return {
    version: n(r, 'version'),
    requests: n(r, 'requests'),
    robots: n(r, 'robots'),
    episodesServed: n(r, 'episodes_served'),
    episodes: n(r, 'episodes'),
    successes: n(r, 'successes'),
    visionStepsSum: n(r, 'vision_steps_sum'),
    surpriseSum: n(r, 'surprise_sum'),
    surpriseCount: n(r, 'surprise_count'),
    latencyP50Ms: latency.quantile(0.5),
    latencyP99Ms: latency.quantile(0.99),
    shadowRequests: n(r, 'shadow_requests'),
    shadowShed: n(r, 'shadow_shed'),
    shadowDivergenceSum: n(r, 'shadow_divergence_sum'),
    alwaysValidPValue: n(r, 'always_valid_p'),
    decision: r.decision as Decision,
  };
}

function toPoint(r: Row): HistoryPoint {
  return {
    version: n(r, 'version'),
    at: n(r, 'at'),
    requests: n(r, 'requests'),
    episodes: n(r, 'episodes'),
    successes: n(r, 'successes'),
    visionStepsSum: n(r, 'vision_steps_sum'),
    surpriseSum: n(r, 'surprise_sum'),
    surpriseCount: n(r, 'surprise_count'),
    latencyP50Ms: n(r, 'latency_p50_ms'),
    latencyP99Ms: n(r, 'latency_p99_ms'),
    shadowRequests: n(r, 'shadow_requests'),
    shadowDivergenceSum: n(r, 'shadow_divergence_sum'),
    alwaysValidPValue: n(r, 'always_valid_p'),
    decision: r.decision as Decision,
  };
}
