/**
 * Server options: one type, every field documented with its default, compiled once at start-up into a frozen
 * object. Command-line flags, DUST_* environment variables and a JSON config file all feed it
 * (precedence: flag > environment > file > default).
 */
import os from 'node:os';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors/index.js';

export type DeviceOption = 'cpu' | 'webgpu' | 'cuda' | 'auto';

export interface ServeOptions {
  /** Interface to listen on. @default "0.0.0.0" */
  host: string;
  /** gRPC port (0 picks a free one). @default 50051 */
  port: number;
  /** Root of the model repository (<name>/<version>/manifest.json). @default "models" */
  modelRepository: string;
  /** Model used when a request's model field is empty; empty = the first model name. @default "" */
  defaultModel: string;
  /**
   * Load model and package folders that are links out of the model repository (docs/model-package.md,
   * "Confinement"). Files a manifest names stay confined to their package folder either way. @default false
   */
  allowPackageSymlinks: boolean;
  /** Execution provider: cpu, webgpu, cuda, or auto (cuda, then webgpu, then cpu). @default "cpu" */
  device: DeviceOption;
  /**
   * ONNX Runtime intra-op threads per model version. @default CPU cores - 1 (at least 1): one core stays free
   * for the gRPC event loop and image decoding (on 2 cores, 1 thread served 158 req/s vs 147 with 2).
   */
  threads: number;
  /** Most requests in one VLM call. @default 32 */
  maxVlmBatch: number;
  /** Most rows in one denoiser call. @default 64 */
  maxDenoiseBatch: number;
  /** Longest a request waits for its VLM batch to fill while the model is idle, in ms. @default 2 */
  maxQueueDelayMs: number;
  /**
   * Requests per model version admitted but not yet in a VLM call (decoding or queued) beyond which new ones
   * get RESOURCE_EXHAUSTED, before their images are decoded. From half full on, each caller is held to a fair
   * share of it (engine/admission.ts). @default 256
   */
  maxQueue: number;
  /** Rows a model version can hold in its denoiser stage at once. @default 256 */
  maxActive: number;
  /** "step" (rows join and leave every denoiser step) or "request" (whole-request batches). @default "step" */
  batching: 'step' | 'request';
  /** Fraction of a latency budget that N_o is planned to fill. @default 0.8 */
  budgetSafety: number;
  /**
   * Standard deviations above the expected arrivals at which the budget planner plans each denoiser batch
   * (0 = plan with the mean load). @default 1
   */
  budgetLoadHeadroom: number;
  /**
   * Image-decoding threads (the decode pool: JPEG/PNG decoding, normalisation, initial noise), off the gRPC
   * event loop. 0 = the CPU cores left after the inference threads, at least 1. @default 0
   */
  decodeThreads: number;
  /**
   * Nice value the decode threads lower themselves to (Linux), so that on a saturated host the gRPC event
   * loop runs first when it wakes; 0 = normal priority. @default 19
   */
  decodeNiceness: number;
  /**
   * Nice value of every other thread but the gRPC event loop's (Linux): the inference threads (ONNX Runtime's
   * included) and the process's V8, libuv and experiment-writer helpers, so that health checks and request
   * I/O do not wait for a core behind bulk work; 0 = normal priority. Compared only within the server's
   * scheduling group (its container, or its session's autogroup). @default 19
   */
  workerNiceness: number;
  /** Largest accepted request message, in bytes; checked before the message is decoded. @default 16777216 */
  maxMessageBytes: number;
  /**
   * Longest request_id, robot_id and episode_id, in bytes (request_id: visible ASCII only, as it is echoed in
   * x-request-id). At most 1024. @default 128
   */
  maxIdBytes: number;
  /** Longest PredictRequest.instruction, in UTF-8 bytes. @default 4096 */
  maxInstructionBytes: number;
  /**
   * Streams one HTTP/2 connection may have open at once, advertised in SETTINGS_MAX_CONCURRENT_STREAMS; a
   * client that opens more has them refused by the HTTP/2 layer (a well-behaved one waits, or opens another
   * connection). 100 is the least RFC 9113 (section 6.5.2) recommends, so as not to limit parallelism; a proxy
   * that carries more of a fleet's streams opens another upstream connection when one is full (HAProxy and Envoy
   * do). Each stream a connection opens costs the event loop a call set-up in the tick that reads it, so this
   * also bounds how long one connection's burst keeps health checks on other connections waiting. @default 100
   */
  maxConcurrentStreams: number;
  /**
   * Calls open at once on the whole server, every method but grpc.health.v1's, counted from the call's headers
   * to its end or cancellation; a call beyond it gets RESOURCE_EXHAUSTED at once. Each open call holds memory
   * (docs/operations.md, "Open calls"), so this bounds what open calls can cost whatever the number of
   * connections. Health Check and List have a bound of the same size of their own, so probes still get
   * answers while other calls fill this one. @default 4096
   */
  maxOpenCalls: number;
  /** grpc.health.v1 Watch streams open at once on the whole server; beyond it RESOURCE_EXHAUSTED. @default 1000 */
  maxWatchStreams: number;
  /**
   * grpc.health.v1 Watch streams open at once on one connection (a load balancer watches a few services per
   * connection); beyond it RESOURCE_EXHAUSTED. @default 16
   */
  maxWatchStreamsPerConnection: number;
  /**
   * Calls per second the connections of one peer address may have refused before sending any request message
   * (a HEADERS-only call without a credential, over a bound), and at once; beyond it, the
   * connection refused is closed with GOAWAY ENHANCE_YOUR_CALM, so that one client cannot keep the event loop
   * refusing calls, whether or not it reconnects. 0 = no limit. @default 100
   */
  peerRefusalsPerSecond: number;
  /** Seconds given to in-flight requests on SIGTERM/SIGINT before the server force-closes. @default 10 */
  shutdownGraceSeconds: number;
  /**
   * Seconds after which the server asks a client to reconnect (HTTP/2 GOAWAY, ±10% jitter; calls in progress,
   * streams included, finish on the old connection). Clients that balance over a headless Service's DNS
   * re-resolve when they reconnect, so replicas added by scaling out get their share. 0 = never. @default 0
   */
  maxConnectionAgeSeconds: number;
  /** Run a few synthetic batches at load to check the graphs and prime the cost model. @default true */
  warmup: boolean;
  /** pino level: trace, debug, info, warn, error. @default "info" */
  logLevel: string;
  /** Human-readable logs (development only). @default false */
  logPretty: boolean;
  /** Port of the Prometheus endpoint `/metrics`; 0 turns metrics off. @default 9464 */
  metricsPort: number;
  /**
   * Interface the Prometheus endpoint listens on; empty = `host`. "127.0.0.1" keeps it to a scraper on the same
   * host (a sidecar) while gRPC listens on every interface. @default ""
   */
  metricsHost: string;
  /**
   * File holding the bearer token `/metrics` requires (`authorization: Bearer <token>`, Prometheus's
   * `authorization.credentials_file`); empty = no token. Read at start; at least 16 characters. @default ""
   */
  metricsTokenFile: string;
  /** PEM certificate chain for TLS on the gRPC port; empty = plaintext. Reloaded on change and on SIGHUP. @default "" */
  tlsCert: string;
  /** PEM private key of tlsCert. @default "" */
  tlsKey: string;
  /** PEM CA bundle for mutual TLS: clients must present a certificate that chains to it. @default "" */
  tlsClientCa: string;
  /**
   * Requests per second each caller may send (Predict and StreamPredict messages): per credential when the
   * call carries a known bearer token, per robot_id otherwise; 0 = no limit. @default 0
   */
  robotRateLimit: number;
  /** Requests a quiet robot may send at once; 0 = one second's worth of robotRateLimit (at least 1). @default 0 */
  robotRateBurst: number;
  /**
   * SQLite file holding experiments (splits, salts, counters, the episode ledger) across restarts; created
   * with its folder when missing; ":memory:" keeps them in memory only. @default "dust-data/experiments.sqlite"
   */
  experimentDb: string;
  /**
   * Where experiments live: "sqlite" (experimentDb, one process) or "postgres" (postgresUrl, shared by every
   * replica: one split, one set of counts for the fleet). @default "sqlite"
   */
  experimentStore: 'sqlite' | 'postgres';
  /**
   * PostgreSQL connection URL of the shared experiment store (postgres://user:password@host:5432/db); libpq's
   * PG* environment variables (PGPASSWORD, PGSSLMODE...) fill what it leaves out. A secret: pass it in the
   * environment (DUST_POSTGRES_URL), not a flag; logs show it without the password. @default ""
   */
  postgresUrl: string;
  /**
   * postgres store: longest a response waits for its request's count to be committed, in ms. A replica that dies
   * after answering has then counted it; 0 answers at once (counts of a crashed replica's last moments are lost).
   * @default 250
   */
  experimentCountWaitMs: number;
  /**
   * postgres store: seconds between re-reads of every model's current split, the bound on how long a replica
   * routes by a stale split when a change notification (LISTEN/NOTIFY, usually milliseconds) is lost. @default 5
   */
  experimentRefreshSeconds: number;
  /** Significance level of the experiments' always-valid decisions. @default 0.05 */
  experimentAlpha: number;
  /**
   * Standard deviation of the mixture SPRT's normal mixing distribution over the difference of success rates:
   * the effect size detected fastest (validity holds for any value). @default 0.1
   */
  experimentMixtureSd: number;
  /** Mirrored (shadow) requests in flight at once; more are shed. 0 turns shadow traffic off. @default 4 */
  maxShadowInflight: number;
  /**
   * JSON file of credentials, [{ "token", "role": "robot" | "admin", "name" }]: every RPC but health checks then
   * needs `authorization: Bearer <token>`. Reloaded on change and on SIGHUP. Empty: PolicyService is open and
   * AdminService answers only on loopback connections. @default ""
   */
  tokensFile: string;
}

export const DEFAULT_PORT = 50051;
export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_EXPERIMENT_DB = 'dust-data/experiments.sqlite';
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_ID_BYTES = 128;
/** Ids travel in metadata (x-request-id) and logs: bounded whatever the configuration. */
export const MAX_ID_BYTES_LIMIT = 1024;
export const DEFAULT_MAX_INSTRUCTION_BYTES = 4096;
/** The largest value HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS can carry (a 32-bit field). */
export const MAX_CONCURRENT_STREAMS_LIMIT = 2 ** 32 - 1;

export const DEFAULT_SERVE_OPTIONS: Readonly<ServeOptions> = Object.freeze({
  host: '0.0.0.0',
  port: DEFAULT_PORT,
  modelRepository: 'models',
  defaultModel: '',
  allowPackageSymlinks: false,
  device: 'cpu',
  threads: Math.max(1, os.availableParallelism() - 1),
  maxVlmBatch: 32,
  maxDenoiseBatch: 64,
  maxQueueDelayMs: 2,
  maxQueue: 256,
  maxActive: 256,
  batching: 'step',
  budgetSafety: 0.8,
  budgetLoadHeadroom: 1,
  decodeThreads: 0,
  decodeNiceness: 19,
  workerNiceness: 19,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxIdBytes: DEFAULT_MAX_ID_BYTES,
  maxInstructionBytes: DEFAULT_MAX_INSTRUCTION_BYTES,
  maxConcurrentStreams: 100,
  maxOpenCalls: 4096,
  maxWatchStreams: 1000,
  maxWatchStreamsPerConnection: 16,
  peerRefusalsPerSecond: 100,
  shutdownGraceSeconds: 10,
  maxConnectionAgeSeconds: 0,
  warmup: true,
  logLevel: 'info',
  logPretty: false,
  metricsPort: DEFAULT_METRICS_PORT,
  metricsHost: '',
  metricsTokenFile: '',
  tlsCert: '',
  tlsKey: '',
  tlsClientCa: '',
  robotRateLimit: 0,
  robotRateBurst: 0,
  experimentDb: DEFAULT_EXPERIMENT_DB,
  experimentStore: 'sqlite',
  postgresUrl: '',
  experimentCountWaitMs: 250,
  experimentRefreshSeconds: 5,
  experimentAlpha: 0.05,
  experimentMixtureSd: 0.1,
  maxShadowInflight: 4,
  tokensFile: '',
});

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

const schema = z
  .object({
    host: z.string().min(1),
    port: int(0).max(65535),
    modelRepository: z.string().min(1),
    defaultModel: z.string(),
    allowPackageSymlinks: bool,
    device: z.enum(['cpu', 'webgpu', 'cuda', 'auto']),
    threads: int(1),
    maxVlmBatch: int(1),
    maxDenoiseBatch: int(1),
    maxQueueDelayMs: z.coerce.number().min(0),
    maxQueue: int(1),
    maxActive: int(1),
    batching: z.enum(['step', 'request']),
    budgetSafety: z.coerce.number().gt(0).max(1),
    budgetLoadHeadroom: z.coerce.number().min(0).max(10),
    decodeThreads: int(0),
    decodeNiceness: int(0).max(19),
    workerNiceness: int(0).max(19),
    maxMessageBytes: int(1024),
    maxIdBytes: int(1).max(MAX_ID_BYTES_LIMIT),
    maxInstructionBytes: int(1),
    maxConcurrentStreams: int(1).max(MAX_CONCURRENT_STREAMS_LIMIT),
    maxOpenCalls: int(1),
    maxWatchStreams: int(0),
    maxWatchStreamsPerConnection: int(0),
    peerRefusalsPerSecond: int(0),
    shutdownGraceSeconds: z.coerce.number().min(0),
    maxConnectionAgeSeconds: z.coerce.number().min(0),
    warmup: bool,
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    logPretty: bool,
    metricsPort: int(0).max(65535),
    metricsHost: z.string(),
    metricsTokenFile: z.string(),
    tlsCert: z.string(),
    tlsKey: z.string(),
    tlsClientCa: z.string(),
    robotRateLimit: z.coerce.number().min(0),
    robotRateBurst: z.coerce.number().min(0),
    experimentDb: z.string().min(1),
    experimentStore: z.enum(['sqlite', 'postgres']),
    postgresUrl: z.string(),
    experimentCountWaitMs: z.coerce.number().min(0),
    experimentRefreshSeconds: z.coerce.number().min(0),
    experimentAlpha: z.coerce.number().gt(0).lt(1),
    experimentMixtureSd: z.coerce.number().gt(0).max(1),
    maxShadowInflight: int(0),
    tokensFile: z.string(),
  })
  .strict();

export type ServeOptionsInput = { [K in keyof ServeOptions]?: ServeOptions[K] | string };

/** Validates and freezes; every problem is reported with the option's name. */
export function compileServeOptions(...layers: ServeOptionsInput[]): Readonly<ServeOptions> {
  const merged: Record<string, unknown> = { ...DEFAULT_SERVE_OPTIONS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) merged[k] = v;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new InvalidArgumentError(`invalid configuration: ${issues}`);
  }
  if (parsed.data.maxActive < parsed.data.maxDenoiseBatch) {
    throw new InvalidArgumentError('invalid configuration: maxActive must be at least maxDenoiseBatch');
  }
  if (!parsed.data.tlsCert !== !parsed.data.tlsKey) {
    throw new InvalidArgumentError('invalid configuration: tlsCert and tlsKey go together (the certificate chain and its private key)');
  }
  if (parsed.data.tlsClientCa && !parsed.data.tlsCert) {
    throw new InvalidArgumentError('invalid configuration: tlsClientCa (mutual TLS) needs tlsCert and tlsKey as well');
  }
  if (parsed.data.experimentStore === 'postgres' && !parsed.data.postgresUrl) {
    throw new InvalidArgumentError('invalid configuration: experimentStore "postgres" needs postgresUrl (DUST_POSTGRES_URL=postgres://user@host:5432/db, the password in it or in PGPASSWORD)');
  }
  if (parsed.data.metricsPort !== 0 && parsed.data.metricsPort === parsed.data.port) {
    throw new InvalidArgumentError('invalid configuration: metricsPort must differ from the gRPC port');
  }
  return Object.freeze(parsed.data as ServeOptions);
}

/** Decode threads to start: the option, or the cores the inference threads leave (at least 1). */
export function decodeThreadCount(options: Pick<ServeOptions, 'decodeThreads' | 'threads'>, cores = os.availableParallelism()): number {
  return options.decodeThreads > 0 ? options.decodeThreads : Math.max(1, cores - options.threads);
}

/** DUST_<FLAG_IN_CAPS> for every option (docs/operations.md, "Configuration"), e.g. DUST_MODEL_REPOSITORY. */
export function envName(option: keyof ServeOptions): string {
  return `DUST_${option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv): ServeOptionsInput {
  const out: ServeOptionsInput = {};
  for (const key of Object.keys(DEFAULT_SERVE_OPTIONS) as Array<keyof ServeOptions>) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') (out as Record<string, string>)[key] = v;
  }
  return out;
}

/** A config file is JSON with the same keys as ServeOptions. */
export function optionsFromFile(json: unknown, file: string): ServeOptionsInput {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError(`config file ${file} must hold a JSON object of options`);
  }
  const unknown = Object.keys(json).filter((k) => !(k in DEFAULT_SERVE_OPTIONS));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`config file ${file}: unknown option(s) ${unknown.join(', ')}; known: ${Object.keys(DEFAULT_SERVE_OPTIONS).join(', ')}`);
  }
  return json as ServeOptionsInput;
}
