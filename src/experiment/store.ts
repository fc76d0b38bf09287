/**
 * Where experiments persist (issue 9 item 5): every split's salt and weights, every per-version counter, the
 * robots counted and the episode ledger survive a restart. The experiment book writes through this interface
 * in batches from a timer, never from a request's path; sqlite-store.ts implements it. `load` and the
 * experiment calls are synchronous (start-up and admin calls); batch writes are asynchronous.
 */
import type { Decision } from './statistics.js';
import type { StickyKeyKind, VersionWeight } from './traffic-split.js';

/** One experiment: a model's split under one salt. A model's newest experiment is its current one. */
export interface ExperimentRecord {
  readonly id: number;
  readonly model: string;
  /** Hash salt of the assignment; '' for a model's implicit experiment before any split was set. */
  readonly salt: string;
  /** Normalized; empty = no split: the model's newest READY version serves all unpinned traffic. */
  readonly weights: readonly VersionWeight[];
  /** The version others are compared against; 0 = none. */
  readonly controlVersion: number;
  readonly stickyKey: StickyKeyKind;
  /** 0 = no shadow traffic. */
  readonly shadowVersion: number;
  readonly shadowFraction: number;
  /** Epoch milliseconds. */
  readonly startedAt: number;
}

export type NewExperiment = Omit<ExperimentRecord, 'id'>;

/** Everything counted for one version in one experiment. */
export interface CounterRecord {
  readonly experimentId: number;
  readonly version: number;
  readonly requests: number;
  /** Distinct robots counted (also restored from the robot rows; kept here for finished experiments). */
  readonly robots: number;
  readonly robotsCapped: boolean;
  /** Episodes that sent at least one request. */
  readonly episodesServed: number;
  /** Episodes with a reported outcome. */
  readonly episodes: number;
  readonly successes: number;
  readonly visionStepsSum: number;
  readonly surpriseSum: number;
  readonly surpriseCount: number;
  /** Serialized latency sketches (latency-sketch.ts). */
  readonly latency: Uint8Array;
  readonly shadowRequests: number;
  readonly shadowShed: number;
  readonly shadowDivergenceSum: number;
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

/** What one flush writes, in one transaction. */
export interface StoreBatch {
  readonly counters: readonly CounterRecord[];
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

export interface ExperimentStore {
  /** @param ledgerLimit the most recent episodes to return */
  load(ledgerLimit: number): PersistedState;
  /** Stores a model's new experiment, which becomes its current one; returns its id (> 0). */
  createExperiment(experiment: NewExperiment): number;
  /** A split changed within the same experiment (weights, control, shadow). */
  updateExperiment(experiment: ExperimentRecord): void;
  /** Resolves once the batch is stored (in one transaction); never blocks the caller's thread on the disk. */
  write(batch: StoreBatch): Promise<void>;
  /** After the writes already started. */
  close(): Promise<void>;
}
