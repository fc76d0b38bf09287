/**
 * The composition root of a serving process: options -> telemetry (metrics endpoint, tracing handed in) ->
 * registry (with the engine's runtime factory) and the experiment book (with its SQLite or PostgreSQL store) -> the Predict
 * orchestrator (router, shadow mirror) -> gRPC server with PolicyService, AdminService, health, reflection and the interceptors
 * (credentials among them), on TLS credentials when configured. Shutdown follows STYLE.md: health NOT_SERVING
 * -> stop admitting -> in-flight work finishes within the grace period -> force close -> the experiment book's
 * last write.
 */
import { isMainThread } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { decodeThreadCount, readSecretFile, sliceOf, type OptionSlice, type ServeOptions } from '../config/index.js';
import {
  DecodePool,
  lowerOtherThreads,
  nativeStatus,
  onnxRuntimeProbe,
  runtimeFactory,
  selectDevice,
  selectExecutor,
  withExecutorRequirement,
  type DeviceProbe,
  type ModelRuntime,
  type NativeStatus,
} from '../engine/index.js';
import { ExperimentBook, experimentSettings, PostgresExperimentStore, redactUrl, SqliteExperimentStore, type ExperimentStore } from '../experiment/index.js';
import { ModelRegistry } from '../model/index.js';
import { NOOP_REQUEST_TRACER, requestTracer, sampledLog, startMetrics, type Logger, type MetricsEndpoint, type Tracing } from '../telemetry/index.js';
import { adminService } from './admin-service.js';
import { authInterceptor, type CredentialSet } from './auth.js';
import { ConnectionGuard } from './connection-guard.js';
import { ServingHealth } from './health.js';
import { guardHandlers } from './guard.js';
import { accessLogInterceptor, refusalInterceptor, requestMessageInterceptor, statusDetailsInterceptor } from './interceptors.js';
import { listen } from './listen.js';
import { metricsInterceptor } from './metrics-interceptor.js';
import { loadKeyMapping, startOpenpiDoor, type OpenpiDoor } from './openpi/index.js';
import { OpenCalls } from './open-calls.js';
import { openCallsInterceptor } from './open-calls-interceptor.js';
import { policyService } from './policy-service.js';
import { PredictOrchestrator } from './predict-orchestrator.js';
import { loadProtos } from './proto.js';
import { DEFAULT_RATE_LIMIT_KEYS, rateLimitInterceptor, type SharedRateLimit } from './rate-limit-interceptor.js';
import { requestLimits, withRequestLimits, type RequestLimits } from './request-limits.js';
import { Router } from './router.js';
import { ShadowMirror } from './shadow-mirror.js';
import { isLoopback, serverTls, type ServerTls } from './tls.js';
import { streamCloserInterceptor } from './stream-closer.js';
import { TokenBuckets } from './token-buckets.js';
import { tokensFile, type TokensFile } from './tokens-file.js';
import { tracingInterceptor } from './tracing-interceptor.js';

/**
 * grpc-js's own receive cap, a multiple of the configured limit: messages between the two are refused politely
 * (INVALID_ARGUMENT, before decoding, request-limits.ts); above it grpc-js answers RESOURCE_EXHAUSTED.
 */
const HARD_MESSAGE_CAP_FACTOR = 4;
/** Keepalive: ping idle connections so dead robots' connections are noticed and load balancers keep them. */
export const DEFAULT_KEEPALIVE_TIME_MS = 30_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;
/** Peer addresses whose refusal budgets are remembered; an older one forgotten starts with a fresh budget. */
const GUARDED_PEERS = 10_000;

export interface RunningServer {
  readonly port: number;
  /** The Prometheus endpoint's port; undefined when metrics are off. */
  readonly metricsPort: number | undefined;
  /** The openpi WebSocket door's port; undefined when it is off (docs/openpi.md). */
  readonly openpiPort: number | undefined;
  readonly registry: ModelRegistry<ModelRuntime>;
  readonly book: ExperimentBook;
  readonly shadow: ShadowMirror;
  /** Re-reads the TLS files (SIGHUP); resolves true when a new certificate is in use, false without TLS. */
  reloadCertificates(): Promise<boolean>;
  /** Re-reads the tokens file (SIGHUP); resolves true when a changed list is in use, false without one. */
  reloadTokens(): Promise<boolean>;
  /** Graceful shutdown; resolves when the server is closed. Idempotent. */
  shutdown(reason?: string): Promise<void>;
}

export interface ServerDeps {
  /** The OpenTelemetry SDK when the environment configures it (startTracing); the caller shuts it down. */
  readonly tracing?: Tracing;
  /** How GPU providers are checked before anything loads (tests inject one). @default onnxRuntimeProbe */
  readonly probe?: DeviceProbe;
  /** Whether the native executor's addon loads (tests inject one). @default nativeStatus */
  readonly native?: () => NativeStatus;
}

/** Interceptors, innermost (nearest the transport) first: each sees the statuses sent by those after it. */
function interceptors(
  options: Readonly<ServeOptions>,
  log: Logger,
  tracing: Tracing | undefined,
  metrics: MetricsEndpoint | undefined,
  credentials: CredentialSet | undefined,
  boundPort: () => number | undefined,
  rateLimit: SharedRateLimit | undefined,
): grpc.ServerInterceptor[] {
  const openCalls = new OpenCalls(sliceOf(options, 'openCalls'));
  const guarded = sliceOf(options, 'connectionGuard');
  const closedConnections = sampledLog(
    log.child({ module: 'connection-guard' }),
    'warn',
    'connection closed: too many calls refused before their first message',
    'connections closed: repeats per peer not logged one by one',
  );
  const guard = new ConnectionGuard({ ...guarded, maxPeers: GUARDED_PEERS }, ({ peer }) =>
    closedConnections.write(peer ?? 'unknown', { peer, limitPerSecond: guarded.peerRefusalsPerSecond }),
  );
  return [
    // First: it reaches grpc-js's own call, the HTTP/2 stream it closes once a status is written.
    streamCloserInterceptor(guard),
    ...(tracing ? [tracingInterceptor(tracing.tracer, { host: sliceOf(options, 'listen').host, port: boundPort })] : []),
    ...(metrics ? [metricsInterceptor(metrics.metrics)] : []),
    accessLogInterceptor(log.child({ module: 'access' })),
    statusDetailsInterceptor(),
    // Before the credential check: a call counts from its headers, refused ones included, until it ends.
    openCallsInterceptor(openCalls),
    // Credentials are checked on the call's metadata, before any of its messages reach the later ones.
    authInterceptor(credentials, log.child({ module: 'auth' })),
    refusalInterceptor(),
    ...(rateLimit ? [rateLimitInterceptor({ ...rateLimit, identify: credentials && ((md) => credentials.callerOf(md)) })] : []),
    // Nearest the handlers: it answers what grpc-js's own handlers would answer UNIMPLEMENTED.
    requestMessageInterceptor(),
  ];
}

/** One token bucket per caller for both doors (gRPC and openpi), so that a caller cannot double its rate by using both. */
function sharedRateLimit({ robotRateLimit: rate, robotRateBurst }: OptionSlice<'rateLimit'>): SharedRateLimit | undefined {
  if (rate <= 0) return undefined;
  const limit = { ratePerSecond: rate, burst: robotRateBurst || Math.max(1, Math.ceil(rate)) };
  return { ...limit, buckets: new TokenBuckets({ ...limit, maxKeys: DEFAULT_RATE_LIMIT_KEYS }) };
}

/** Counts versions that fail to load (LOADING -> FAILED), not those found dead later. */
function countLoadFailures(registry: ModelRegistry<ModelRuntime>, metrics: MetricsEndpoint): void {
  const last = new Map<string, string>();
  registry.onStateChange((e) => {
    const key = `${e.name}@${e.version}`;
    const labels = { model: e.name, version: String(e.version) };
    if (!last.has(key)) metrics.metrics.modelSeen(labels);
    if (e.state === 'FAILED' && last.get(key) === 'LOADING') metrics.metrics.modelLoadFailed(labels);
    last.set(key, e.state);
  });
}

async function credentials(
  options: OptionSlice<'tls'>,
  { host }: OptionSlice<'listen'>,
  log: Logger,
): Promise<{ credentials: grpc.ServerCredentials; tls?: ServerTls }> {
  if (options.tlsCert) {
    const tls = await serverTls({ cert: options.tlsCert, key: options.tlsKey, clientCa: options.tlsClientCa || undefined }, log.child({ module: 'tls' }));
    return { credentials: tls.credentials, tls };
  }
  if (!isLoopback(host)) {
    log.warn({ host }, 'listening without TLS on a non-loopback address: anyone on the network can call and read this traffic; set --tls-cert and --tls-key');
  }
  return { credentials: grpc.ServerCredentials.createInsecure() };
}

/** The experiment store the options name; PostgreSQL is connected (and its tables created) before anything loads. */
async function experimentStore(options: OptionSlice<'experimentStore'>, log: Logger): Promise<ExperimentStore> {
  const storeLog = log.child({ module: 'experiment-store' });
  if (options.experimentStore === 'sqlite')
    return new SqliteExperimentStore(options.experimentDb, { log: storeLog, historyWindowMs: options.experimentHistorySeconds * 1000 });
  return PostgresExperimentStore.connect({ connectionString: options.postgresUrl, countWaitMs: options.experimentCountWaitMs, log: storeLog });
}

/** The metrics endpoint, or undefined when metricsPort is 0; it listens on `host` unless metricsHost is set. */
async function metricsEndpoint(options: OptionSlice<'metrics'>): Promise<MetricsEndpoint | undefined> {
  if (options.metricsPort === 0) return undefined;
  return startMetrics({
    host: options.metricsHost || options.host,
    port: options.metricsPort,
    token: options.metricsTokenFile ? await readSecretFile(options.metricsTokenFile, 'metricsTokenFile') : undefined,
  });
}

/** grpc-js's own settings. */
function grpcServerOptions(options: OptionSlice<'grpcServer'>): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.max_send_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.keepalive_time_ms': DEFAULT_KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': DEFAULT_KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': options.maxConcurrentStreams,
    ...(options.maxConnectionAgeSeconds > 0 ? { 'grpc.max_connection_age_ms': Math.round(options.maxConnectionAgeSeconds * 1000) } : {}),
  };
}

/**
 * @throws DeviceUnavailableError when --device cuda or webgpu cannot run here, ExecutorUnavailableError when
 * --executor cannot run the device: nothing falls back silently.
 */
export async function startServer(options: Readonly<ServeOptions>, log: Logger, deps: ServerDeps = {}): Promise<RunningServer> {
  const protos = loadProtos();
  const { tracing, probe = onnxRuntimeProbe, native = nativeStatus } = deps;
  const { device: requested, executor: requestedExecutor } = sliceOf(options, 'device');
  const { device, reason } = await selectDevice(requested, withExecutorRequirement(probe, requestedExecutor, native));
  const { executor, reason: executorReason } = selectExecutor(requestedExecutor, device, native);
  log.info({ requested, device, reason, executor, executorReason }, 'execution provider chosen');
  const { shutdownGraceSeconds } = sliceOf(options, 'shutdown');
  const graceMs = shutdownGraceSeconds * 1000;
  // Credentials and the experiment store before any model loads: a bad tokens file or an unwritable database
  // stops start-up at once.
  const openpiOptions = sliceOf(options, 'openpi');
  // A key mapping file that is not valid stops the start before the models load, as a bad tokens file does.
  const openpiMapping = openpiOptions.openpiPort === 'off' ? undefined : await loadKeyMapping(openpiOptions.openpiMapping);
  const auth = sliceOf(options, 'auth');
  const tokens: TokensFile | undefined = auth.tokensFile ? await tokensFile(auth.tokensFile, log.child({ module: 'auth' })) : undefined;
  const credentialSet = tokens?.credentials;
  const book = await ExperimentBook.open(
    await experimentStore(sliceOf(options, 'experimentStore'), log),
    log.child({ module: 'experiment' }),
    experimentSettings(sliceOf(options, 'experimentBook')),
  );
  // Before the models load, so a port conflict fails fast and load failures are counted.
  const metrics = await metricsEndpoint(sliceOf(options, 'metrics'));
  const tracer = tracing ? requestTracer(tracing.tracer) : NOOP_REQUEST_TRACER;
  const decodeOptions = sliceOf(options, 'decodePool');
  const decoder = new DecodePool({ threads: decodeThreadCount(decodeOptions), niceness: decodeOptions.decodeNiceness });
  const registryOptions = sliceOf(options, 'registry');
  const registry = new ModelRegistry<ModelRuntime>(
    registryOptions.modelRepository,
    runtimeFactory(
      {
        device,
        executor,
        settings: sliceOf(options, 'runtime'),
        scheduler: sliceOf(options, 'scheduler'),
        tokenizer: sliceOf(options, 'tokenizer'),
        decoder,
        batchRecording: tracing ? 'members' : metrics ? 'sizes' : 'off',
        onBatches(model, reports) {
          if (metrics) for (const r of reports) metrics.metrics.batchRan(r, { model: model.name, version: String(model.version) });
          tracer.batches(model, reports);
        },
      },
      log.child({ module: 'runtime' }),
    ),
    log.child({ module: 'registry' }),
    {
      defaultModel: registryOptions.defaultModel || undefined,
      drainTimeoutMs: registryOptions.shutdownGraceSeconds * 1000,
      allowPackageSymlinks: registryOptions.allowPackageSymlinks,
    },
  );
  const health = new ServingHealth(registry as ModelRegistry<unknown>);
  const limits = requestLimits(sliceOf(options, 'requestLimits'));
  if (metrics) countLoadFailures(registry, metrics);
  // Each model's implicit experiment exists before its first request, so no request writes to the store.
  const experimentLog = log.child({ module: 'experiment' });
  registry.onStateChange((e) => {
    if (e.state === 'READY')
      book.ensure(e.name).catch((err: unknown) => experimentLog.error({ err, model: e.name }, "could not create the model's experiment"));
  });
  const shadow = new ShadowMirror(registry, book, { maxInflight: sliceOf(options, 'shadowMirror').maxShadowInflight }, log.child({ module: 'shadow' }));
  const orchestrator = new PredictOrchestrator(new Router(registry, book), book, shadow, tracer);
  let port: number | undefined;

  const rateLimit = sharedRateLimit(sliceOf(options, 'rateLimit'));
  const server = new grpc.Server({
    ...grpcServerOptions(sliceOf(options, 'grpcServer')),
    interceptors: interceptors(options, log, tracing, metrics, credentialSet, () => port, rateLimit),
  });
  const policy = protos.policy.PolicyService.service;
  const policyLog = log.child({ module: 'policy' });
  server.addService(
    withRequestLimits(policy, limits, { types: protos.packageDefinition, refusalsToHandler: ['StreamPredict'] }),
    guardHandlers(
      policy,
      policyService({ registry, orchestrator, book, log: policyLog, credentialOf: credentialSet && ((md) => credentialSet.callerOf(md)?.key) }),
      policyLog,
    ),
  );
  const admin = protos.policy.AdminService.service;
  const adminLog = log.child({ module: 'admin' });
  server.addService(
    withRequestLimits(admin, limits, { types: protos.packageDefinition }),
    guardHandlers(admin, adminService({ registry, book, log: adminLog }), adminLog),
  );
  const limitedServer = limitedRegistration(server, limits, log);
  health.service.addToServer(limitedServer);
  new ReflectionService(protos.packageDefinition).addToServer(limitedServer);

  let tls: ServerTls | undefined;
  let bound: number;
  let openpi: OpenpiDoor | undefined;
  try {
    // Unusable TLS files fail the start before minutes of model loading.
    const secured = await credentials(sliceOf(options, 'tls'), sliceOf(options, 'listen'), log);
    tls = secured.tls;
    // Models load before the port opens, so a READY health check means the models are warm.
    await registry.loadRepository();
    await Promise.all(
      [
        ...new Set(
          registry
            .list()
            .filter((e) => e.state === 'READY')
            .map((e) => e.name),
        ),
      ].map((name) => book.ensure(name)),
    );
    const { host, port: requestedPort } = sliceOf(options, 'listen');
    bound = await listen(server, host, requestedPort, secured.credentials);
    port = bound;
    if (openpiMapping) {
      // The same orchestrator, book, limits and credentials as gRPC: one engine, one experiment, one set of rules.
      openpi = await startOpenpiDoor(openpiOptions, openpiMapping, {
        orchestrator,
        book,
        limits,
        credentials: credentialSet,
        rateLimit,
        serving: () => registry.list().some((e) => e.state === 'READY'),
        log: log.child({ module: 'openpi' }),
        metrics: metrics?.metrics,
      });
    }
  } catch (err) {
    server.forceShutdown();
    tls?.close();
    tokens?.close();
    await registry.stopAll();
    await decoder.close();
    await metrics?.shutdown();
    await book.close();
    throw err;
  }
  health.markStarted();
  // Every thread that exists by now but the event loop's (V8's and libuv's helpers, the experiment writer) runs
  // below it; the inference and decode threads have lowered themselves. Only a server on the process's main
  // thread owns the process's threads.
  const loweredThreads = isMainThread ? lowerOtherThreads(sliceOf(options, 'runtime').workerNiceness) : 0;
  log.info(
    {
      host: options.host,
      port,
      openpiPort: openpi?.port,
      tls: tls ? (tls.mutual ? 'mutual' : 'server') : 'off',
      authentication: credentialSet ? 'tokens file' : 'none (AdminService on loopback only)',
      experiments: options.experimentStore === 'postgres' ? `postgres ${redactUrl(options.postgresUrl)}` : `sqlite ${options.experimentDb}`,
      metricsPort: metrics?.port,
      metricsHost: metrics ? options.metricsHost || options.host : undefined,
      metricsToken: metrics ? Boolean(options.metricsTokenFile) : undefined,
      tracing: tracing?.settings,
      decodeThreads: decoder.size,
      loweredThreads,
      models: registry.list().map((e) => ({ model: e.name, version: e.version, state: e.state, device: e.runtime?.device })),
    },
    'dust-serve listening',
  );

  let closing: Promise<void> | undefined;
  const shutdown = (reason = 'shutdown requested') => {
    closing ??= (async () => {
      log.info({ reason, graceSeconds: shutdownGraceSeconds }, 'draining');
      health.markDraining();
      // Schedulers stop admitting at once (UNAVAILABLE) and finish admitted work within the grace period; the
      // openpi door closes each connection (1001, going away) once its running observation is answered.
      await Promise.all([registry.stopAll(), openpi?.close(graceMs)]);
      await decoder.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(
          () => {
            log.warn('grace period over: closing remaining connections');
            server.forceShutdown();
            resolve();
          },
          Math.max(100, graceMs),
        );
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      tls?.close();
      tokens?.close();
      await metrics?.shutdown();
      await book.close();
      log.info('server closed');
    })();
    return closing;
  };
  return {
    port: bound,
    metricsPort: metrics?.port,
    openpiPort: openpi?.port,
    registry,
    book,
    shadow,
    shutdown,
    reloadCertificates: () => (tls ? tls.reload('reload requested') : Promise.resolve(false)),
    reloadTokens: () => (tokens ? tokens.reload('reload requested') : Promise.resolve(false)),
  };
}

/**
 * Health and reflection register their own services; this hands them a server whose addService applies the
 * request limits and the handler guard to them too (a health check's service name is client text like any
 * other).
 */
function limitedRegistration(server: grpc.Server, limits: RequestLimits, log: Logger): grpc.Server {
  const register: Pick<grpc.Server, 'addService'> = {
    addService: (service, implementation) => server.addService(withRequestLimits(service, limits), guardHandlers(service, implementation, log)),
  };
  return register as grpc.Server;
}
