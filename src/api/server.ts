/**
 * The composition root of a serving process: options -> registry (with the engine's runtime factory) ->
 * gRPC server with PolicyService, health, reflection and the interceptors. Shutdown follows STYLE.md:
 * health NOT_SERVING -> stop admitting -> in-flight work finishes within the grace period -> force close.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { decodeThreadCount, type ServeOptions } from '../config/index.js';
import { DecodePool, runtimeFactory, type ModelRuntime } from '../engine/index.js';
import { ModelRegistry } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import { ServingHealth } from './health.js';
import { accessLogInterceptor, messageSizeInterceptor } from './interceptors.js';
import { policyService } from './policy-service.js';
import { loadProtos } from './proto.js';

/** grpc-js's own receive cap, a multiple of the configured limit (which the interceptor enforces politely). */
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

export async function startServer(options: Readonly<ServeOptions>, log: Logger): Promise<RunningServer> {
  const protos = loadProtos();
  const graceMs = options.shutdownGraceSeconds * 1000;
  const decoder = new DecodePool({ threads: decodeThreadCount(options), niceness: options.decodeNiceness });
  const registry = new ModelRegistry<ModelRuntime>(
    options.modelRepository,
    runtimeFactory(
      {
        device: options.device,
        threads: options.threads,
        maxActive: options.maxActive,
        warmup: options.warmup,
        drainTimeoutMs: graceMs,
        decoder,
        scheduler: {
          maxVlmBatch: options.maxVlmBatch,
          maxDenoiseBatch: options.maxDenoiseBatch,
          maxQueueDelayMs: options.maxQueueDelayMs,
          maxQueue: options.maxQueue,
          batching: options.batching,
          budgetSafety: options.budgetSafety,
          budgetLoadHeadroom: options.budgetLoadHeadroom,
        },
      },
      log.child({ module: 'runtime' }),
    ),
    log.child({ module: 'registry' }),
    options.defaultModel || undefined,
  );
  const health = new ServingHealth(registry as ModelRegistry<unknown>);

  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.max_send_message_length': options.maxMessageBytes * HARD_MESSAGE_CAP_FACTOR,
    'grpc.keepalive_time_ms': DEFAULT_KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': DEFAULT_KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    interceptors: [accessLogInterceptor(log.child({ module: 'access' })), messageSizeInterceptor(options.maxMessageBytes)],
  });
  server.addService(protos.policy.PolicyService.service, policyService({ registry, log: log.child({ module: 'policy' }) }));
  health.implementation.addToServer(server);
  new ReflectionService(protos.packageDefinition).addToServer(server);

  // Models load before the port opens, so a READY health check means the models are warm.
  try {
    await registry.loadRepository();
  } catch (err) {
    await decoder.close();
    throw err;
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  health.markStarted();
  log.info(
    { host: options.host, port, decodeThreads: decoder.size, models: registry.list().map((e) => ({ model: e.name, version: e.version, state: e.state, device: e.runtime?.device })) },
    'dust-serve listening',
  );

  let closing: Promise<void> | undefined;
  const shutdown = (reason = 'shutdown requested') => {
    closing ??= (async () => {
      log.info({ reason, graceSeconds: options.shutdownGraceSeconds }, 'draining');
      health.markDraining();
      // Schedulers stop admitting at once (UNAVAILABLE) and finish admitted work within the grace period.
      await registry.stopAll();
      await decoder.close();
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
