/**
 * Where experiments live (docs/experiments.md and docs/deployment.md, "Many replicas"): every model's current split (salt, weights,
 * control, shadow), what each version was counted with, the robots counted and the episode ledger. The
 * experiment book routes and computes statistics; a store keeps the records and does the counting, so that
 * the book reads the same whether one process counts (sqlite-store.ts: in memory, written to an embedded
 * SQLite file in batches) or a fleet of replicas shares one PostgreSQL database (postgres-store.ts: every
 * count is an atomic increment, written before the request is answered).
 */
import type { LatencySketch } from './latency-sketch.js';
import type { AlwaysValidState, Proportion } from './statistics.js';
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

/**
 * What a split change does to the model's current experiment, decided from that experiment as the store holds
 * it (in a fleet: under a lock, so two replicas changing one model's split at once cannot both start one).
 */
export type ExperimentChange =
  | { readonly start: NewExperiment }
  /** `restartTests`: the control changed; every version's sequential test starts again from the data so far. */
  | { readonly update: ExperimentRecord; readonly restartTests: boolean };

/** Who an episode belongs to: the version that served its first request, and the experiment that routed it. */
export interface EpisodeOwner {
  readonly model: string;
  readonly version: number;
  /** 0: its first request was pinned, so the episode is outside experiments. */
  readonly experimentId: number;
}

/** What the serving path knows of a request it answered. */
export interface ServedRequest {
  readonly robotId: string;
  readonly episodeId: string;
  /** The client's request_id ('' = none). A shared store counts a (robot_id, episode_id, request_id) once. */
  readonly requestId: string;
  /** Server time from arrival to response. */
  readonly latencyMs: number;
  /** N_o used. */
  readonly visionSteps: number;
  readonly worldModelSurprise: number | undefined;
}

/** One request served on the primary path, with where the book routed it. */
export interface ServedEvent extends ServedRequest {
  /** The model's current experiment when the request was routed; 0 when it had none yet (not counted). */
  readonly experimentId: number;
  readonly model: string;
  readonly version: number;
  /**
   * The request named its version (`name@version`). It is counted only as a later request of an episode
   * that the split assigned to that version in `experimentId`: a stream that resumed on another replica pins
   * the episode's version, and its requests stay in the experiment. Other pinned requests are not counted.
   */
  readonly pinned: boolean;
}

/** A mirrored request on the shadow version finished, or was shed (`latencyMs` undefined). */
export interface ShadowEvent {
  readonly experimentId: number;
  readonly version: number;
  readonly latencyMs: number | undefined;
  readonly divergence: number;
}

/** An outcome's credit: the episode's owner, and whether this report entered the owner's experiment. */
export interface EpisodeCredit extends EpisodeOwner {
  /** The first report of an episode that the model's current experiment routed. */
  readonly counted: boolean;
}

/** The plain counts an experiment keeps for one version (the stores add their sketches and test state). */
export interface VariantCounts {
  readonly version: number;
  readonly requests: number;
  /** Distinct robots counted. */
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
  readonly shadowRequests: number;
  readonly shadowShed: number;
  readonly shadowDivergenceSum: number;
}

/** Everything an experiment counted for one version, for GetExperiment (docs/api.md VariantStats). */
export interface VariantTotals extends VariantCounts {
  readonly latency: LatencySketch;
  readonly shadowLatency: LatencySketch;
  readonly test: AlwaysValidState;
}

/** A version's outcomes and its sequential test, what an outcome's test update reads. */
export interface VersionOutcomes {
  readonly version: number;
  readonly outcomes: Proportion;
  readonly test: AlwaysValidState;
}

export interface ExperimentStore {
  /** Every model's current experiment, as stored now (another replica may have changed one). */
  currentExperiments(): Promise<ExperimentRecord[]>;
  /** The model's current experiment; `initial` becomes it when the model has none (one wins across replicas). */
  ensureExperiment(initial: NewExperiment): Promise<ExperimentRecord>;
  /** Applies `decide`'s change to the model's current experiment atomically; returns the current one after. */
  changeExperiment(model: string, decide: (current: ExperimentRecord | undefined) => ExperimentChange): Promise<ExperimentRecord>;
  /** `listener` runs when another process may have changed an experiment (a shared store; never for one process). */
  onExternalChange(listener: () => void): void;

  /** The owner of an episode as far as this process knows it without a round trip (a split's ongoing-episode rule). */
  episodeOwner(robotId: string, episodeId: string): EpisodeOwner | undefined;
  /**
   * Counts a served request. Resolves once the count is stored where a crash of this process cannot lose it
   * (a shared store), or at once (one process); the response is sent after it resolves. Never rejects.
   */
  served(event: ServedEvent): Promise<void>;
  shadow(event: ShadowEvent): void;
  /**
   * Credits an episode's outcome to its owner; only the first report counts. Undefined when no request of
   * the episode is known.
   */
  credit(robotId: string, episodeId: string, success: boolean): Promise<EpisodeCredit | undefined>;
  /** What the experiment counted, per version that has counts. */
  totals(experimentId: number): Promise<VariantTotals[]>;
  /** Outcomes and sequential-test states, per version that has counts. */
  outcomes(experimentId: number): Promise<VersionOutcomes[]>;
  /** Stores sequential tests after an update: a p-value only falls, a decision once taken stays. */
  saveTests(experimentId: number, tests: ReadonlyMap<number, AlwaysValidState>): Promise<void>;
  /** Writes everything counted so far. */
  flush(): Promise<void>;
  /** Writes what is left, then closes. Idempotent. */
  close(): Promise<void>;
}
