/**
 * The experiments of a serving process, one current experiment per model (serving-api.md AdminService,
 * issue 9): which version serves an unpinned request (the split), what each version was credited with (the
 * episode ledger and per-version counters), the statistics an operator reads (GetExperiment), and their
 * persistence. Below the API edge: plain data in, plain data out; the handlers convert messages.
 *
 * - Before any split, a model has an implicit experiment (salt '') in which its newest READY version takes
 *   all unpinned traffic. SetTrafficSplit starts an explicit one; a new salt or sticky key starts another,
 *   with fresh counters (the old rows stay in the store).
 * - Only split-routed traffic is counted: pinned requests (`name@version`) are served and their episodes
 *   credited, but they are not randomly assigned, so they stay out of the comparison.
 * - An episode keeps the version that served its first request while that version is READY and keeps weight
 *   in the split, even if a weight change would move its robot: a robot finishes an episode on one
 *   checkpoint, and its outcome is credited to that checkpoint.
 * - Writes go to the store from a timer in batches; nothing here waits on the disk while a request runs.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';
import { DEFAULT_MAX_TRACKED_ROBOTS, DistinctCounter } from './distinct-counter.js';
import { DEFAULT_LEDGER_CAPACITY, EpisodeLedger } from './episode-ledger.js';
import {
  DEFAULT_ALPHA,
  DEFAULT_MIXTURE_SD,
  INITIAL_ALWAYS_VALID,
  twoProportionZTest,
  updateAlwaysValid,
  wilsonInterval,
  type Decision,
  type Interval,
} from './statistics.js';
import type { CounterRecord, ExperimentRecord, ExperimentStore, LedgerRecord, RobotRecord } from './store.js';
import { assignVersion, normalizeWeights, stickyKeyOf, type StickyKeyKind, type VersionWeight } from './traffic-split.js';
import { VariantCounters } from './variant-counters.js';

/** How often counters, robots and episodes are written to the store. @default 1000 */
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** Robot and episode rows held for the store while it fails, beyond which the oldest are dropped. @default 100000 */
export const DEFAULT_MAX_PENDING_ROWS = 100_000;
/**
 * Robot and episode rows per write handed to the store: a flood of new episodes is written in several writes,
 * with the event loop free between them, rather than cloned to the writer thread in one long pause. @default 1000
 */
export const DEFAULT_FLUSH_CHUNK_ROWS = 1000;

export interface ExperimentOptions {
  /** Significance level of the always-valid decision. @default DEFAULT_ALPHA (0.05) */
  readonly alpha: number;
  /** Standard deviation of the mSPRT's normal mixing distribution on the difference of success rates. @default DEFAULT_MIXTURE_SD (0.1) */
  readonly mixtureSd: number;
  /** @default DEFAULT_MAX_TRACKED_ROBOTS */
  readonly maxTrackedRobots: number;
  /** @default DEFAULT_LEDGER_CAPACITY */
  readonly ledgerCapacity: number;
  /** @default DEFAULT_FLUSH_INTERVAL_MS; 0 = only on flush() and close() */
  readonly flushIntervalMs: number;
  /** Uniform [0, 1) draws for shadow sampling. @default Math.random */
  readonly random: () => number;
  /** Epoch milliseconds. @default Date.now */
  readonly now: () => number;
  /** Salt of an experiment started without one. @default 16 random hex digits */
  readonly newSalt: () => string;
}

export const DEFAULT_EXPERIMENT_OPTIONS: Readonly<ExperimentOptions> = Object.freeze({
  alpha: DEFAULT_ALPHA,
  mixtureSd: DEFAULT_MIXTURE_SD,
  maxTrackedRobots: DEFAULT_MAX_TRACKED_ROBOTS,
  ledgerCapacity: DEFAULT_LEDGER_CAPACITY,
  flushIntervalMs: DEFAULT_FLUSH_INTERVAL_MS,
  random: Math.random,
  now: Date.now,
  newSalt: () => randomBytes(8).toString('hex'),
});

export interface ExperimentLogger {
  info(obj: object, msg: string): void;
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

/** Who serves a request. experimentId 0: a pinned request, outside experiments. */
export interface Assignment {
  readonly model: string;
  readonly version: number;
  readonly experimentId: number;
}

export interface ServedRequest {
  readonly robotId: string;
  readonly episodeId: string;
  /** Server time from arrival to response. */
  readonly latencyMs: number;
  /** N_o used. */
  readonly visionSteps: number;
  readonly worldModelSurprise: number | undefined;
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

class ModelExperiment {
  readonly counters = new Map<number, VariantCounters>();
  constructor(public record: ExperimentRecord) {}

  get explicit(): boolean {
    return this.record.weights.length > 0;
  }
}

const mean = (sum: number, n: number) => (n > 0 ? sum / n : 0);

export class ExperimentBook {
  private readonly options: ExperimentOptions;
  private readonly models = new Map<string, ModelExperiment>();
  private readonly ledger: EpisodeLedger;
  private readonly dirty = new Map<VariantCounters, [experimentId: number, version: number]>();
  private pendingRobots: RobotRecord[] = [];
  private readonly pendingLedger = new Map<string, LedgerRecord>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  /** Reads the store's state back and starts the flush timer. */
  constructor(
    private readonly store: ExperimentStore,
    private readonly log: ExperimentLogger,
    options: Partial<ExperimentOptions> = {},
  ) {
    this.options = Object.freeze({ ...DEFAULT_EXPERIMENT_OPTIONS, ...options });
    this.ledger = new EpisodeLedger(this.options.ledgerCapacity);
    const state = store.load(this.options.ledgerCapacity);
    const robotIds = new Map<string, string[]>();
    for (const r of state.robots) {
      const key = `${r.experimentId}@${r.version}`;
      robotIds.set(key, [...(robotIds.get(key) ?? []), r.robotId]);
    }
    for (const record of state.experiments) this.models.set(record.model, new ModelExperiment(record));
    const byId = new Map([...this.models.values()].map((m) => [m.record.id, m]));
    for (const c of state.counters) {
      byId.get(c.experimentId)?.counters.set(c.version, VariantCounters.restore(c, robotIds.get(`${c.experimentId}@${c.version}`) ?? [], this.options.maxTrackedRobots));
    }
    for (const e of state.ledger) this.ledger.restore(e.robotId, e.episodeId, { model: e.model, version: e.version, experimentId: e.experimentId, outcome: e.outcome });
    if (this.options.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** The model's current experiment, creating its implicit one (a store write) the first time it is named. */
  private experiment(model: string): ModelExperiment {
    let m = this.models.get(model);
    if (!m) {
      const record = {
        model,
        salt: '',
        weights: [],
        controlVersion: 0,
        stickyKey: 'robot' as const,
        shadowVersion: 0,
        shadowFraction: 0,
        startedAt: this.options.now(),
      };
      m = new ModelExperiment({ ...record, id: this.store.createExperiment(record) });
      this.models.set(model, m);
    }
    return m;
  }

  /** Creates the model's implicit experiment now (at load), so that no request ever creates it. */
  ensure(model: string): void {
    this.experiment(model);
  }

  private counters(m: ModelExperiment, version: number): VariantCounters {
    let c = m.counters.get(version);
    if (!c) {
      c = new VariantCounters(new DistinctCounter(this.options.maxTrackedRobots));
      m.counters.set(version, c);
    }
    this.dirty.set(c, [m.record.id, version]);
    return c;
  }

  /**
   * The split as it applies now, over the versions that can serve (`ready`, ascending): configured weights of
   * READY versions; the newest READY version alone when the model has no split or none of its versions is READY.
   */
  private effectiveWeights(m: ModelExperiment, ready: readonly number[]): VersionWeight[] {
    const usable = m.record.weights.filter((w) => ready.includes(w.version));
    if (usable.length > 0) return usable;
    const newest = ready.at(-1);
    return newest === undefined ? [] : [{ version: newest, weight: 1 }];
  }

  /** The share of the model's unpinned traffic `version` gets now (ListModels traffic_weight). */
  trafficWeight(model: string, version: number, ready: readonly number[]): number {
    const m = this.models.get(model);
    const weights = m ? this.effectiveWeights(m, ready) : ready.length > 0 ? [{ version: ready.at(-1)!, weight: 1 }] : [];
    const total = weights.reduce((s, w) => s + w.weight, 0);
    return total > 0 ? (weights.find((w) => w.version === version)?.weight ?? 0) / total : 0;
  }

  /** The version that serves an unpinned request; undefined when none of the model's versions is READY. */
  assign(model: string, ready: readonly number[], robotId: string, episodeId: string): Assignment | undefined {
    const m = this.experiment(model);
    const weights = this.effectiveWeights(m, ready);
    if (weights.length === 0) return undefined;
    const experimentId = m.record.id;
    const ongoing = episodeId ? this.ledger.get(robotId, episodeId) : undefined;
    if (ongoing && ongoing.experimentId === experimentId && weights.some((w) => w.version === ongoing.version)) {
      return { model, version: ongoing.version, experimentId };
    }
    const version = weights.length === 1 ? weights[0].version : assignVersion(m.record.salt, stickyKeyOf(m.record.stickyKey, robotId, episodeId), weights)!;
    return { model, version, experimentId };
  }

  /** A pinned request's assignment: served and credited, not counted. */
  pinned(model: string, version: number): Assignment {
    return { model, version, experimentId: 0 };
  }

  /** Records a served request: the version's counters (split-routed only) and the episode's owner. */
  served(a: Assignment, req: ServedRequest): void {
    const current = this.models.get(a.model);
    // A request that started before its experiment was replaced counts nowhere.
    const m = a.experimentId !== 0 && current?.record.id === a.experimentId ? current : undefined;
    if (m) {
      const c = this.counters(m, a.version);
      c.requests++;
      c.latency.record(req.latencyMs);
      c.visionStepsSum += req.visionSteps;
      if (req.worldModelSurprise !== undefined && Number.isFinite(req.worldModelSurprise)) {
        c.surpriseSum += req.worldModelSurprise;
        c.surpriseCount++;
      }
      if (c.robots.add(req.robotId)) this.queueRobot({ experimentId: a.experimentId, version: a.version, robotId: req.robotId });
    }
    if (!req.episodeId) return;
    const { entry, started } = this.ledger.serve(req.robotId, req.episodeId, a);
    if (!started) return;
    this.queueLedger({ robotId: req.robotId, episodeId: req.episodeId, ...entry });
    if (m) this.counters(m, a.version).episodesServed++;
  }

  /**
   * The shadow version to mirror this primary request to, drawn with the split's shadow fraction; undefined
   * for pinned requests, when the primary is the shadow version itself, or when the shadow is not READY.
   */
  shadowFor(a: Assignment, ready: readonly number[]): number | undefined {
    const m = this.models.get(a.model);
    if (!m || a.experimentId !== m.record.id) return undefined;
    const { shadowVersion, shadowFraction } = m.record;
    if (shadowVersion === 0 || shadowVersion === a.version || !ready.includes(shadowVersion)) return undefined;
    return this.options.random() < shadowFraction ? shadowVersion : undefined;
  }

  /** A mirrored request finished on the shadow version. */
  shadowServed(model: string, version: number, latencyMs: number, divergence: number): void {
    const m = this.models.get(model);
    if (!m) return;
    const c = this.counters(m, version);
    c.shadowRequests++;
    c.shadowLatency.record(latencyMs);
    if (Number.isFinite(divergence)) c.shadowDivergenceSum += divergence;
  }

  /** A mirrored request was shed (lower priority than primary traffic) or failed. */
  shadowShed(model: string, version: number): void {
    const m = this.models.get(model);
    if (m) this.counters(m, version).shadowShed++;
  }

  /**
   * Credits an episode's outcome to the version that served it. The first report of an episode counts;
   * repeats return the same credit, uncounted. Undefined when no request of the episode was served here.
   */
  outcome(robotId: string, episodeId: string, success: boolean): Credit | undefined {
    const entry = this.ledger.get(robotId, episodeId);
    if (!entry) return undefined;
    const credit = { model: entry.model, version: entry.version };
    if (entry.outcome !== undefined) return { ...credit, counted: false };
    entry.outcome = success;
    this.queueLedger({ robotId, episodeId, ...entry });
    const m = this.models.get(entry.model);
    if (!m || entry.experimentId !== m.record.id) return { ...credit, counted: false };
    const c = this.counters(m, entry.version);
    c.episodes++;
    if (success) c.successes++;
    this.updateSequentialTests(m, entry.version);
    return { ...credit, counted: true };
  }

  /** After an outcome of `version`: its test against the control, or every candidate's when it is the control. */
  private updateSequentialTests(m: ModelExperiment, version: number): void {
    const control = m.record.controlVersion;
    if (control === 0) return;
    const ctrl = this.counters(m, control);
    const opts = { alpha: this.options.alpha, tau: this.options.mixtureSd };
    for (const [v, c] of m.counters) {
      if (v === control || (version !== control && v !== version)) continue;
      const before = c.alwaysValid;
      c.alwaysValid = updateAlwaysValid(c.alwaysValid, ctrl.outcomes, c.outcomes, opts);
      if (before.decision === 'keep collecting' && c.alwaysValid.decision !== 'keep collecting') {
        this.log.info({ model: m.record.model, experiment: m.record.id, control, version: v, pValue: c.alwaysValid.pValue, decision: c.alwaysValid.decision }, 'experiment decided');
      }
      this.dirty.set(c, [m.record.id, v]);
    }
  }

  /**
   * SetTrafficSplit. Versions must be checked against the registry by the caller; this checks the numbers.
   * A new salt (or the model's first split, or another sticky key) starts a new experiment; otherwise the
   * current one goes on with the new weights. Changing the control restarts the sequential tests from the
   * data so far.
   */
  setSplit(model: string, spec: SplitSpec): ExperimentRecord {
    const weights = normalizeWeights(spec.weights);
    const controlVersion = spec.controlVersion || weights[0].version;
    if (!weights.some((w) => w.version === controlVersion)) {
      throw new InvalidArgumentError(`control_version ${controlVersion} is not in the split; give it a weight or choose one of ${weights.map((w) => w.version).join(', ')}`);
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
    const current = this.experiment(model);
    const fresh = !current.explicit || (spec.salt !== '' && spec.salt !== current.record.salt) || spec.stickyKey !== current.record.stickyKey;
    if (fresh) {
      const record = { model, salt: spec.salt || this.options.newSalt(), weights, controlVersion, stickyKey: spec.stickyKey, ...shadow, startedAt: this.options.now() };
      const next = new ModelExperiment({ ...record, id: this.store.createExperiment(record) });
      this.models.set(model, next);
      this.log.info({ model, experiment: next.record.id, salt: record.salt, weights, controlVersion, stickyKey: spec.stickyKey, ...shadow }, 'experiment started');
      return next.record;
    }
    const controlChanged = controlVersion !== current.record.controlVersion;
    current.record = { ...current.record, weights, controlVersion, ...shadow };
    this.store.updateExperiment(current.record);
    if (controlChanged) {
      for (const c of current.counters.values()) c.alwaysValid = INITIAL_ALWAYS_VALID;
      this.updateSequentialTests(current, controlVersion);
    }
    this.log.info({ model, experiment: current.record.id, weights, controlVersion, ...shadow }, 'traffic split changed');
    return current.record;
  }

  /** The model's current split; undefined before anything named the model. */
  split(model: string): ExperimentRecord | undefined {
    return this.models.get(model)?.record;
  }

  /**
   * GetExperiment: one row per version that is in the split, is loaded, or has counts. `loaded` are the
   * model's loaded versions, `ready` those READY (for the implicit experiment's weight).
   */
  report(model: string, loaded: readonly number[], ready: readonly number[]): ExperimentReport {
    const m = this.experiment(model);
    const { record } = m;
    const weights = record.weights.length > 0 ? record.weights : this.effectiveWeights(m, ready);
    const control = record.controlVersion;
    const versions = new Set([...weights.map((w) => w.version), ...loaded, ...m.counters.keys()]);
    if (control) versions.add(control);
    if (record.shadowVersion) versions.add(record.shadowVersion);
    const empty = new VariantCounters(new DistinctCounter(0));
    const ctrl = control ? (m.counters.get(control) ?? empty) : undefined;
    const variants = [...versions]
      .sort((a, b) => a - b)
      .map((version): VariantReport => {
        const c = m.counters.get(version) ?? empty;
        const isControl = version === control;
        return {
          version,
          weight: weights.find((w) => w.version === version)?.weight ?? 0,
          requests: c.requests,
          robots: c.robots.count,
          robotsCapped: c.robots.capped,
          episodesServed: c.episodesServed,
          episodes: c.episodes,
          successes: c.successes,
          successRate: mean(c.successes, c.episodes),
          ci95: wilsonInterval(c.outcomes),
          pValueVsControl: ctrl && !isControl ? twoProportionZTest(ctrl.outcomes, c.outcomes).pValue : 1,
          alwaysValidPValue: ctrl && !isControl ? c.alwaysValid.pValue : 1,
          decision: !ctrl ? 'none' : isControl ? 'control' : c.alwaysValid.decision,
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

  private queueRobot(r: RobotRecord): void {
    this.pendingRobots.push(r);
    if (this.pendingRobots.length > DEFAULT_MAX_PENDING_ROWS) this.pendingRobots.shift();
  }

  private queueLedger(e: LedgerRecord): void {
    const key = `${e.robotId}\u0000${e.episodeId}`;
    this.pendingLedger.delete(key);
    this.pendingLedger.set(key, e);
    if (this.pendingLedger.size > DEFAULT_MAX_PENDING_ROWS) this.pendingLedger.delete(this.pendingLedger.keys().next().value!);
  }

  /**
   * Hands what changed since the last flush to the store, which writes it off this thread, in chunks of at most
   * DEFAULT_FLUSH_CHUNK_ROWS rows (the counters go with the first). One flush at a time; rows of a failed write
   * go back into the queue for the next flush. Resolves when written.
   */
  flush(): Promise<void> {
    if (this.writing) return this.writing;
    if (this.dirty.size === 0 && this.pendingRobots.length === 0 && this.pendingLedger.size === 0) return Promise.resolve();
    const dirty = [...this.dirty];
    let counters: CounterRecord[] = dirty.map(([c, [id, version]]) => c.toRecord(id, version));
    const robots = this.pendingRobots;
    const ledger = [...this.pendingLedger.values()];
    this.dirty.clear();
    this.pendingRobots = [];
    this.pendingLedger.clear();
    this.writing = (async () => {
      let r = 0;
      let l = 0;
      try {
        do {
          const robotRows = robots.slice(r, r + DEFAULT_FLUSH_CHUNK_ROWS);
          const ledgerRows = ledger.slice(l, l + DEFAULT_FLUSH_CHUNK_ROWS - robotRows.length);
          await this.store.write({ counters, robots: robotRows, ledger: ledgerRows });
          counters = [];
          r += robotRows.length;
          l += ledgerRows.length;
        } while (r < robots.length || l < ledger.length);
      } catch (err) {
        this.log.error({ err, robots: robots.length - r, episodes: ledger.length - l }, 'experiment store write failed; retrying at the next flush');
        if (counters.length > 0) for (const [c, key] of dirty) if (!this.dirty.has(c)) this.dirty.set(c, key);
        for (const row of robots.slice(r)) this.queueRobot(row);
        for (const e of ledger.slice(l)) if (!this.pendingLedger.has(`${e.robotId}\u0000${e.episodeId}`)) this.queueLedger(e);
      } finally {
        this.writing = undefined;
      }
    })();
    return this.writing;
  }

  /** Writes everything still unwritten, then closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.writing;
    await this.flush();
    await this.store.close();
  }
}
