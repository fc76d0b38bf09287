/**
 * The rows of the embedded SQLite database (sqlite-database.ts): the one-process store keeps its counts in
 * memory and writes them here as absolute values, in batches, from a timer.
 */
import type { Decision } from './statistics.js';
import type { ExperimentRecord, VariantCounts } from './store.js';

/** Everything counted for one version in one experiment (`robots` is also restored from the robot rows; kept
 * here for finished experiments). */
export interface CounterRecord extends VariantCounts {
  readonly experimentId: number;
  /** Serialized latency sketches (latency-sketch.ts). */
  readonly latency: Uint8Array;
  readonly shadowLatency: Uint8Array;
  readonly alwaysValidPValue: number;
  readonly decision: Decision;
}

export interface RobotRecord {
  readonly experimentId: number;
  readonly version: number;
  readonly robotId: string;
}

/** Who served an episode, and its outcome once reported. experimentId 0: served by a pin, outside experiments. */
export interface LedgerRecord {
  readonly robotId: string;
  readonly episodeId: string;
  readonly model: string;
  readonly version: number;
  readonly experimentId: number;
  readonly outcome: boolean | undefined;
}

/**
 * A version's running totals at one moment, kept once per history window (experiment report): what a time
 * series of its success rate, its test against the control, latency, N_o, surprise and shadow divergence needs.
 */
export interface HistoryRecord {
  readonly experimentId: number;
  readonly version: number;
  /** Epoch ms: the flush that wrote it. */
  readonly at: number;
  /** Epoch ms where its window starts; a later flush in the same window replaces the row. */
  readonly windowStart: number;
  readonly requests: number;
  readonly episodes: number;
  readonly successes: number;
  readonly visionStepsSum: number;
  readonly surpriseSum: number;
  readonly surpriseCount: number;
  /** Of every request counted so far (the sketch is cumulative). */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly shadowRequests: number;
  readonly shadowDivergenceSum: number;
  readonly alwaysValidPValue: number;
  readonly decision: Decision;
}

/** What one flush writes, in one transaction. */
export interface StoreBatch {
  readonly counters: readonly CounterRecord[];
  /** One per counter written, stamped with the flush's window. */
  readonly history: readonly HistoryRecord[];
  readonly robots: readonly RobotRecord[];
  readonly ledger: readonly LedgerRecord[];
}

/** What start-up reads back: each model's current experiment with its counters and robots, and recent episodes. */
export interface PersistedState {
  readonly experiments: readonly ExperimentRecord[];
  readonly counters: readonly CounterRecord[];
  readonly robots: readonly RobotRecord[];
  /** Oldest first. */
  readonly ledger: readonly LedgerRecord[];
}

/** The database a one-process store writes to (SqliteDatabase; tests put a failing one in front of it). */
export interface ExperimentDatabase {
  /** @param ledgerLimit the most recent episodes to return */
  load(ledgerLimit: number): PersistedState;
  /** Stores a model's new experiment, which becomes its current one; returns its id (> 0). */
  createExperiment(experiment: Omit<ExperimentRecord, 'id'>): number;
  /** A split changed within the same experiment (weights, control, shadow). */
  updateExperiment(experiment: ExperimentRecord): void;
  /** Resolves once the batch is stored (in one transaction); never blocks the caller's thread on the disk. */
  write(batch: StoreBatch): Promise<void>;
  /** After the writes already started. */
  close(): Promise<void>;
}
