/**
 * The experiments of a serving process, one current experiment per model (docs/api.md AdminService,
 * docs/experiments.md and docs/deployment.md, "Many replicas"): which version serves an unpinned request (the split), the statistics an operator reads
 * (GetExperiment) and the sequential tests. The store (store.ts) holds the experiments and does the counting:
 * in memory for one process, or in PostgreSQL shared by a fleet of replicas, so that every replica routes by
 * the same split and GetExperiment on any replica reports the fleet's counts. Below the API edge: plain data in,
 * plain data out; the handlers convert messages.
 *
 * - Before any split, a model has an implicit experiment (salt '') in which its newest READY version takes
 *   all unpinned traffic. SetTrafficSplit starts an explicit one; a new salt or sticky key starts another,
 *   with fresh counters (the old rows stay in the store).
 * - Only split-routed traffic is counted: pinned requests (`name@version`) are served and their episodes
 *   credited, but they are not randomly assigned, so they stay out of the comparison. The exception is a pin
 *   to the version the split gave the request's episode (a stream that resumed on another replica pins it):
 *   those requests are part of a randomly assigned episode and count.
 * - An episode keeps the version that served its first request while that version is READY and keeps weight
 *   in the split, even if a weight change would move its robot: a robot finishes an episode on one
 *   checkpoint, and its outcome is credited to that checkpoint.
 * - A shared store may be changed by other replicas: the book re-reads the current experiments when the store
 *   says so (PostgreSQL NOTIFY), every `refreshIntervalMs`, and before a report.
 */
import { randomBytes } from 'node:crypto';
import type { OptionSlice } from '../config/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { LatencySketch } from './latency-sketch.js';
import {
  INITIAL_ALWAYS_VALID,
  twoProportionZTest,
  updateAlwaysValid,
  wilsonInterval,
  type AlwaysValidState,
  type Decision,
  type Interval,
} from './statistics.js';
import type { ExperimentChange, ExperimentRecord, ExperimentStore, ServedRequest, VariantTotals } from './store.js';
import { assignVersion, normalizeWeights, stickyKeyOf, storedWeightsProblem, type StickyKeyKind, type VersionWeight } from './traffic-split.js';

/** The book's settings, from the experimentBook options (experimentSettings); they have no defaults here. */
export interface ExperimentSettings {
  /** Significance level of the always-valid decision. */
  readonly alpha: number;
  /** Standard deviation of the mSPRT's normal mixing distribution on the difference of success rates. */
  readonly mixtureSd: number;
  /**
   * How often the current experiments are re-read from a shared store in case a change notification was
   * missed; 0 = only on the store's notifications and before reports.
   */
  readonly refreshIntervalMs: number;
}

/** The book's settings from its options: a SQLite store has no other writer, so there is nothing to re-read. */
export function experimentSettings(options: OptionSlice<'experimentBook'>): ExperimentSettings {
  return {
    alpha: options.experimentAlpha,
    mixtureSd: options.experimentMixtureSd,
    refreshIntervalMs: options.experimentStore === 'postgres' ? options.experimentRefreshSeconds * 1000 : 0,
  };
}

/** What tests replace: randomness and time. */
export interface ExperimentHooks {
  /** Uniform [0, 1) draws for shadow sampling. @default Math.random */
  readonly random: () => number;
  /** Epoch milliseconds. @default Date.now */
  readonly now: () => number;
  /** Salt of an experiment started without one. @default 16 random hex digits */
  readonly newSalt: () => string;
}

export type ExperimentOptions = ExperimentSettings & ExperimentHooks;

const DEFAULT_HOOKS: Readonly<ExperimentHooks> = Object.freeze({
  random: Math.random,
  now: Date.now,
  newSalt: () => randomBytes(8).toString('hex'),
});

export interface ExperimentLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** SetTrafficSplitRequest, as plain data. */
export interface SplitSpec {
  readonly weights: readonly VersionWeight[];
  /** 0 = the lowest version of the split. */
  readonly controlVersion: number;
  readonly stickyKey: StickyKeyKind;
  /** '' keeps the current salt (draws one when the model had no split). */
  readonly salt: string;
  /** 0 = none. */
  readonly shadowVersion: number;
  /** 0..1 of the primary's requests mirrored to the shadow version. */
  readonly shadowFraction: number;
}

/** Who serves a request. */
export interface Assignment {
  readonly model: string;
  readonly version: number;
  /** The model's current experiment when the request was routed; 0 when it has none yet (nothing counts). */
  readonly experimentId: number;
  /** The request named its version (`name@version`): it counts only as part of its episode (store.ts ServedEvent). */
  readonly pinned: boolean;
}

export interface Credit {
  readonly model: string;
  readonly version: number;
  /** Whether the outcome entered the model's current experiment (not: pinned, an earlier experiment, or a repeat). */
  readonly counted: boolean;
}

/** 'control': the row others are compared with; 'none': the experiment has no control (no split). */
export type VariantDecision = Decision | 'control' | 'none';

export interface VariantReport {
  readonly version: number;
  readonly weight: number;
  readonly requests: number;
  readonly robots: number;
  readonly robotsCapped: boolean;
  readonly episodesServed: number;
  readonly episodes: number;
  readonly successes: number;
  readonly successRate: number;
  readonly ci95: Interval;
  readonly pValueVsControl: number;
  readonly alwaysValidPValue: number;
  readonly decision: VariantDecision;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly meanVisionSteps: number;
  readonly meanWorldModelSurprise: number;
  readonly shadowRequests: number;
  readonly shadowShed: number;
  readonly shadowActionDivergence: number;
  readonly shadowLatencyP50Ms: number;
  readonly shadowLatencyP99Ms: number;
}

export interface ExperimentReport extends Omit<ExperimentRecord, 'weights'> {
  readonly alpha: number;
  readonly variants: readonly VariantReport[];
}

const mean = (sum: number, n: number) => (n > 0 ? sum / n : 0);

/**
 * The split as it applies now, over the versions that can serve (`ready`, ascending): configured weights of
 * READY versions; the newest READY version alone when the model has no split or none of its versions is READY.
 * A weight that is not finite and positive never reaches the hash (splits are checked when set and when read
 * back; this keeps any that slipped through from routing requests to no version).
 */
function effectiveWeights(record: ExperimentRecord | undefined, ready: readonly number[]): VersionWeight[] {
  const usable = (record?.weights ?? []).filter((w) => ready.includes(w.version) && w.weight > 0 && Number.isFinite(w.weight));
  if (usable.length > 0) return usable;
  const newest = ready.at(-1);
  return newest === undefined ? [] : [{ version: newest, weight: 1 }];
}

const emptyTotals = (version: number): VariantTotals => ({
  version,
  requests: 0,
  robots: 0,
  robotsCapped: false,
  episodesServed: 0,
  episodes: 0,
  successes: 0,
  visionStepsSum: 0,
  surpriseSum: 0,
  surpriseCount: 0,
  latency: new LatencySketch(),
  shadowRequests: 0,
  shadowShed: 0,
  shadowDivergenceSum: 0,
  shadowLatency: new LatencySketch(),
  test: INITIAL_ALWAYS_VALID,
});

/** A checked split request, before it meets the model's current experiment. */
interface CheckedSplit {
  readonly weights: VersionWeight[];
  readonly controlVersion: number;
  readonly stickyKey: StickyKeyKind;
  readonly salt: string;
  readonly shadowVersion: number;
  readonly shadowFraction: number;
}

/** Checks the numbers of a SetTrafficSplit (versions are checked against the registry by the caller). */
function checkSplit(spec: SplitSpec): CheckedSplit {
  const weights = normalizeWeights(spec.weights);
  const controlVersion = spec.controlVersion || weights[0].version;
  if (!weights.some((w) => w.version === controlVersion)) {
    throw new InvalidArgumentError(
      `control_version ${controlVersion} is not in the split; give it a weight or choose one of ${weights.map((w) => w.version).join(', ')}`,
    );
  }
  if (!(spec.shadowFraction >= 0 && spec.shadowFraction <= 1)) {
    throw new InvalidArgumentError(`shadow_fraction ${spec.shadowFraction} is outside [0, 1]`);
  }
  if (!Number.isInteger(spec.shadowVersion) || spec.shadowVersion < 0) {
    throw new InvalidArgumentError(`shadow_version ${spec.shadowVersion} is not a version number (0 = no shadow)`);
  }
  if (spec.shadowVersion === 0 && spec.shadowFraction > 0) {
    throw new InvalidArgumentError('shadow_fraction is set but shadow_version is 0: name the version to mirror requests to');
  }
  const shadow = spec.shadowFraction > 0 ? { shadowVersion: spec.shadowVersion, shadowFraction: spec.shadowFraction } : { shadowVersion: 0, shadowFraction: 0 };
  return { weights, controlVersion, stickyKey: spec.stickyKey, salt: spec.salt, ...shadow };
}

/**
 * What a checked split does to the model's current experiment: a new salt (or the model's first split, or
 * another sticky key) starts a new experiment; otherwise the current one goes on with the new weights, and a
 * changed control restarts the sequential tests. Pure, so a shared store can apply it under its lock.
 */
function splitChange(model: string, split: CheckedSplit, current: ExperimentRecord | undefined, now: number, newSalt: () => string): ExperimentChange {
  const { salt, ...settings } = split;
  const fresh = !current || current.weights.length === 0 || (salt !== '' && salt !== current.salt) || split.stickyKey !== current.stickyKey;
  if (fresh) return { start: { model, salt: salt || newSalt(), ...settings, startedAt: now } };
  return { update: { ...current, ...settings }, restartTests: split.controlVersion !== current.controlVersion };
}

export class ExperimentBook {
  private readonly options: ExperimentOptions;
  private readonly models = new Map<string, ExperimentRecord>();
  private readonly ensuring = new Map<string, Promise<ExperimentRecord>>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** Split changes made here; a refresh that read the store before one of them does not apply what it read. */
  private changes = 0;
  private closed = false;
  /** Stored splits already refused (experiment id and weights), so a periodic re-read warns once, not every time. */
  private readonly refused = new Set<string>();

  private constructor(
    private readonly store: ExperimentStore,
    private readonly log: ExperimentLogger,
    options: ExperimentSettings & Partial<ExperimentHooks>,
  ) {
    this.options = Object.freeze({ ...DEFAULT_HOOKS, ...options });
  }

  /** Reads the current experiments and follows changes other replicas make to a shared store. */
  static async open(store: ExperimentStore, log: ExperimentLogger, options: ExperimentSettings & Partial<ExperimentHooks>): Promise<ExperimentBook> {
    const book = new ExperimentBook(store, log, options);
    for (const record of await store.currentExperiments()) book.models.set(record.model, book.admit(record));
    store.onExternalChange(() => void book.refresh());
    if (book.options.refreshIntervalMs > 0) {
      book.timer = setInterval(() => void book.refresh(), book.options.refreshIntervalMs);
      book.timer.unref();
    }
    return book;
  }

  /**
   * A record read from the store, as routing may use it: one whose weights cannot route (storedWeightsProblem)
   * is refused with a warning and the model falls back to its default routing (the newest READY version), as if
   * it had no split, instead of answering every unpinned request with an error. The next SetTrafficSplit starts
   * a new experiment; the refused row stays in the store for inspection.
   */
  private admit(record: ExperimentRecord): ExperimentRecord {
    const problem = storedWeightsProblem(record.weights);
    if (problem === undefined) return record;
    const key = `${record.id}\u0000${JSON.stringify(record.weights)}`;
    if (!this.refused.has(key)) {
      this.refused.add(key);
      this.log.warn(
        { model: record.model, experiment: record.id, weights: record.weights, problem },
        'stored traffic split refused: it cannot route; the model serves its newest READY version until SetTrafficSplit sets a valid split',
      );
    }
    return { ...record, weights: [] };
  }

  /** Re-reads every model's current experiment from the store (coalesced); a failed read keeps the ones known. */
  refresh(): Promise<void> {
    const changesBefore = this.changes;
    this.refreshing ??= this.store
      .currentExperiments()
      .then((records) => {
        if (this.changes !== changesBefore) return;
        for (const stored of records) {
          const known = this.models.get(stored.model);
          const record = this.admit(stored);
          if (!known || known.id <= record.id) this.models.set(record.model, record);
          if (known && known.id < record.id)
            this.log.info({ model: record.model, experiment: record.id, salt: record.salt }, 'experiment started by another replica');
        }
      })
      .catch((err: unknown) => this.log.error({ err }, 'could not re-read the experiments; routing by the splits known'))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** Creates the model's implicit experiment (or reads the one a replica created), so that no request creates it. */
  ensure(model: string): Promise<void> {
    const known = this.models.get(model);
    if (known) return Promise.resolve();
    let pending = this.ensuring.get(model);
    if (!pending) {
      pending = this.store
        .ensureExperiment({
          model,
          salt: '',
          weights: [],
          controlVersion: 0,
          stickyKey: 'robot',
          shadowVersion: 0,
          shadowFraction: 0,
          startedAt: this.options.now(),
        })
        .then((stored) => {
          const record = this.admit(stored);
          if ((this.models.get(model)?.id ?? 0) < record.id) this.models.set(model, record);
          return record;
        })
        .finally(() => this.ensuring.delete(model));
      this.ensuring.set(model, pending);
    }
    return pending.then(() => undefined);
  }

  /** The share of the model's unpinned traffic `version` gets now (ListModels traffic_weight). */
  trafficWeight(model: string, version: number, ready: readonly number[]): number {
    const weights = effectiveWeights(this.models.get(model), ready);
    const total = weights.reduce((s, w) => s + w.weight, 0);
    return total > 0 ? (weights.find((w) => w.version === version)?.weight ?? 0) / total : 0;
  }

  /** The version that serves an unpinned request; undefined when none of the model's versions is READY. */
  assign(model: string, ready: readonly number[], robotId: string, episodeId: string): Assignment | undefined {
    const record = this.models.get(model);
    const weights = effectiveWeights(record, ready);
    if (weights.length === 0) return undefined;
    // A model loaded a moment ago may not have its implicit experiment yet: served, not counted.
    if (!record) void this.ensure(model).catch((err: unknown) => this.log.error({ err, model }, "could not create the model's experiment"));
    const experimentId = record?.id ?? 0;
    const ongoing = episodeId ? this.store.episodeOwner(robotId, episodeId) : undefined;
    if (ongoing && ongoing.experimentId === experimentId && weights.some((w) => w.version === ongoing.version)) {
      return { model, version: ongoing.version, experimentId, pinned: false };
    }
    const hashed = weights.length === 1 || !record ? undefined : assignVersion(record.salt, stickyKeyOf(record.stickyKey, robotId, episodeId), weights);
    return { model, version: hashed ?? weights[0].version, experimentId, pinned: false };
  }

  /** A pinned request's assignment: served and credited; counted only within its episode's assignment. */
  pinned(model: string, version: number): Assignment {
    return { model, version, experimentId: this.models.get(model)?.id ?? 0, pinned: true };
  }

  /** Records a served request; resolves when the store has it (the response waits for this). */
  served(a: Assignment, req: ServedRequest): Promise<void> {
    return this.store.served({ ...a, ...req });
  }

  /**
   * The shadow version to mirror this primary request to, drawn with the split's shadow fraction; undefined
   * for pinned requests, when the primary is the shadow version itself, or when the shadow is not READY.
   */
  shadowFor(a: Assignment, ready: readonly number[]): number | undefined {
    const record = this.models.get(a.model);
    if (!record || a.pinned || a.experimentId !== record.id) return undefined;
    const { shadowVersion, shadowFraction } = record;
    if (shadowVersion === 0 || shadowVersion === a.version || !ready.includes(shadowVersion)) return undefined;
    return this.options.random() < shadowFraction ? shadowVersion : undefined;
  }

  /** A mirrored request finished on the shadow version. */
  shadowServed(model: string, version: number, latencyMs: number, divergence: number): void {
    const record = this.models.get(model);
    if (record) this.store.shadow({ experimentId: record.id, version, latencyMs, divergence });
  }

  /** A mirrored request was shed (lower priority than primary traffic) or failed. */
  shadowShed(model: string, version: number): void {
    const record = this.models.get(model);
    if (record) this.store.shadow({ experimentId: record.id, version, latencyMs: undefined, divergence: 0 });
  }

  /**
   * Credits an episode's outcome to the version that served it. The first report of an episode counts;
   * repeats return the same credit, uncounted. Undefined when no request of the episode is known.
   */
  async outcome(robotId: string, episodeId: string, success: boolean): Promise<Credit | undefined> {
    const credit = await this.store.credit(robotId, episodeId, success);
    if (!credit) return undefined;
    if (credit.counted) {
      const record = this.models.get(credit.model);
      if (record?.id === credit.experimentId) await this.updateSequentialTests(record, credit.version);
    }
    return { model: credit.model, version: credit.version, counted: credit.counted };
  }

  /** After an outcome of `version`: its test against the control, or every candidate's when it is the control. */
  private async updateSequentialTests(record: ExperimentRecord, version: number): Promise<void> {
    const control = record.controlVersion;
    if (control === 0) return;
    const rows = await this.store.outcomes(record.id);
    const ctrl = rows.find((r) => r.version === control)?.outcomes ?? { successes: 0, trials: 0 };
    const opts = { alpha: this.options.alpha, tau: this.options.mixtureSd };
    const updated = new Map<number, AlwaysValidState>();
    for (const { version: v, outcomes, test } of rows) {
      if (v === control || (version !== control && v !== version)) continue;
      const next = updateAlwaysValid(test, ctrl, outcomes, opts);
      if (test.decision === 'keep collecting' && next.decision !== 'keep collecting') {
        this.log.info({ model: record.model, experiment: record.id, control, version: v, pValue: next.pValue, decision: next.decision }, 'experiment decided');
      }
      updated.set(v, next);
    }
    if (updated.size > 0) await this.store.saveTests(record.id, updated);
  }

  /**
   * SetTrafficSplit. Versions must be checked against the registry by the caller; this checks the numbers.
   * A new salt (or the model's first split, or another sticky key) starts a new experiment; otherwise the
   * current one goes on with the new weights. Changing the control restarts the sequential tests from the
   * data so far.
   */
  async setSplit(model: string, spec: SplitSpec): Promise<ExperimentRecord> {
    const split = checkSplit(spec);
    let change: ExperimentChange | undefined;
    const record = await this.store.changeExperiment(
      model,
      (current) =>
        (change = splitChange(
          model,
          split,
          current && storedWeightsProblem(current.weights) === undefined ? current : undefined,
          this.options.now(),
          this.options.newSalt,
        )),
    );
    this.changes++;
    this.models.set(model, record);
    const { weights, controlVersion, stickyKey, shadowVersion, shadowFraction } = record;
    if (change && 'start' in change) {
      this.log.info(
        { model, experiment: record.id, salt: record.salt, weights, controlVersion, stickyKey, shadowVersion, shadowFraction },
        'experiment started',
      );
      return record;
    }
    if (change?.restartTests) await this.updateSequentialTests(record, controlVersion);
    this.log.info({ model, experiment: record.id, weights, controlVersion, shadowVersion, shadowFraction }, 'traffic split changed');
    return record;
  }

  /** The model's current split as this process knows it; undefined before anything named the model. */
  split(model: string): ExperimentRecord | undefined {
    return this.models.get(model);
  }

  /**
   * GetExperiment: one row per version that is in the split, is loaded, or has counts. `loaded` are the
   * model's loaded versions, `ready` those READY (for the implicit experiment's weight). Reads the store's
   * current experiment and counts (a fleet's, with a shared store).
   */
  async report(model: string, loaded: readonly number[], ready: readonly number[]): Promise<ExperimentReport> {
    await this.store.flush();
    await this.refresh();
    await this.ensure(model);
    const record = this.models.get(model)!;
    const totals = new Map((await this.store.totals(record.id)).map((t) => [t.version, t]));
    const weights = record.weights.length > 0 ? record.weights : effectiveWeights(record, ready);
    const control = record.controlVersion;
    const versions = new Set([...weights.map((w) => w.version), ...loaded, ...totals.keys()]);
    if (control) versions.add(control);
    if (record.shadowVersion) versions.add(record.shadowVersion);
    const ctrl = control ? (totals.get(control) ?? emptyTotals(control)) : undefined;
    const ctrlOutcomes = ctrl && { successes: ctrl.successes, trials: ctrl.episodes };
    const variants = [...versions]
      .sort((a, b) => a - b)
      .map((version): VariantReport => {
        const c = totals.get(version) ?? emptyTotals(version);
        const outcomes = { successes: c.successes, trials: c.episodes };
        const isControl = version === control;
        return {
          version,
          weight: weights.find((w) => w.version === version)?.weight ?? 0,
          requests: c.requests,
          robots: c.robots,
          robotsCapped: c.robotsCapped,
          episodesServed: c.episodesServed,
          episodes: c.episodes,
          successes: c.successes,
          successRate: mean(c.successes, c.episodes),
          ci95: wilsonInterval(outcomes),
          pValueVsControl: ctrlOutcomes && !isControl ? twoProportionZTest(ctrlOutcomes, outcomes).pValue : 1,
          alwaysValidPValue: ctrl && !isControl ? c.test.pValue : 1,
          decision: !ctrl ? 'none' : isControl ? 'control' : c.test.decision,
          latencyP50Ms: c.latency.quantile(0.5),
          latencyP99Ms: c.latency.quantile(0.99),
          meanVisionSteps: mean(c.visionStepsSum, c.requests),
          meanWorldModelSurprise: mean(c.surpriseSum, c.surpriseCount),
          shadowRequests: c.shadowRequests,
          shadowShed: c.shadowShed,
          shadowActionDivergence: mean(c.shadowDivergenceSum, c.shadowRequests),
          shadowLatencyP50Ms: c.shadowLatency.quantile(0.5),
          shadowLatencyP99Ms: c.shadowLatency.quantile(0.99),
        };
      });
    const { weights: _weights, ...rest } = record;
    return { ...rest, alpha: this.options.alpha, variants };
  }

  /** Writes everything counted so far. */
  flush(): Promise<void> {
    return this.store.flush();
  }

  /** Writes everything still unwritten, then closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.refreshing;
    await this.store.close();
  }
}
