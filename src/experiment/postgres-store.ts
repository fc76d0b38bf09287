/**
 * The experiment store a fleet of replicas shares (docs/deployment.md, "Many replicas"): PostgreSQL through the `pg` client.
 *
 * - Splits: a model's newest experiment row is its current one. Changes run in a transaction under an advisory
 *   lock per model and announce the model on NOTIFY `dust_experiments`; every replica LISTENs and re-reads the
 *   current experiments (the book also re-reads them on a timer, the bound when a notification is lost).
 * - Counting: each served request is queued and written in a group commit (one transaction for what queued
 *   while the last one ran); its response waits for that commit, up to `countWaitMs`, so a replica that dies
 *   after answering has already counted. In the transaction: the request's (robot_id, episode_id, request_id) is
 *   inserted once (a request retried on another replica is not counted twice); an episode's row is inserted once
 *   (the first request anywhere owns it); robots are rows inserted once; counters and sketch buckets are
 *   increments.
 *   Rows are written in key order, so concurrent replicas take row locks in one order and do not deadlock.
 * - Outcomes: one statement sets the episode's outcome where it is still unset and adds to its version's
 *   counters: exactly once, whichever replica the report (or its retry) reaches.
 */
import pg from 'pg';
import { UnavailableError } from '../errors/index.js';
import { DEFAULT_LEDGER_CAPACITY, EpisodeLedger } from './episode-ledger.js';
import { LatencySketch, type SketchBin } from './latency-sketch.js';
import { CHANGE_CHANNEL, LOCK_CLASS, migrate, SKETCH } from './postgres-schema.js';
import { countsAsPinned, RequestSums } from './request-sums.js';
import type { AlwaysValidState, Decision } from './statistics.js';
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
import type { StickyKeyKind, VersionWeight } from './traffic-split.js';

/** Served requests written in one transaction at most. @default 1000 */
export const DEFAULT_MAX_BATCH = 1000;
/** Served requests held while PostgreSQL is unreachable, beyond which the oldest are dropped (and logged). @default 100000 */
export const DEFAULT_MAX_QUEUED = 100_000;
/** Wait before writing again after a failed write. @default 1000 */
export const DEFAULT_RETRY_MS = 1000;
/** Connections per replica (the writer, admin calls, outcomes, reports; LISTEN has its own). @default 4 */
export const DEFAULT_POOL_SIZE = 4;
/**
 * How long a (robot_id, episode_id, request_id) is remembered: a retry arriving later than this is counted again. Retries
 * come within seconds (the client's backoff is capped at 1 s, five attempts). @default 600000 (10 minutes)
 */
export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60_000;
/** Episodes older than this are deleted (their outcomes can no longer be credited). @default 604800000 (7 days) */
export const DEFAULT_EPISODE_RETENTION_MS = 7 * 24 * 3_600_000;
/** How often a replica deletes expired request keys and episodes. @default 60000 */
export const DEFAULT_MAINTENANCE_MS = 60_000;
/** Robot ids per replica remembered as stored, so that a robot's every request does not insert it again. @default 100000 */
export const DEFAULT_KNOWN_ROBOTS = 100_000;

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database; fields left out come from libpq's PG* environment variables. */
  readonly connectionString: string;
  /**
   * Longest a response waits for its request's count to be committed (the experimentCountWaitMs option); 0 =
   * answer without waiting (a crash then loses the counts not yet written).
   */
  readonly countWaitMs: number;
  /** @default DEFAULT_POOL_SIZE */
  readonly poolSize: number;
  /** Episode owners this replica remembers for the split's ongoing-episode rule. @default DEFAULT_LEDGER_CAPACITY */
  readonly ledgerCapacity: number;
  /** @default DEFAULT_RETRY_MS */
  readonly retryMs: number;
  /** @default DEFAULT_DEDUP_WINDOW_MS */
  readonly dedupWindowMs: number;
  /** @default DEFAULT_MAINTENANCE_MS; 0 = never */
  readonly maintenanceMs: number;
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const DEFAULTS: Omit<PostgresStoreOptions, 'connectionString' | 'log' | 'countWaitMs'> = {
  poolSize: DEFAULT_POOL_SIZE,
  ledgerCapacity: DEFAULT_LEDGER_CAPACITY,
  retryMs: DEFAULT_RETRY_MS,
  dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
  maintenanceMs: DEFAULT_MAINTENANCE_MS,
};

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

interface ExperimentRow {
  id: string;
  model: string;
  salt: string;
  weights: VersionWeight[];
  control_version: number;
  sticky_key: string;
  shadow_version: number;
  shadow_fraction: number;
  started_at: string;
}

function toExperiment(r: ExperimentRow): ExperimentRecord {
  return {
    id: Number(r.id),
    model: r.model,
    salt: r.salt,
    weights: r.weights,
    controlVersion: r.control_version,
    stickyKey: r.sticky_key as StickyKeyKind,
    shadowVersion: r.shadow_version,
    shadowFraction: r.shadow_fraction,
    startedAt: Number(r.started_at),
  };
}

const EXPERIMENT_COLUMNS = 'id, model, salt, weights, control_version, sticky_key, shadow_version, shadow_fraction, started_at';

/** SQLSTATE classes and socket errors that mean "PostgreSQL cannot be reached now", not a bug: retryable. */
function unreachable(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  if (/^(08|53|57P|40)/.test(code) || /^E(CONNREFUSED|CONNRESET|TIMEDOUT|PIPE|HOSTUNREACH|NOTFOUND|AI_AGAIN)$/.test(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
    (err as Error)?.message ?? '',
  );
}

/** A connection failure becomes UNAVAILABLE with what to check; anything else is rethrown as it is. */
function asUnavailable(err: unknown): never {
  if (unreachable(err)) throw new UnavailableError(`the experiment store (PostgreSQL) cannot be reached: ${(err as Error).message}; retry`, { cause: err });
  throw err;
}

const episodeKey = (robotId: string, episodeId: string) => `${robotId}\u0000${episodeId}`;
const requestKey = (e: Pick<ServedEvent, 'robotId' | 'episodeId' | 'requestId'>) => `${e.robotId}\u0000${e.episodeId}\u0000${e.requestId}`;
const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/** What one transaction adds to one version's counters. */
class CounterDelta extends RequestSums {
  readonly robots = new Set<string>();
  constructor(
    readonly experimentId: number,
    readonly version: number,
  ) {
    super();
  }
}

interface Queued {
  readonly event: ServedEvent;
  /** Lets the response go (idempotent). */
  readonly release: () => void;
}

export class PostgresExperimentStore implements ExperimentStore {
  private readonly options: PostgresStoreOptions;
  private readonly pool: pg.Pool;
  private listener: pg.Client | undefined;
  private readonly changeListeners: Array<() => void> = [];
  private readonly owners: EpisodeLedger;
  /** Robots stored per `${experimentId}@${version}`, cleared when it grows past DEFAULT_KNOWN_ROBOTS. */
  private readonly knownRobots = new Map<string, Set<string>>();
  private knownRobotCount = 0;
  private queue: Queued[] = [];
  private shadows: ShadowEvent[] = [];
  private writing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  /** The last write failed: responses stop waiting for their counts until one succeeds. */
  private failing = false;
  private closed = false;

  private constructor(options: PostgresStoreOptions) {
    this.options = options;
    this.owners = new EpisodeLedger(options.ledgerCapacity);
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize,
      application_name: 'dust-serve',
      connectionTimeoutMillis: 10_000,
    });
    // An idle connection that breaks must not crash the process: the next query gets a new one.
    this.pool.on('error', (err) => options.log.warn({ err: err.message }, 'an idle PostgreSQL connection failed'));
  }

  /**
   * Connects, creates the tables when missing and starts listening for changes.
   * @throws Error naming the (redacted) URL and the options to change when PostgreSQL cannot be reached.
   */
  static async connect(
    options: Pick<PostgresStoreOptions, 'connectionString' | 'log' | 'countWaitMs'> & Partial<PostgresStoreOptions>,
  ): Promise<PostgresExperimentStore> {
    const store = new PostgresExperimentStore({ ...DEFAULTS, ...options });
    try {
      const client = await store.pool.connect();
      const heard = () => undefined;
      client.on('error', heard);
      try {
        await migrate(client);
      } finally {
        client.removeListener('error', heard);
        client.release(true);
      }
      await store.listen();
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      throw new Error(
        `cannot use the PostgreSQL experiment store at ${redactUrl(options.connectionString)} (${(err as Error).message}); check --postgres-url (DUST_POSTGRES_URL) and the PG* environment variables (PGPASSWORD), or use --experiment-store sqlite`,
        { cause: err },
      );
    }
    if (store.options.maintenanceMs > 0) {
      store.maintenanceTimer = setInterval(() => void store.maintain(), store.options.maintenanceMs);
      store.maintenanceTimer.unref();
    }
    return store;
  }

  /** LISTEN on its own connection; a lost connection is re-opened, and listeners are told (changes may be missed). */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'dust-serve listener', connectionTimeoutMillis: 10_000 });
    const lost = (err?: Error) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.options.log.warn({ err: err?.message }, 'lost the PostgreSQL change notifications; reconnecting');
      const retry = (): void => {
        this.listen().then(
          () => this.changed(),
          () => {
            if (!this.closed) setTimeout(retry, this.options.retryMs).unref();
          },
        );
      };
      setTimeout(retry, this.options.retryMs).unref();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => this.changed());
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.listener = client;
  }

  private changed(): void {
    for (const listener of this.changeListeners) listener();
  }

  onExternalChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  async currentExperiments(): Promise<ExperimentRecord[]> {
    const { rows } = await this.pool
      .query<ExperimentRow>(`SELECT DISTINCT ON (model) ${EXPERIMENT_COLUMNS} FROM dust_experiments ORDER BY model, id DESC`)
      .catch(asUnavailable);
    return rows.map(toExperiment);
  }

  /** Runs `body` in a transaction on one pooled connection; a connection that failed is closed, not reused. */
  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection cut between two queries fails the next query; unheard, its error event would end the process.
    const heard = () => undefined;
    client.on('error', heard);
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      client.removeListener('error', heard);
      client.release();
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.removeListener('error', heard);
      client.release(true);
      throw err;
    }
  }

  /** Runs `body` in a transaction holding the model's lock, and announces the model when it commits. */
  private underModelLock<T>(model: string, body: (client: pg.PoolClient, current: ExperimentRecord | undefined) => Promise<T>): Promise<T> {
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, model]);
      const { rows } = await client.query<ExperimentRow>(`SELECT ${EXPERIMENT_COLUMNS} FROM dust_experiments WHERE model = $1 ORDER BY id DESC LIMIT 1`, [
        model,
      ]);
      const result = await body(client, rows[0] && toExperiment(rows[0]));
      await client.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, model]);
      return result;
    }).catch(asUnavailable);
  }

  private static async insert(client: pg.PoolClient, e: NewExperiment): Promise<ExperimentRecord> {
    const { rows } = await client.query<ExperimentRow>(
      `INSERT INTO dust_experiments (model, salt, weights, control_version, sticky_key, shadow_version, shadow_fraction, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${EXPERIMENT_COLUMNS}`,
      [e.model, e.salt, JSON.stringify(e.weights), e.controlVersion, e.stickyKey, e.shadowVersion, e.shadowFraction, e.startedAt],
    );
    return toExperiment(rows[0]);
  }

  ensureExperiment(initial: NewExperiment): Promise<ExperimentRecord> {
    return this.underModelLock(initial.model, (client, current) => (current ? Promise.resolve(current) : PostgresExperimentStore.insert(client, initial)));
  }

  changeExperiment(model: string, decide: (current: ExperimentRecord | undefined) => ExperimentChange): Promise<ExperimentRecord> {
    return this.underModelLock(model, async (client, current) => {
      const change = decide(current);
      if ('start' in change) return PostgresExperimentStore.insert(client, change.start);
      const e = change.update;
      await client.query(`UPDATE dust_experiments SET weights = $2, control_version = $3, shadow_version = $4, shadow_fraction = $5 WHERE id = $1`, [
        e.id,
        JSON.stringify(e.weights),
        e.controlVersion,
        e.shadowVersion,
        e.shadowFraction,
      ]);
      if (change.restartTests) {
        await client.query(`UPDATE dust_counters SET always_valid_p = 1, decision = 'keep collecting' WHERE experiment_id = $1`, [e.id]);
      }
      return e;
    });
  }

  episodeOwner(robotId: string, episodeId: string): EpisodeOwner | undefined {
    return this.owners.get(robotId, episodeId);
  }

  served(event: ServedEvent): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const release = () => {
        clearTimeout(timer);
        resolve();
      };
      this.queue.push({ event, release });
      if (this.queue.length > DEFAULT_MAX_QUEUED) {
        const dropped = this.queue.splice(0, this.queue.length - DEFAULT_MAX_QUEUED);
        for (const d of dropped) d.release();
        this.options.log.error({ dropped: dropped.length }, 'experiment store unreachable for too long: dropped the oldest uncounted requests');
      }
      if (this.failing || this.options.countWaitMs <= 0) release();
      else timer = setTimeout(release, this.options.countWaitMs);
      this.kick();
    });
  }

  shadow(event: ShadowEvent): void {
    if (this.closed) return;
    this.shadows.push(event);
    if (this.shadows.length > DEFAULT_MAX_QUEUED) this.shadows.shift();
    this.kick();
  }

  /** Starts the writer unless it runs or waits to retry. */
  private kick(): void {
    if (this.writing || this.retryTimer) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      // Requests queued between the drain's last look at the queue and now.
      if (this.queue.length > 0 || this.shadows.length > 0) this.kick();
    });
  }

  /** Writes until the queue is empty; after a failure, the rows stay queued and a retry is scheduled. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.shadows.length > 0) {
      const batch = this.queue.splice(0, DEFAULT_MAX_BATCH);
      const shadows = this.shadows.splice(0, DEFAULT_MAX_BATCH);
      try {
        await this.write(
          batch.map((q) => q.event),
          shadows,
        );
      } catch (err) {
        this.queue.unshift(...batch);
        this.shadows.unshift(...shadows);
        for (const q of batch) q.release();
        if (!this.failing)
          this.options.log.error({ err, queued: this.queue.length }, 'could not write experiment counts to PostgreSQL; answering without waiting and retrying');
        this.failing = true;
        if (!this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.kick();
          }, this.options.retryMs);
          this.retryTimer.unref();
        }
        return;
      }
      if (this.failing) this.options.log.info({ queued: this.queue.length }, 'experiment counts are written to PostgreSQL again');
      this.failing = false;
      for (const q of batch) q.release();
    }
  }

  /** One group commit: counts the requests not counted before and adds everything up (see the file comment). */
  private async write(events: readonly ServedEvent[], shadows: readonly ShadowEvent[]): Promise<void> {
    const { owners, ordered } = await this.transaction(async (client) => {
      const fresh = await this.firstCounts(client, events);
      const episodes = await this.recordEpisodes(client, fresh);
      const deltas = new Map<string, CounterDelta>();
      const delta = (experimentId: number, version: number) => {
        const key = `${experimentId}@${version}`;
        let d = deltas.get(key);
        if (!d) deltas.set(key, (d = new CounterDelta(experimentId, version)));
        return d;
      };
      for (const e of fresh) {
        if (e.experimentId === 0) continue;
        const key = episodeKey(e.robotId, e.episodeId);
        const owner = e.episodeId ? episodes.owners.get(key) : undefined;
        if (!countsAsPinned(e, owner)) continue;
        const d = delta(e.experimentId, e.version);
        d.addServed(e);
        if (!this.knownRobots.get(`${e.experimentId}@${e.version}`)?.has(e.robotId)) d.robots.add(e.robotId);
        if (owner && owner.experimentId === e.experimentId && episodes.started.delete(key)) d.episodesServed++;
      }
      for (const s of shadows) delta(s.experimentId, s.version).addShadow(s);
      const sorted = [...deltas.values()].sort((a, b) => a.experimentId - b.experimentId || a.version - b.version);
      await PostgresExperimentStore.addRobots(client, sorted);
      await PostgresExperimentStore.addBins(client, sorted);
      await PostgresExperimentStore.addCounters(client, sorted);
      return { owners: episodes.owners, ordered: sorted };
    });
    // Only what committed is remembered.
    for (const [key, owner] of owners) {
      const [robotId, episodeId] = key.split('\u0000');
      this.owners.serve(robotId, episodeId, owner);
    }
    for (const d of ordered) this.rememberRobots(d);
  }

  /** The events whose (robot_id, episode_id, request_id) no replica counted before; events without a request_id all count. */
  private async firstCounts(client: pg.PoolClient, events: readonly ServedEvent[]): Promise<ServedEvent[]> {
    const keyed = new Map<string, ServedEvent>();
    for (const e of events) if (e.requestId && !keyed.has(requestKey(e))) keyed.set(requestKey(e), e);
    if (keyed.size === 0) return [...events];
    const sorted = [...keyed.values()].sort(byKey(requestKey));
    const { rows } = await client.query<{ robot_id: string; episode_id: string; request_id: string }>(
      `INSERT INTO dust_served_requests (robot_id, episode_id, request_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
       ON CONFLICT DO NOTHING RETURNING robot_id, episode_id, request_id`,
      [sorted.map((e) => e.robotId), sorted.map((e) => e.episodeId), sorted.map((e) => e.requestId)],
    );
    const inserted = new Set(rows.map((r) => requestKey({ robotId: r.robot_id, episodeId: r.episode_id, requestId: r.request_id })));
    // The first event of each key that no replica had counted (a key twice in one batch counts once).
    return events.filter((e) => !e.requestId || inserted.delete(requestKey(e)));
  }

  /** Inserts the episodes not known yet (the first request owns one) and reads every episode's owner. */
  private async recordEpisodes(client: pg.PoolClient, events: readonly ServedEvent[]): Promise<{ owners: Map<string, EpisodeOwner>; started: Set<string> }> {
    const first = new Map<string, ServedEvent>();
    for (const e of events) if (e.episodeId && !first.has(episodeKey(e.robotId, e.episodeId))) first.set(episodeKey(e.robotId, e.episodeId), e);
    const owners = new Map<string, EpisodeOwner>();
    const started = new Set<string>();
    if (first.size === 0) return { owners, started };
    const sorted = [...first.entries()].sort(byKey(([k]) => k)).map(([, e]) => e);
    const inserted = await client.query<{ robot_id: string; episode_id: string }>(
      `INSERT INTO dust_episodes (robot_id, episode_id, model, version, experiment_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[])
       ON CONFLICT DO NOTHING RETURNING robot_id, episode_id`,
      [
        sorted.map((e) => e.robotId),
        sorted.map((e) => e.episodeId),
        sorted.map((e) => e.model),
        sorted.map((e) => e.version),
        sorted.map((e) => (e.pinned ? 0 : e.experimentId)),
      ],
    );
    for (const r of inserted.rows) started.add(episodeKey(r.robot_id, r.episode_id));
    const found = await client.query<{ robot_id: string; episode_id: string; model: string; version: number; experiment_id: string }>(
      `SELECT robot_id, episode_id, model, version, experiment_id FROM dust_episodes
       WHERE (robot_id, episode_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [sorted.map((e) => e.robotId), sorted.map((e) => e.episodeId)],
    );
    for (const r of found.rows) owners.set(episodeKey(r.robot_id, r.episode_id), { model: r.model, version: r.version, experimentId: Number(r.experiment_id) });
    return { owners, started };
  }

  private static async addRobots(client: pg.PoolClient, deltas: readonly CounterDelta[]): Promise<void> {
    const rows = deltas.flatMap((d) => [...d.robots].sort().map((robot) => [d.experimentId, d.version, robot] as const));
    if (rows.length === 0) return;
    await client.query(
      `INSERT INTO dust_robots (experiment_id, version, robot_id) SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[]) ON CONFLICT DO NOTHING`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
    );
  }

  private static async addBins(client: pg.PoolClient, deltas: readonly CounterDelta[]): Promise<void> {
    const rows = deltas.flatMap((d) => [
      ...d.latency.bins().map((b) => [d.experimentId, d.version, SKETCH.latency, b] as const),
      ...d.shadowLatency.bins().map((b) => [d.experimentId, d.version, SKETCH.shadowLatency, b] as const),
    ]);
    if (rows.length === 0) return;
    rows.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3].key - b[3].key);
    await client.query(
      `INSERT INTO dust_sketch_bins (experiment_id, version, sketch, key, count)
       SELECT * FROM unnest($1::bigint[], $2::int[], $3::smallint[], $4::int[], $5::bigint[])
       ON CONFLICT (experiment_id, version, sketch, key) DO UPDATE SET count = dust_sketch_bins.count + excluded.count`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3].key), rows.map((r) => r[3].count)],
    );
  }

  private static async addCounters(client: pg.PoolClient, deltas: readonly CounterDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    const column = <K extends keyof CounterDelta>(k: K) => deltas.map((d) => d[k]);
    await client.query(
      `INSERT INTO dust_counters (experiment_id, version, requests, episodes_served, vision_steps_sum, surprise_sum, surprise_count,
         shadow_requests, shadow_shed, shadow_divergence_sum)
       SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[], $7::bigint[], $8::bigint[], $9::bigint[], $10::float8[])
       ON CONFLICT (experiment_id, version) DO UPDATE SET
         requests = dust_counters.requests + excluded.requests,
         episodes_served = dust_counters.episodes_served + excluded.episodes_served,
         vision_steps_sum = dust_counters.vision_steps_sum + excluded.vision_steps_sum,
         surprise_sum = dust_counters.surprise_sum + excluded.surprise_sum,
         surprise_count = dust_counters.surprise_count + excluded.surprise_count,
         shadow_requests = dust_counters.shadow_requests + excluded.shadow_requests,
         shadow_shed = dust_counters.shadow_shed + excluded.shadow_shed,
         shadow_divergence_sum = dust_counters.shadow_divergence_sum + excluded.shadow_divergence_sum`,
      [
        column('experimentId'),
        column('version'),
        column('requests'),
        column('episodesServed'),
        column('visionStepsSum'),
        column('surpriseSum'),
        column('surpriseCount'),
        column('shadowRequests'),
        column('shadowShed'),
        column('shadowDivergenceSum'),
      ],
    );
  }

  private rememberRobots(d: CounterDelta): void {
    if (d.robots.size === 0) return;
    if (this.knownRobotCount + d.robots.size > DEFAULT_KNOWN_ROBOTS) {
      this.knownRobots.clear();
      this.knownRobotCount = 0;
    }
    const key = `${d.experimentId}@${d.version}`;
    let known = this.knownRobots.get(key);
    if (!known) this.knownRobots.set(key, (known = new Set()));
    for (const r of d.robots) known.add(r);
    this.knownRobotCount += d.robots.size;
  }

  async credit(robotId: string, episodeId: string, success: boolean): Promise<EpisodeCredit | undefined> {
    type Row = { model: string; version: number; experiment_id: string; counted: boolean };
    const { rows } = await this.pool
      .query<Row>(
        `WITH credited AS (
           UPDATE dust_episodes SET outcome = $3 WHERE robot_id = $1 AND episode_id = $2 AND outcome IS NULL
           RETURNING model, version, experiment_id,
             experiment_id <> 0 AND experiment_id = (SELECT max(id) FROM dust_experiments x WHERE x.model = dust_episodes.model) AS counted
         ), added AS (
           INSERT INTO dust_counters (experiment_id, version, episodes, successes)
           SELECT experiment_id, version, 1, CASE WHEN $3 THEN 1 ELSE 0 END FROM credited WHERE counted
           ON CONFLICT (experiment_id, version) DO UPDATE SET
             episodes = dust_counters.episodes + 1, successes = dust_counters.successes + excluded.successes
         )
         SELECT model, version, experiment_id, counted FROM credited`,
        [robotId, episodeId, success],
      )
      .catch(asUnavailable);
    if (rows.length === 0) {
      const again = await this.pool
        .query<Row>('SELECT model, version, experiment_id, false AS counted FROM dust_episodes WHERE robot_id = $1 AND episode_id = $2', [robotId, episodeId])
        .catch(asUnavailable);
      if (again.rows.length === 0) return undefined;
      rows.push(again.rows[0]);
    }
    const r = rows[0];
    return { model: r.model, version: r.version, experimentId: Number(r.experiment_id), counted: r.counted };
  }

  async totals(experimentId: number): Promise<VariantTotals[]> {
    type CounterRow = Record<
      | 'version'
      | 'requests'
      | 'episodes_served'
      | 'episodes'
      | 'successes'
      | 'vision_steps_sum'
      | 'surprise_sum'
      | 'surprise_count'
      | 'shadow_requests'
      | 'shadow_shed'
      | 'shadow_divergence_sum'
      | 'always_valid_p',
      number
    > & { decision: Decision };
    const [counters, bins, robots] = await Promise.all([
      this.pool.query<CounterRow>(
        `SELECT version, requests::float8, episodes_served::float8, episodes::float8, successes::float8, vision_steps_sum::float8, surprise_sum,
           surprise_count::float8, shadow_requests::float8, shadow_shed::float8, shadow_divergence_sum, always_valid_p, decision
         FROM dust_counters WHERE experiment_id = $1`,
        [experimentId],
      ),
      this.pool.query<{ version: number; sketch: number; key: number; count: number }>(
        'SELECT version, sketch, key, count::float8 FROM dust_sketch_bins WHERE experiment_id = $1',
        [experimentId],
      ),
      this.pool.query<{ version: number; robots: number }>(
        'SELECT version, count(*)::float8 AS robots FROM dust_robots WHERE experiment_id = $1 GROUP BY version',
        [experimentId],
      ),
    ]).catch(asUnavailable);
    const sketches = new Map<string, SketchBin[]>();
    for (const b of bins.rows) {
      const key = `${b.version}/${b.sketch}`;
      sketches.set(key, [...(sketches.get(key) ?? []), { key: b.key, count: b.count }]);
    }
    const sketch = (version: number, which: number) => {
      const s = new LatencySketch();
      s.addBins(sketches.get(`${version}/${which}`) ?? []);
      return s;
    };
    const robotCounts = new Map(robots.rows.map((r) => [r.version, r.robots]));
    return counters.rows.map((c) => ({
      version: c.version,
      requests: c.requests,
      robots: robotCounts.get(c.version) ?? 0,
      robotsCapped: false,
      episodesServed: c.episodes_served,
      episodes: c.episodes,
      successes: c.successes,
      visionStepsSum: c.vision_steps_sum,
      surpriseSum: c.surprise_sum,
      surpriseCount: c.surprise_count,
      latency: sketch(c.version, SKETCH.latency),
      shadowRequests: c.shadow_requests,
      shadowShed: c.shadow_shed,
      shadowDivergenceSum: c.shadow_divergence_sum,
      shadowLatency: sketch(c.version, SKETCH.shadowLatency),
      test: { pValue: c.always_valid_p, decision: c.decision },
    }));
  }

  async outcomes(experimentId: number): Promise<VersionOutcomes[]> {
    const { rows } = await this.pool
      .query<{ version: number; episodes: number; successes: number; always_valid_p: number; decision: Decision }>(
        'SELECT version, episodes::float8, successes::float8, always_valid_p, decision FROM dust_counters WHERE experiment_id = $1',
        [experimentId],
      )
      .catch(asUnavailable);
    return rows.map((r) => ({
      version: r.version,
      outcomes: { successes: r.successes, trials: r.episodes },
      test: { pValue: r.always_valid_p, decision: r.decision },
    }));
  }

  async saveTests(experimentId: number, tests: ReadonlyMap<number, AlwaysValidState>): Promise<void> {
    const rows = [...tests].sort(([a], [b]) => a - b);
    // Replicas update tests concurrently: the p-value is a running minimum, and the first decision stays.
    await this.pool
      .query(
        `UPDATE dust_counters c SET always_valid_p = LEAST(c.always_valid_p, t.p),
           decision = CASE WHEN c.decision = 'keep collecting' THEN t.decision ELSE c.decision END
         FROM unnest($2::int[], $3::float8[], $4::text[]) AS t (version, p, decision)
         WHERE c.experiment_id = $1 AND c.version = t.version`,
        [experimentId, rows.map(([v]) => v), rows.map(([, t]) => t.pValue), rows.map(([, t]) => t.decision)],
      )
      .catch(asUnavailable);
  }

  /** Deletes request keys past the dedup window and episodes past their retention. */
  private async maintain(): Promise<void> {
    try {
      await this.pool.query('DELETE FROM dust_served_requests WHERE served_at < now() - make_interval(secs => $1)', [this.options.dedupWindowMs / 1000]);
      await this.pool.query('DELETE FROM dust_episodes WHERE started_at < now() - make_interval(secs => $1)', [DEFAULT_EPISODE_RETENTION_MS / 1000]);
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'could not delete expired experiment rows');
    }
  }

  /**
   * Writes every count queued now.
   * @throws UnavailableError when PostgreSQL cannot take them.
   */
  async flush(): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.kick();
    await this.writing;
    if (this.failing && (this.queue.length > 0 || this.shadows.length > 0)) {
      throw new UnavailableError(`the experiment store (PostgreSQL) cannot take counts now (${this.queue.length} requests waiting); retry`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch((err: unknown) => this.options.log.error({ err, lost: this.queue.length }, 'closing with experiment counts not written'));
    this.closed = true;
    clearInterval(this.maintenanceTimer);
    clearTimeout(this.retryTimer);
    for (const q of this.queue.splice(0)) q.release();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}
