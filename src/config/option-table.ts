/**
 * The server's options, one row each: the schema that validates it, its default, the flag's argument name, the
 * CLI help, the docs/operations.md "Configuration" text, and the components it configures. Everything else is
 * derived from this table (options.ts: the ServeOptions type, the defaults, the environment variables and the
 * config file's keys; cli/serve.ts: the flags; option-docs.ts: the docs table; option-slices.ts: what each
 * component is handed), so adding an option is one row here plus the code that uses it.
 *
 * Names follow one rule so that they cannot drift apart: the flag is `--<key-in-kebab-case>` and the environment
 * variable `DUST_<KEY_IN_CAPS>` (option-names.ts).
 */
import os from 'node:os';
import { z } from 'zod';

/** Ids travel in metadata (x-request-id) and logs: bounded whatever the configuration. */
export const MAX_ID_BYTES_LIMIT = 1024;
/** The largest value HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS can carry (a 32-bit field). */
export const MAX_CONCURRENT_STREAMS_LIMIT = 2 ** 32 - 1;

/**
 * The parts of the server an option configures; each takes the slice of the options that names it
 * (option-slices.ts) and has no defaults of its own.
 */
export const COMPONENTS = [
  'listen',
  'registry',
  'device',
  'runtime',
  'scheduler',
  'tokenizer',
  'decodePool',
  'requestLimits',
  'grpcServer',
  'openCalls',
  'connectionGuard',
  'shutdown',
  'logger',
  'metrics',
  'tls',
  'rateLimit',
  'experimentStore',
  'experimentBook',
  'shadowMirror',
  'auth',
  'openpi',
] as const;
export type Component = (typeof COMPONENTS)[number];

export interface OptionSpec<S extends z.ZodTypeAny = z.ZodTypeAny, C extends readonly Component[] = readonly Component[]> {
  /** Validates the value from any source; flag and environment values arrive as strings, so numbers coerce. */
  readonly schema: S;
  readonly default: z.output<S>;
  /** The docs table's default column when the value alone does not say it (a computed or "empty = ..." one). */
  readonly defaultDoc?: string;
  /** The flag's argument as `--help` shows it, e.g. `<n>`. */
  readonly arg: string;
  /** One line for `dust-serve serve --help`. */
  readonly help: string;
  /** The docs table's meaning column (Markdown). */
  readonly doc: string;
  readonly appliesTo: C;
}

/** Checks a row's default against its schema's type and keeps its components as literal types for the slices. */
function option<S extends z.ZodTypeAny, const C extends readonly Component[]>(spec: OptionSpec<S, C>): OptionSpec<S, C> {
  return spec;
}

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

export const OPTION_TABLE = {
  /** Interface to listen on. */
  host: option({
    schema: z.string().min(1),
    default: '0.0.0.0',
    arg: '<host>',
    help: 'interface to listen on',
    doc: 'interface to listen on (gRPC, the openpi port, and metrics unless `metricsHost` is set)',
    appliesTo: ['listen', 'metrics', 'openpi'],
  }),
  /** gRPC port (0 picks a free one). */
  port: option({
    schema: int(0).max(65535),
    default: 50051,
    arg: '<port>',
    help: 'gRPC port',
    doc: 'gRPC port (0 = a free one)',
    appliesTo: ['listen'],
  }),
  /** Root of the model repository (<name>/<version>/manifest.json). */
  modelRepository: option({
    schema: z.string().min(1),
    default: 'models',
    arg: '<dir>',
    help: 'model repository root (<name>/<version>/manifest.json)',
    doc: 'repository root, `<name>/<version>/manifest.json`',
    appliesTo: ['registry'],
  }),
  /** Model used when a request's model field is empty; empty = the first model name. */
  defaultModel: option({
    schema: z.string(),
    default: '',
    defaultDoc: 'first model name',
    arg: '<name>',
    help: 'model for requests with an empty model field',
    doc: 'model for requests with an empty `model` field',
    appliesTo: ['registry'],
  }),
  /**
   * Load model and package folders that are links out of the model repository (docs/model-package.md, "Confinement").
   * Files a manifest names stay confined to their package folder either way.
   */
  allowPackageSymlinks: option({
    schema: bool,
    default: false,
    arg: '<bool>',
    help: 'load model and package folders that link out of the model repository',
    doc: 'load model and package folders that are links out of the repository (files a manifest names stay confined to their package folder either way; [model-package.md](model-package.md#confinement))',
    appliesTo: ['registry'],
  }),
  /** Execution provider: cpu, webgpu, cuda, or auto (cuda, then webgpu, then cpu). */
  device: option({
    schema: z.enum(['cpu', 'webgpu', 'cuda', 'auto']),
    default: 'cpu',
    arg: '<device>',
    help: 'cpu | webgpu | cuda | auto',
    doc: '`cpu`, `cuda`, `webgpu`, or `auto` (cuda, then webgpu, then cpu; the log says why); an explicit GPU device that cannot run refuses to start, it never falls back to the CPU',
    appliesTo: ['device'],
  }),
  /**
   * What runs the graphs: the native executor (ONNX Runtime's C API through the addon `npm run build:native` builds:
   * the arena stays on the device, CUDA graphs per batch-size bucket) or onnxruntime-node's. auto: native where the
   * addon loads, else onnxruntime-node on cpu and webgpu. cuda runs on the native executor only.
   */
  executor: option({
    schema: z.enum(['auto', 'native', 'onnxruntime-node']),
    default: 'auto',
    arg: '<executor>',
    help: 'auto | native | onnxruntime-node',
    doc: '`native` (the addon `npm run build:native` builds: the arena stays on the device, CUDA graphs), `onnxruntime-node`, or `auto` (native where the addon loads, else onnxruntime-node; the log says which); `--device cuda` needs `native`, `webgpu` runs on `onnxruntime-node`; an explicit choice that cannot run refuses to start',
    appliesTo: ['device'],
  }),
  /**
   * On CUDA, the native executor captures the denoiser step as a CUDA graph per batch-size bucket at load, checks each
   * replay against a regular run, and replays them (docs/architecture.md, "Executors"); off runs every step node by
   * node. Packages exported before the toolchain avoided host-staged kernels replay stale pointers (wrong values, or
   * an illegal memory access: BENCHMARKS.md, "Second H100 run"); a package records what would break a replay
   * (architecture.cuda_graph_hazards), and no package that records a hazard is captured. `auto` by default: captured
   * where the package records none (the third H100 run: every replay exact, parity with the CPU unchanged).
   */
  cudaGraphs: option({
    schema: z.union([z.literal('auto'), bool]),
    default: 'auto',
    arg: '<mode>',
    help: 'capture the denoiser step as CUDA graphs (native executor on cuda): auto | true | false',
    doc: 'on `cuda` with the native executor, capture the denoiser step as one CUDA graph per batch-size bucket at load, check each replay against a regular run (graphs off with a warning when one differs) and replay them (off: node by node). `auto` captures a package whose manifest records no CUDA-graph hazard (`architecture.cuda_graph_hazards: []`, written by the current toolchain), `true` also tries a package without that record; a package that records hazards runs node by node either way (docs/gpu.md)',
    appliesTo: ['runtime'],
  }),
  /**
   * ONNX Runtime intra-op threads per model version. The default leaves one core free for the gRPC event loop
   * and image decoding (BENCHMARKS.md compares thread counts).
   */
  threads: option({
    schema: int(1),
    default: Math.max(1, os.availableParallelism() - 1),
    defaultDoc: 'CPU cores - 1 (at least 1)',
    arg: '<n>',
    help: 'ONNX Runtime intra-op threads per model version',
    doc: 'ONNX Runtime intra-op threads per model version',
    appliesTo: ['runtime', 'decodePool'],
  }),
  /** Most requests in one VLM call. */
  maxVlmBatch: option({
    schema: int(1),
    default: 32,
    arg: '<n>',
    help: 'most requests in one VLM call',
    doc: 'most requests in one VLM call',
    appliesTo: ['scheduler'],
  }),
  /** Most rows in one denoiser call. */
  maxDenoiseBatch: option({
    schema: int(1),
    default: 64,
    arg: '<n>',
    help: 'most rows in one denoiser call',
    doc: 'most rows in one denoiser call',
    appliesTo: ['scheduler'],
  }),
  /**
   * Longest a request waits for its VLM batch to fill while the model is idle, in ms; it does not wait when no other
   * admitted request is still decoding (engine/scheduler.ts submit).
   */
  maxQueueDelayMs: option({
    schema: z.coerce.number().min(0),
    default: 2,
    arg: '<ms>',
    help: 'longest wait for a VLM batch to fill',
    doc: 'longest wait for a VLM batch to fill while the model is idle and other requests are still decoding',
    appliesTo: ['scheduler'],
  }),
  /**
   * Requests per model version admitted but not yet in a VLM call (decoding or queued) beyond which new ones get
   * RESOURCE_EXHAUSTED, before their images are decoded. From half full on, each caller is held to a fair share of it
   * (engine/admission.ts).
   */
  maxQueue: option({
    schema: int(1),
    default: 256,
    arg: '<n>',
    help: 'waiting requests per model before RESOURCE_EXHAUSTED',
    doc: 'requests per model version admitted but not yet in a VLM call; beyond it `RESOURCE_EXHAUSTED`, before decoding; from half full on, each caller is held to a [fair share](#rate-limit)',
    appliesTo: ['scheduler'],
  }),
  /** Rows a model version can hold in its denoiser stage at once. */
  maxActive: option({
    schema: int(1),
    default: 256,
    arg: '<n>',
    help: 'rows per model in the denoiser stage',
    doc: 'rows per model version in the denoiser stage (at least `maxDenoiseBatch`)',
    appliesTo: ['runtime'],
  }),
  /** "step" (rows join and leave every denoiser step) or "request" (whole-request batches). */
  batching: option({
    schema: z.enum(['step', 'request']),
    default: 'step',
    arg: '<mode>',
    help: 'step (join/leave every step) | request (whole-request batches)',
    doc: '`step` (rows join and leave every denoiser step) or `request` (whole-request batches, for comparison)',
    appliesTo: ['scheduler'],
  }),
  /** Fraction of a latency budget that N_o is planned to fill. */
  budgetSafety: option({
    schema: z.coerce.number().gt(0).max(1),
    default: 0.8,
    arg: '<fraction>',
    help: 'fraction of a latency budget N_o is planned to fill',
    doc: 'fraction of a latency budget that N_o is planned to fill',
    appliesTo: ['scheduler'],
  }),
  /**
   * Standard deviations above the expected arrivals at which the budget planner plans each denoiser batch (0 = plan
   * with the mean load).
   */
  budgetLoadHeadroom: option({
    schema: z.coerce.number().min(0).max(10),
    default: 1,
    arg: '<sd>',
    help: 'standard deviations of extra arrivals the budget planner plans for',
    doc: 'standard deviations of extra arrivals the budget planner plans each batch for (0 = the mean load)',
    appliesTo: ['scheduler'],
  }),
  /**
   * Image-decoding threads (the decode pool: JPEG/PNG decoding, normalisation, initial noise), off the gRPC event
   * loop. 0 = the CPU cores left after the inference threads, at least 1.
   */
  decodeThreads: option({
    schema: int(0),
    default: 0,
    arg: '<n>',
    help: 'image-decoding threads; 0 = cores left after --threads',
    doc: 'image-decoding threads off the event loop; 0 = the cores left after `threads`, at least 1',
    appliesTo: ['decodePool'],
  }),
  /**
   * Nice value the decode threads lower themselves to (Linux), so that on a saturated host the gRPC event loop runs
   * first when it wakes; 0 = normal priority.
   */
  decodeNiceness: option({
    schema: int(0).max(19),
    default: 19,
    arg: '<n>',
    help: 'nice value of the decode threads (Linux); 0 = normal priority',
    doc: 'nice value of the decode threads (Linux), so the event loop wins a contended core; 0 = normal',
    appliesTo: ['decodePool'],
  }),
  /**
   * Nice value of every other thread but the gRPC event loop's (Linux): the inference threads (ONNX Runtime's
   * included) and the process's V8, libuv and experiment-writer helpers, so that health checks and request I/O do not
   * wait for a core behind bulk work; 0 = normal priority. Compared only within the server's scheduling group (its
   * container, or its session's autogroup).
   */
  workerNiceness: option({
    schema: int(0).max(19),
    default: 19,
    arg: '<n>',
    help: 'nice value of the inference and helper threads, all but the event loop (Linux); 0 = normal priority',
    doc: "nice value of every thread but the gRPC event loop's: inference (ONNX Runtime's threads inherit it), V8/libuv helpers, experiment writer (Linux); compared only within the server's container or session; its cost to inference on a saturated host is in BENCHMARKS.md; 0 = normal",
    appliesTo: ['runtime'],
  }),
  /** Largest accepted request message, in bytes; checked before the message is decoded. */
  maxMessageBytes: option({
    schema: int(1024),
    default: 16 * 1024 * 1024,
    arg: '<n>',
    help: 'largest accepted request',
    doc: 'largest accepted request, checked before decoding',
    appliesTo: ['requestLimits', 'grpcServer'],
  }),
  /**
   * Longest request_id, robot_id and episode_id, in bytes (request_id: visible ASCII only, as it is echoed in
   * x-request-id). At most 1024.
   */
  maxIdBytes: option({
    schema: int(1).max(MAX_ID_BYTES_LIMIT),
    default: 128,
    arg: '<n>',
    help: 'longest request_id, robot_id, episode_id',
    doc: 'longest `request_id`, `robot_id`, `episode_id` (at most 1024)',
    appliesTo: ['requestLimits'],
  }),
  /** Longest PredictRequest.instruction, in UTF-8 bytes. */
  maxInstructionBytes: option({
    schema: int(1),
    default: 4096,
    arg: '<n>',
    help: 'longest instruction',
    doc: 'longest `instruction`, in UTF-8 bytes',
    appliesTo: ['requestLimits', 'tokenizer'],
  }),
  /**
   * Streams one HTTP/2 connection may have open at once, advertised in SETTINGS_MAX_CONCURRENT_STREAMS; a client that
   * opens more has them refused by the HTTP/2 layer (a well-behaved one waits, or opens another connection). 100 is
   * the least RFC 9113 (section 6.5.2) recommends, so as not to limit parallelism; a proxy that carries more of a
   * fleet's streams opens another upstream connection when one is full (HAProxy and Envoy do). Each stream a
   * connection opens costs the event loop a call set-up in the tick that reads it, so this also bounds how long one
   * connection's burst keeps health checks on other connections waiting.
   */
  maxConcurrentStreams: option({
    schema: int(1).max(MAX_CONCURRENT_STREAMS_LIMIT),
    default: 100,
    arg: '<n>',
    help: 'streams one HTTP/2 connection may have open (advertised in SETTINGS)',
    doc: 'streams one HTTP/2 connection may have open, advertised in SETTINGS ([Open calls](#open-calls))',
    appliesTo: ['grpcServer'],
  }),
  /**
   * Calls open at once on the whole server, every method but grpc.health.v1's, counted from the call's headers to its
   * end or cancellation; a call beyond it gets RESOURCE_EXHAUSTED at once. Each open call holds memory
   * (docs/operations.md, "Open calls"), so this bounds what open calls can cost whatever the number of connections.
   * Health Check and List have a bound of the same size of their own, so probes still get answers while other calls
   * fill this one.
   */
  maxOpenCalls: option({
    schema: int(1),
    default: 4096,
    arg: '<n>',
    help: 'calls open on the whole server (all but health) before RESOURCE_EXHAUSTED',
    doc: 'calls open on the whole server, every method but `grpc.health.v1`; beyond it `RESOURCE_EXHAUSTED` at once. Health Check and List have a bound of the same size of their own',
    appliesTo: ['openCalls'],
  }),
  /** grpc.health.v1 Watch streams open at once on the whole server; beyond it RESOURCE_EXHAUSTED. */
  maxWatchStreams: option({
    schema: int(0),
    default: 1000,
    arg: '<n>',
    help: 'health Watch streams open on the whole server (0 = Watch refused)',
    doc: 'health Watch streams open on the whole server; beyond it `RESOURCE_EXHAUSTED` (0 = Watch refused)',
    appliesTo: ['openCalls'],
  }),
  /**
   * grpc.health.v1 Watch streams open at once on one connection (a load balancer watches a few services per
   * connection); beyond it RESOURCE_EXHAUSTED.
   */
  maxWatchStreamsPerConnection: option({
    schema: int(0),
    default: 16,
    arg: '<n>',
    help: 'health Watch streams open on one connection (0 = Watch refused)',
    doc: 'health Watch streams open on one connection; beyond it `RESOURCE_EXHAUSTED` (0 = Watch refused)',
    appliesTo: ['openCalls'],
  }),
  /**
   * Calls per second the connections of one peer address may have refused before sending any request message (a
   * HEADERS-only call without a credential, over a bound), and at once; beyond it, the connection
   * refused is closed with GOAWAY ENHANCE_YOUR_CALM, so that one client cannot keep the event loop refusing calls,
   * whether or not it reconnects. 0 = no limit.
   */
  peerRefusalsPerSecond: option({
    schema: int(0),
    default: 100,
    arg: '<n>',
    help: 'calls one peer address may have refused before sending a message, per second and at once; beyond it its refused connections are closed (0 = no limit)',
    doc: 'calls the connections of one peer address may have refused before sending any request message (no credential, over a bound), per second and at once (the burst); beyond it the connection refused is closed with GOAWAY `ENHANCE_YOUR_CALM` (0 = no limit)',
    appliesTo: ['connectionGuard'],
  }),
  /** Seconds given to in-flight requests on SIGTERM/SIGINT before the server force-closes. */
  shutdownGraceSeconds: option({
    schema: z.coerce.number().min(0),
    default: 10,
    arg: '<s>',
    help: 'time in-flight requests get on SIGTERM',
    doc: 'time in-flight work gets on SIGTERM/SIGINT',
    appliesTo: ['shutdown', 'runtime', 'registry'],
  }),
  /**
   * Seconds after which the server asks a client to reconnect (HTTP/2 GOAWAY, ±10% jitter; calls in progress, streams
   * included, finish on the old connection). Clients that balance over a headless Service's DNS re-resolve when they
   * reconnect, so replicas added by scaling out get their share. 0 = never.
   */
  maxConnectionAgeSeconds: option({
    schema: z.coerce.number().min(0),
    default: 0,
    defaultDoc: '`0` (never)',
    arg: '<s>',
    help: 'ask clients to reconnect (and re-resolve DNS) after this long; 0 = never',
    doc: 'ask clients to reconnect after this long (HTTP/2 GOAWAY, +-10% jitter; calls in progress finish), so DNS-balancing clients find new replicas',
    appliesTo: ['grpcServer'],
  }),
  /** Run a few synthetic batches at load to check the graphs and prime the cost model. */
  warmup: option({
    schema: bool,
    default: true,
    arg: '<bool>',
    help: 'run synthetic batches at load',
    doc: 'synthetic batches at load: checks the graphs, primes the cost model',
    appliesTo: ['runtime'],
  }),
  /** pino level: trace, debug, info, warn, error. */
  logLevel: option({
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    default: 'info',
    arg: '<level>',
    help: 'trace | debug | info | warn | error',
    doc: '`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`',
    appliesTo: ['logger'],
  }),
  /** Human-readable logs (development only). */
  logPretty: option({
    schema: bool,
    default: false,
    arg: '<bool>',
    help: 'human-readable logs (development)',
    doc: 'human-readable logs (development; needs the dev dependencies)',
    appliesTo: ['logger'],
  }),
  /** Port of the Prometheus endpoint `/metrics`; 0 turns metrics off. */
  metricsPort: option({
    schema: int(0).max(65535),
    default: 9464,
    arg: '<port>',
    help: 'Prometheus /metrics port; 0 = off',
    doc: 'Prometheus `/metrics`; 0 = metrics off',
    appliesTo: ['metrics'],
  }),
  /**
   * Interface the Prometheus endpoint listens on; empty = `host`. "127.0.0.1" keeps it to a scraper on the same host
   * (a sidecar) while gRPC listens on every interface.
   */
  metricsHost: option({
    schema: z.string(),
    default: '',
    defaultDoc: 'empty (= `host`)',
    arg: '<host>',
    help: 'interface of the /metrics port; empty = --host',
    doc: 'interface of the metrics port, e.g. `127.0.0.1` for a scraper on the same host while gRPC listens everywhere',
    appliesTo: ['metrics'],
  }),
  /**
   * File holding the bearer token `/metrics` requires (`authorization: Bearer <token>`, Prometheus's
   * `authorization.credentials_file`); empty = no token. Read at start; at least 16 characters.
   */
  metricsTokenFile: option({
    schema: z.string(),
    default: '',
    defaultDoc: 'empty (no token)',
    arg: '<file>',
    help: 'file with the bearer token /metrics requires; empty = none',
    doc: 'file holding the bearer token `/metrics` requires (Prometheus `authorization.credentials_file`); read at start, at least 16 characters',
    appliesTo: ['metrics'],
  }),
  /** PEM certificate chain for TLS on the gRPC port; empty = plaintext. Reloaded on change and on SIGHUP. */
  tlsCert: option({
    schema: z.string(),
    default: '',
    defaultDoc: 'empty (plaintext)',
    arg: '<file>',
    help: 'PEM certificate chain: TLS on the gRPC port (reloaded on change and SIGHUP)',
    doc: 'PEM certificate chain for TLS on the gRPC port',
    appliesTo: ['tls'],
  }),
  /** PEM private key of tlsCert. */
  tlsKey: option({
    schema: z.string(),
    default: '',
    arg: '<file>',
    help: 'PEM private key of --tls-cert',
    doc: 'PEM private key of `tlsCert` (the two go together)',
    appliesTo: ['tls'],
  }),
  /** PEM CA bundle for mutual TLS: clients must present a certificate that chains to it. */
  tlsClientCa: option({
    schema: z.string(),
    default: '',
    arg: '<file>',
    help: 'PEM CA bundle: mutual TLS, clients need a certificate from it',
    doc: 'PEM CA bundle: mutual TLS (needs `tlsCert`)',
    appliesTo: ['tls'],
  }),
  /**
   * Requests per second each caller may send (Predict and StreamPredict messages): per credential when the call
   * carries a known bearer token, per robot_id otherwise; 0 = no limit.
   */
  robotRateLimit: option({
    schema: z.coerce.number().min(0),
    default: 0,
    defaultDoc: '`0` (off)',
    arg: '<per-second>',
    help: 'requests/s per caller (its credential, else its robot_id); 0 = no limit',
    doc: 'requests per second per caller (its credential, else its `robot_id`)',
    appliesTo: ['rateLimit'],
  }),
  /** Requests a quiet robot may send at once; 0 = one second's worth of robotRateLimit (at least 1). */
  robotRateBurst: option({
    schema: z.coerce.number().min(0),
    default: 0,
    arg: '<n>',
    help: 'burst per caller; 0 = one second of --robot-rate-limit',
    doc: 'requests a quiet caller may send at once; 0 = one second of `robotRateLimit` (at least 1)',
    appliesTo: ['rateLimit'],
  }),
  /**
   * SQLite file holding experiments (splits, salts, counters, the episode ledger) across restarts; created with its
   * folder when missing; ":memory:" keeps them in memory only.
   */
  experimentDb: option({
    schema: z.string().min(1),
    default: 'dust-data/experiments.sqlite',
    arg: '<file>',
    help: 'SQLite file for experiments (":memory:" = not persisted)',
    doc: 'SQLite file of the experiments; `:memory:` = not persisted',
    appliesTo: ['experimentStore'],
  }),
  /**
   * Width of one point of an experiment's history (the report's time axis): a version's running totals are kept
   * once per window in which they changed, so the history grows by at most one row per version per window.
   */
  experimentHistorySeconds: option({
    schema: z.coerce.number().gt(0),
    default: 60,
    arg: '<s>',
    help: "seconds per point of an experiment's history (experiment report)",
    doc: "seconds per point of an experiment's history, read by `dust-serve experiment report`; one row per version per window in which its counts changed",
    appliesTo: ['experimentStore'],
  }),
  /**
   * Where experiments live: "sqlite" (experimentDb, one process) or "postgres" (postgresUrl, shared by every replica:
   * one split, one set of counts for the fleet).
   */
  experimentStore: option({
    schema: z.enum(['sqlite', 'postgres']),
    default: 'sqlite',
    arg: '<kind>',
    help: 'sqlite (one process, --experiment-db) | postgres (shared by replicas, --postgres-url)',
    doc: '`sqlite` (one process, `experimentDb`) or `postgres` (shared by replicas, `postgresUrl`; see [Many replicas](deployment.md#many-replicas))',
    appliesTo: ['experimentStore', 'experimentBook'],
  }),
  /**
   * PostgreSQL connection URL of the shared experiment store (postgres://user:password@host:5432/db); libpq's PG*
   * environment variables (PGPASSWORD, PGSSLMODE...) fill what it leaves out. A secret: pass it in the environment
   * (DUST_POSTGRES_URL), not a flag; logs show it without the password.
   */
  postgresUrl: option({
    schema: z.string(),
    default: '',
    arg: '<url>',
    help: 'PostgreSQL URL of the shared experiment store (a secret: prefer the environment variable)',
    doc: "`postgres://user@host:5432/db` of the shared store; libpq's `PG*` variables (`PGPASSWORD`, `PGSSLMODE`...) fill in the rest. A secret: set it in the environment; logs show it without the password",
    appliesTo: ['experimentStore'],
  }),
  /**
   * postgres store: longest a response waits for its request's count to be committed, in ms. A replica that dies
   * after answering has then counted it; 0 answers at once (counts of a crashed replica's last moments are lost).
   */
  experimentCountWaitMs: option({
    schema: z.coerce.number().min(0),
    default: 250,
    arg: '<ms>',
    help: 'postgres: longest a response waits for its count to be committed',
    doc: 'postgres: longest a response waits for its count to be committed (0 = do not wait)',
    appliesTo: ['experimentStore'],
  }),
  /**
   * postgres store: seconds between re-reads of every model's current split, the bound on how long a replica routes
   * by a stale split when a change notification (LISTEN/NOTIFY, usually milliseconds) is lost.
   */
  experimentRefreshSeconds: option({
    schema: z.coerce.number().min(0),
    default: 5,
    arg: '<s>',
    help: 'postgres: re-read splits this often in case a change notification is lost',
    doc: 'postgres: every replica re-reads the splits this often, the bound when a change notification is lost',
    appliesTo: ['experimentBook'],
  }),
  /** Significance level of the experiments' always-valid decisions. */
  experimentAlpha: option({
    schema: z.coerce.number().gt(0).lt(1),
    default: 0.05,
    arg: '<alpha>',
    help: 'significance level of experiment decisions',
    doc: 'significance level of the always-valid decisions',
    appliesTo: ['experimentBook'],
  }),
  /**
   * Standard deviation of the mixture SPRT's normal mixing distribution over the difference of success rates: the
   * effect size detected fastest (validity holds for any value). 0.1 is ten percentage points, the size of effect
   * worth a checkpoint rollout.
   */
  experimentMixtureSd: option({
    schema: z.coerce.number().gt(0).max(1),
    default: 0.1,
    arg: '<sd>',
    help: 'mixture SPRT: sd of the mixing distribution of the success-rate difference',
    doc: 'mixture SPRT: sd of the normal mixing distribution over the difference of success rates',
    appliesTo: ['experimentBook'],
  }),
  /** Mirrored (shadow) requests in flight at once; more are shed. 0 turns shadow traffic off. */
  maxShadowInflight: option({
    schema: int(0),
    default: 4,
    arg: '<n>',
    help: 'mirrored shadow requests in flight at once (0 = no shadow traffic)',
    doc: 'mirrored shadow requests running at once; more are shed (0 = no shadow traffic)',
    appliesTo: ['shadowMirror'],
  }),
  /**
   * JSON file of credentials, [{ "token", "role": "robot" | "admin", "name" }]: every RPC but health checks then
   * needs `authorization: Bearer <token>`. Reloaded on change and on SIGHUP. Empty: PolicyService is open and
   * AdminService answers only on loopback connections.
   */
  tokensFile: option({
    schema: z.string(),
    default: '',
    arg: '<file>',
    help: 'JSON credentials [{token, role: robot|admin, name}]; turns authentication on (reloaded on change and SIGHUP)',
    doc: 'JSON credentials; turns authentication on ([below](#credentials-and-roles))',
    appliesTo: ['auth'],
  }),
  /**
   * Port of the openpi-compatible WebSocket door (docs/openpi.md): openpi's clients send observation dicts and get
   * action chunks, on the same engine, experiments and credentials as gRPC. "off" = no door; 0 = a free port.
   */
  openpiPort: option({
    schema: z.union([z.literal('off'), int(0).max(65535)]),
    default: 'off',
    defaultDoc: '`off`',
    arg: '<port>',
    help: 'openpi-compatible WebSocket port (off = none, 0 = a free one)',
    doc: "openpi-compatible WebSocket port for openpi's clients ([openpi.md](openpi.md)); `off` = none, 0 = a free one",
    appliesTo: ['openpi'],
  }),
  /**
   * Which keys of an openpi observation hold the cameras, the state and the prompt: a preset with openpi's key names
   * ("libero", "droid"), or a JSON file with a mapping per embodiment (docs/openpi.md, "Key mapping").
   */
  openpiMapping: option({
    schema: z.string().min(1),
    default: 'libero',
    arg: '<mapping>',
    help: 'openpi observation keys: libero | droid | a JSON mapping file',
    doc: "openpi observation keys of the cameras, state and prompt: `libero` or `droid` (openpi's key names) or a JSON file per embodiment ([openpi.md](openpi.md#key-mapping))",
    appliesTo: ['openpi'],
  }),
  /** Seconds an openpi connection may stay without a frame before the server closes it. */
  openpiIdleSeconds: option({
    schema: z.coerce.number().gt(0),
    default: 300,
    arg: '<s>',
    help: 'close an openpi connection after this long without a frame',
    doc: 'an openpi connection without a frame for this long is closed (raise it for evaluations that pause between episodes)',
    appliesTo: ['openpi'],
  }),
  /** openpi WebSocket connections open at once; beyond it the upgrade is refused with HTTP 503. */
  openpiMaxConnections: option({
    schema: int(1),
    default: 256,
    arg: '<n>',
    help: 'openpi connections open at once (beyond: HTTP 503)',
    doc: 'openpi WebSocket connections open at once; beyond it the upgrade gets HTTP 503',
    appliesTo: ['openpi'],
  }),
} as const;

export type OptionKey = keyof typeof OPTION_TABLE;
export const OPTION_KEYS = Object.keys(OPTION_TABLE) as OptionKey[];
