/**
 * The experiment store of one serving process (the embedded default): counts live in memory, so a request only
 * touches memory, and a timer writes what changed to an SQLite file (sqlite-database.ts) in batches; start-up
 * reads the file back. A SIGKILL loses at most the last flush interval of counts. Several processes must not
 * share one file: each would overwrite the others' absolute counts (use the PostgreSQL store for a fleet).
 */
import { OPTION_TABLE } from '../config/index.js';
import { DEFAULT_MAX_TRACKED_ROBOTS, DistinctCounter } from './distinct-counter.js';
import { DEFAULT_LEDGER_CAPACITY, EpisodeLedger } from './episode-ledger.js';
import { DEFAULT_LEDGER_RETENTION, SqliteDatabase } from './sqlite-database.js';
import type { CounterRecord, ExperimentDatabase, HistoryRecord, LedgerRecord, RobotRecord } from './sqlite-records.js';
import { INITIAL_ALWAYS_VALID, type AlwaysValidState } from './statistics.js';
import type {
  EpisodeCredit,
  EpisodeOwner,
  ExperimentChange,
  ExperimentRecord,
  ExperimentStore,
  NewExperiment,
  ServedEvent,
  ShadowEvent,
  VariantTotals,
  VersionOutcomes,
} from './store.js';
import { countsAsPinned } from './request-sums.js';
import { VariantCounters } from './variant-counters.js';

/** How often counters, robots and episodes are written to the file. @default 1000 */
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** Robot and episode rows held for the file while it fails, beyond which the oldest are dropped. @default 100000 */
export const DEFAULT_MAX_PENDING_ROWS = 100_000;
/**
 * Robot and episode rows per write handed to the database: a flood of new episodes is written in several writes,
 * with the event loop free between them, rather than cloned to the writer thread in one long pause. @default 1000
 */
export const DEFAULT_FLUSH_CHUNK_ROWS = 1000;

/** The experimentHistorySeconds option's default, in ms. */
export const DEFAULT_HISTORY_WINDOW_MS = OPTION_TABLE.experimentHistorySeconds.default * 1000;

export interface SqliteStoreOptions {
  /** @default DEFAULT_MAX_TRACKED_ROBOTS */
  readonly maxTrackedRobots: number;
  /** Episodes remembered in memory. @default DEFAULT_LEDGER_CAPACITY */
  readonly ledgerCapacity: number;
  /** Episodes kept in the file. @default DEFAULT_LEDGER_RETENTION */
  readonly ledgerRetention: number;
  /** @default DEFAULT_FLUSH_INTERVAL_MS; 0 = only on flush() and close() */
  readonly flushIntervalMs: number;
  /** Width of one history point (the historyWindowMs option). @default DEFAULT_HISTORY_WINDOW_MS */
  readonly historyWindowMs: number;
  /** Epoch ms of a flush. @default Date.now */
  readonly now: () => number;
  /** Where a failed write is reported. @default nowhere */
  readonly log: { error(obj: object, msg: string): void };
}

const DEFAULTS: SqliteStoreOptions = {
  maxTrackedRobots: DEFAULT_MAX_TRACKED_ROBOTS,
  ledgerCapacity: DEFAULT_LEDGER_CAPACITY,
  ledgerRetention: DEFAULT_LEDGER_RETENTION,
  flushIntervalMs: DEFAULT_FLUSH_INTERVAL_MS,
  historyWindowMs: DEFAULT_HISTORY_WINDOW_MS,
  now: Date.now,
  log: { error: () => undefined },
};

export class SqliteExperimentStore implements ExperimentStore {
  private readonly options: SqliteStoreOptions;
  private readonly db: ExperimentDatabase;
  /** Each model's current experiment; only current experiments count. */
  private readonly current = new Map<string, ExperimentRecord>();
  private readonly counters = new Map<number, Map<number, VariantCounters>>();
  private readonly ledger: EpisodeLedger;
  private readonly dirty = new Map<VariantCounters, [experimentId: number, version: number]>();
  private pendingRobots: RobotRecord[] = [];
  private readonly pendingLedger = new Map<string, LedgerRecord>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  /**
   * Opens (creating when missing) the database at `file` (IN_MEMORY: nothing survives a restart), or uses the
   * given database, reads its state back and starts the flush timer.
   * @throws Error that names the file and the option to change when it cannot be opened.
   */
  constructor(file: string | ExperimentDatabase, options: Partial<SqliteStoreOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.db = typeof file === 'string' ? new SqliteDatabase(file, this.options.ledgerRetention) : file;
    this.ledger = new EpisodeLedger(this.options.ledgerCapacity);
    const state = this.db.load(this.options.ledgerCapacity);
    const robotIds = new Map<string, string[]>();
    for (const r of state.robots) {
      const key = `${r.experimentId}@${r.version}`;
      robotIds.set(key, [...(robotIds.get(key) ?? []), r.robotId]);
    }
    for (const record of state.experiments) {
      this.current.set(record.model, record);
      this.counters.set(record.id, new Map());
    }
    for (const c of state.counters) {
      this.counters
        .get(c.experimentId)
        ?.set(c.version, VariantCounters.restore(c, robotIds.get(`${c.experimentId}@${c.version}`) ?? [], this.options.maxTrackedRobots));
    }
    for (const e of state.ledger)
      this.ledger.restore(e.robotId, e.episodeId, { model: e.model, version: e.version, experimentId: e.experimentId, outcome: e.outcome });
    if (this.options.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
      this.timer.unref();
    }
  }

  currentExperiments(): Promise<ExperimentRecord[]> {
    return Promise.resolve([...this.current.values()]);
  }

  ensureExperiment(initial: NewExperiment): Promise<ExperimentRecord> {
    return Promise.resolve(this.current.get(initial.model) ?? this.start(initial));
  }

  changeExperiment(model: string, decide: (current: ExperimentRecord | undefined) => ExperimentChange): Promise<ExperimentRecord> {
    return Promise.resolve().then(() => {
      const change = decide(this.current.get(model));
      if ('start' in change) return this.start(change.start);
      const record = change.update;
      this.db.updateExperiment(record);
      this.current.set(model, record);
      if (change.restartTests) {
        for (const [version, c] of this.counters.get(record.id) ?? []) {
          c.alwaysValid = INITIAL_ALWAYS_VALID;
          this.dirty.set(c, [record.id, version]);
        }
      }
      return record;
    });
  }

  private start(e: NewExperiment): ExperimentRecord {
    const record = { ...e, id: this.db.createExperiment(e) };
    const before = this.current.get(e.model);
    if (before) this.counters.delete(before.id);
    this.current.set(e.model, record);
    this.counters.set(record.id, new Map());
    return record;
  }

  onExternalChange(): void {
    // One process: nobody else changes its experiments.
  }

  episodeOwner(robotId: string, episodeId: string): EpisodeOwner | undefined {
    return this.ledger.get(robotId, episodeId);
  }

  private counter(experimentId: number, version: number): VariantCounters | undefined {
    const versions = this.counters.get(experimentId);
    if (!versions) return undefined;
    let c = versions.get(version);
    if (!c) {
      c = new VariantCounters(new DistinctCounter(this.options.maxTrackedRobots));
      versions.set(version, c);
    }
    this.dirty.set(c, [experimentId, version]);
    return c;
  }

  /** Whether a served request enters its experiment: routed by the current one, or pinned to its episode's version there. */
  private counts(e: ServedEvent): boolean {
    if (e.experimentId === 0 || this.current.get(e.model)?.id !== e.experimentId) return false;
    return countsAsPinned(e, e.pinned && e.episodeId ? this.ledger.get(e.robotId, e.episodeId) : undefined);
  }

  served(e: ServedEvent): Promise<void> {
    const c = this.counts(e) ? this.counter(e.experimentId, e.version) : undefined;
    if (c) {
      c.addServed(e);
      if (c.robots.add(e.robotId)) this.queueRobot({ experimentId: e.experimentId, version: e.version, robotId: e.robotId });
    }
    if (e.episodeId) {
      const { entry, started } = this.ledger.serve(e.robotId, e.episodeId, { model: e.model, version: e.version, experimentId: e.pinned ? 0 : e.experimentId });
      if (started) {
        this.queueLedger({ robotId: e.robotId, episodeId: e.episodeId, ...entry });
        if (c) c.episodesServed++;
      }
    }
    return Promise.resolve();
  }

  shadow(e: ShadowEvent): void {
    this.counter(e.experimentId, e.version)?.addShadow(e);
  }

  credit(robotId: string, episodeId: string, success: boolean): Promise<EpisodeCredit | undefined> {
    const entry = this.ledger.get(robotId, episodeId);
    if (!entry) return Promise.resolve(undefined);
    const owner = { model: entry.model, version: entry.version, experimentId: entry.experimentId };
    if (entry.outcome !== undefined) return Promise.resolve({ ...owner, counted: false });
    entry.outcome = success;
    this.queueLedger({ robotId, episodeId, ...entry });
    const c =
      entry.experimentId !== 0 && this.current.get(entry.model)?.id === entry.experimentId ? this.counter(entry.experimentId, entry.version) : undefined;
    if (!c) return Promise.resolve({ ...owner, counted: false });
    c.episodes++;
    if (success) c.successes++;
    return Promise.resolve({ ...owner, counted: true });
  }

  totals(experimentId: number): Promise<VariantTotals[]> {
    return Promise.resolve([...(this.counters.get(experimentId) ?? [])].map(([version, c]) => c.totals(version)));
  }

  outcomes(experimentId: number): Promise<VersionOutcomes[]> {
    return Promise.resolve([...(this.counters.get(experimentId) ?? [])].map(([version, c]) => ({ version, outcomes: c.outcomes, test: c.alwaysValid })));
  }

  saveTests(experimentId: number, tests: ReadonlyMap<number, AlwaysValidState>): Promise<void> {
    for (const [version, test] of tests) {
      const c = this.counter(experimentId, version);
      if (c) c.alwaysValid = test;
    }
    return Promise.resolve();
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
   * Hands what changed since the last flush to the database, which writes it off this thread, in chunks of at
   * most DEFAULT_FLUSH_CHUNK_ROWS rows (the counters go with the first). One flush at a time; rows of a failed
   * write go back into the queue for the next flush. Resolves when written.
   */
  flush(): Promise<void> {
    if (this.writing) return this.writing;
    if (this.dirty.size === 0 && this.pendingRobots.length === 0 && this.pendingLedger.size === 0) return Promise.resolve();
    const dirty = [...this.dirty];
    let counters: CounterRecord[] = dirty.map(([c, [id, version]]) => c.toRecord(id, version));
    const at = this.options.now();
    const windowStart = Math.floor(at / this.options.historyWindowMs) * this.options.historyWindowMs;
    let history: HistoryRecord[] = dirty.map(([c, [id, version]]) => c.toHistory(id, version, at, windowStart));
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
          await this.db.write({ counters, history, robots: robotRows, ledger: ledgerRows });
          counters = [];
          history = [];
          r += robotRows.length;
          l += ledgerRows.length;
        } while (r < robots.length || l < ledger.length);
      } catch (err) {
        this.options.log.error({ err, robots: robots.length - r, episodes: ledger.length - l }, 'experiment store write failed; retrying at the next flush');
        if (counters.length > 0) for (const [c, key] of dirty) if (!this.dirty.has(c)) this.dirty.set(c, key);
        for (const row of robots.slice(r)) this.queueRobot(row);
        for (const e of ledger.slice(l)) if (!this.pendingLedger.has(`${e.robotId}\u0000${e.episodeId}`)) this.queueLedger(e);
      } finally {
        this.writing = undefined;
      }
    })();
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.writing;
    await this.flush();
    await this.db.close();
  }
}
