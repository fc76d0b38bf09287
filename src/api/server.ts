/**
 * The composition root of a serving process: options -> registry (with the engine's runtime factory) ->
 * gRPC server with PolicyService, health, reflection and the interceptors. Shutdown follows STYLE.md:
 * health NOT_SERVING -> stop admitting -> in-flight work finishes within the grace period -> force close.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { ServeOptions } from '../config/index.js';
import { onnxRuntimeProbe, runtimeFactory, selectDevice, type DeviceProbe, type ModelRuntime } from '../engine/index.js';
import { ModelRegistry } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import { ServingHealth } from './health.js';
import { guardHandlers } from './guard.js';
import { accessLogInterceptor, refusalInterceptor, statusDetailsInterceptor } from './interceptors.js';
import { listen } from './listen.js';
import { policyService } from './policy-service.js';
import { loadProtos } from './proto.js';
import { requestLimits, withRequestLimits, type RequestLimits } from './request-limits.js';

/**
 * grpc-js's own receive cap, a multiple of the configured limit: messages between the two are refused politely
 * (INVALID_ARGUMENT, before decoding, request-limits.ts); above it grpc-js answers RESOURCE_EXHAUSTED.
 */
const HARD_MESSAGE_CAP_FACTOR = 4;
/** Keepalive: ping idle connections so dead robots' connections are noticed and load balancers keep them. */
export const DEFAULT_KEEPALIVE_TIME_MS = 30_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;

export interface RunningServer {
  readonly port: number;
  readonly registry: ModelRegistry<ModelRuntime>;
  /** Graceful shutdown; resolves when the server is closed. Idempotent. */
  shutdown(reason?: string): Promise<void>;
}

/**
 * @param probe how GPU providers are checked before anything loads (tests inject one).
 * @throws DeviceUnavailableError when --device cuda or webgpu cannot run here: nothing falls back silently.
 */
export async function startServer(options: Readonly<ServeOptions>, log: Logger, probe: DeviceProbe = onnxRuntimeProbe): Promise<RunningServer> {
  const protos = loadProtos();
  const { device, reason } = await selectDevice(options.device, probe);
  log.info({ requested: options.device, device, reason }, 'execution provider chosen');
  const graceMs = options.shutdownGraceSeconds * 1000;
  const registry = new ModelRegistry<ModelRuntime>(
    options.modelRepository,
    runtimeFactory(
      {
        device,
        threads: options.threads,
        maxActive: options.maxActive,
        warmup: options.warmup,
        drainTimeoutMs: graceMs,
        scheduler: {
          maxVlmBatch: options.maxVlmBatch,
          maxDenoiseBatch: options.maxDenoiseBatch,
          maxQueueDelayMs: options.maxQueueDelayMs,
          maxQueue: options.maxQueue,
          batching: options.batching,
          budgetSafety: options.budgetSafety,
        },
      },
      log.child({ module: 'runtime' }),
    ),
    log.child({ module: 'registry' }),
    options.defaultModel || undefined,
  );
  const health = new ServingHealth(registry as ModelRegistry<unknown>);
  const limits = requestLimits(options);

  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.max_send_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.keepalive_time_ms': DEFAULT_KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': DEFAULT_KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    // The first is innermost: the access log sees statuses as they leave.
    interceptors: [accessLogInterceptor(log.child({ module: 'access' })), statusDetailsInterceptor(), refusalInterceptor()],
  });
  const policy = protos.policy.PolicyService.service;
  const policyLog = log.child({ module: 'policy' });
  server.addService(
    withRequestLimits(policy, limits, { types: protos.packageDefinition, refusalsToHandler: ['StreamPredict'] }),
    guardHandlers(policy, policyService({ registry, log: policyLog }), policyLog),
  );
  const limitedServer = limitedRegistration(server, limits, log);
  health.service.addToServer(limitedServer);
  new ReflectionService(protos.packageDefinition).addToServer(limitedServer);

  let port: number;
  try {
    // Models load before the port opens, so a READY health check means the models are warm.
    await registry.loadRepository();
    port = await listen(server, options.host, options.port);
  } catch (err) {
    server.forceShutdown();
    await registry.stopAll();
    throw err;
  }
  health.markStarted();
  log.info(
    { host: options.host, port, models: registry.list().map((e) => ({ model: e.name, version: e.version, state: e.state, device: e.runtime?.device })) },
    'dust-serve listening',
  );

  let closing: Promise<void> | undefined;
  const shutdown = (reason = 'shutdown requested') => {
    closing ??= (async () => {
      log.info({ reason, graceSeconds: options.shutdownGraceSeconds }, 'draining');
      health.markDraining();
      // Schedulers stop admitting at once (UNAVAILABLE) and finish admitted work within the grace period.
      await registry.stopAll();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          log.warn('grace period over: closing remaining connections');
          server.forceShutdown();
          resolve();
        }, Math.max(100, graceMs));
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      log.info('server closed');
    })();
    return closing;
  };
  return { port, registry, shutdown };
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
