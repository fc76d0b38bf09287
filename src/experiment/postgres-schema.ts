/**
 * The shared experiment store's tables in PostgreSQL, created by the first replica that connects (under an
 * advisory lock, so replicas starting together do not race). Every counter is a column that replicas only
 * ever add to (`x = x + excluded.x`), sketches are one row per bucket with an added count, robots and episodes
 * are rows inserted once (ON CONFLICT DO NOTHING), and a request's (robot_id, episode_id, request_id) is recorded so
 * that a retried request is counted once: nothing is read, changed in memory and written back.
 */
import type pg from 'pg';

export const SCHEMA_VERSION = 1;
/** Advisory-lock class of this store's locks (first key of pg_advisory_xact_lock(int, int)): "dust" in ASCII. */
export const LOCK_CLASS = 0x64757374;
/** The channel a change of a model's experiment is announced on (payload: the model name). */
export const CHANGE_CHANNEL = 'dust_experiments';

/** dust_sketch_bins.sketch: which of a version's sketches a bucket belongs to. */
export const SKETCH = { latency: 0, shadowLatency: 1 } as const;

const TABLES = `
CREATE TABLE IF NOT EXISTS dust_experiments (
  id bigserial PRIMARY KEY,
  model text NOT NULL,
  salt text NOT NULL,
  weights jsonb NOT NULL,                -- [{"version":1,"weight":0.9}, ...], normalized
  control_version integer NOT NULL,
  sticky_key text NOT NULL,
  shadow_version integer NOT NULL,
  shadow_fraction double precision NOT NULL,
  started_at bigint NOT NULL             -- epoch ms
);
CREATE INDEX IF NOT EXISTS dust_experiments_model ON dust_experiments (model, id);
CREATE TABLE IF NOT EXISTS dust_counters (
  experiment_id bigint NOT NULL REFERENCES dust_experiments (id),
  version integer NOT NULL,
  requests bigint NOT NULL DEFAULT 0,
  episodes_served bigint NOT NULL DEFAULT 0,
  episodes bigint NOT NULL DEFAULT 0,
  successes bigint NOT NULL DEFAULT 0,
  vision_steps_sum bigint NOT NULL DEFAULT 0,
  surprise_sum double precision NOT NULL DEFAULT 0,
  surprise_count bigint NOT NULL DEFAULT 0,
  shadow_requests bigint NOT NULL DEFAULT 0,
  shadow_shed bigint NOT NULL DEFAULT 0,
  shadow_divergence_sum double precision NOT NULL DEFAULT 0,
  always_valid_p double precision NOT NULL DEFAULT 1,
  decision text NOT NULL DEFAULT 'keep collecting',
  PRIMARY KEY (experiment_id, version)
);
CREATE TABLE IF NOT EXISTS dust_sketch_bins (
  experiment_id bigint NOT NULL,
  version integer NOT NULL,
  sketch smallint NOT NULL,              -- 0 latency, 1 shadow latency
  key integer NOT NULL,                  -- DDSketch bucket (latency-sketch.ts)
  count bigint NOT NULL,
  PRIMARY KEY (experiment_id, version, sketch, key)
);
CREATE TABLE IF NOT EXISTS dust_robots (
  experiment_id bigint NOT NULL,
  version integer NOT NULL,
  robot_id text NOT NULL,
  PRIMARY KEY (experiment_id, version, robot_id)
);
CREATE TABLE IF NOT EXISTS dust_episodes (
  robot_id text NOT NULL,
  episode_id text NOT NULL,
  model text NOT NULL,
  version integer NOT NULL,
  experiment_id bigint NOT NULL,         -- 0: its first request was pinned, outside experiments
  outcome boolean,                       -- NULL until reported
  started_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (robot_id, episode_id)
);
CREATE INDEX IF NOT EXISTS dust_episodes_started ON dust_episodes (started_at);
CREATE TABLE IF NOT EXISTS dust_served_requests (
  robot_id text NOT NULL,
  episode_id text NOT NULL,              -- a retry keeps its episode; a client's ids need only differ within one
  request_id text NOT NULL,
  served_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (robot_id, episode_id, request_id)
);
CREATE INDEX IF NOT EXISTS dust_served_requests_at ON dust_served_requests (served_at);
`;

/**
 * Creates the tables when missing and checks the schema version, in one transaction under the store's lock.
 * @throws Error when the database was set up by a newer dust-serve.
 */
export async function migrate(client: pg.ClientBase): Promise<void> {
  // The usual case, a replica joining a fleet whose tables exist: no DDL, which would take table locks that
  // deadlock with other replicas' writes.
  const current = await client.query<{ value: string }>("SELECT value FROM dust_meta WHERE key = 'schema_version'").catch(() => ({ rows: [] }));
  if (current.rows.length > 0 && Number(current.rows[0].value) === SCHEMA_VERSION) return;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS]);
    await client.query('CREATE TABLE IF NOT EXISTS dust_meta (key text PRIMARY KEY, value text NOT NULL)');
    const { rows } = await client.query<{ value: string }>("SELECT value FROM dust_meta WHERE key = 'schema_version'");
    const found = rows.length > 0 ? Number(rows[0].value) : 0;
    if (found > SCHEMA_VERSION) throw new Error(`it has schema version ${found}, newer than this server's ${SCHEMA_VERSION}`);
    // Another replica created the tables while this one waited for the lock.
    if (found < SCHEMA_VERSION) await client.query(TABLES);
    await client.query("INSERT INTO dust_meta VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(SCHEMA_VERSION)]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
