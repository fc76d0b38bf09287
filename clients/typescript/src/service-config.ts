/**
 * The gRPC service config a dust-serve client dials with (gRFC A6 retries, A2 service config), so that a
 * replica that drains or dies costs no robot request:
 *
 * - `round_robin` over every address the target resolves to: a Kubernetes headless Service's pods
 *   (`dns:///dust-serve.<ns>.svc.cluster.local:50051`) or a fixed list (`ipv4:10.0.0.1:50051,10.0.0.2:50051`).
 *   A retry is a new pick, so it lands on the next replica; a dead replica's subchannel drops out of the pick.
 * - PolicyService calls are retried on UNAVAILABLE (a draining replica, a version not READY there, a dropped
 *   connection) and RESOURCE_EXHAUSTED (a full queue sheds at once, docs/api.md) with
 *   exponential backoff and ±20% jitter. A server that sends `grpc-retry-pushback-ms` in its trailers overrides
 *   the backoff (a negative value stops retrying); grpc-js honours it.
 * - Health checks are not retried: they report what one replica says now.
 *
 * grpc-js commits a call, and stops retrying it, once response headers arrive or its messages exceed
 * `grpc.per_rpc_retry_buffer_size` (1 MiB by default): a StreamPredict that has had a response is resumed by
 * PredictStream instead, and larger requests (raw images) need that channel option raised.
 *
 * `deploy/client/service-config.json` is DEFAULT_SERVICE_CONFIG as JSON, for clients in other languages.
 */
import { status } from '@grpc/grpc-js';
import type { StatusName } from './errors.js';

export interface RetryPolicyInit {
  /** Attempts per call, the first included; at least 2, and grpc-js caps it at 5. @default 5 */
  maxAttempts?: number;
  /** Backoff before the first retry; each later one is multiplied by backoffMultiplier. @default 50 */
  initialBackoffMs?: number;
  /** @default 1000 */
  maxBackoffMs?: number;
  /** @default 2 */
  backoffMultiplier?: number;
  /** @default ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] */
  retryableStatusCodes?: readonly StatusName[];
}

export type RetryPolicy = Readonly<Required<RetryPolicyInit>>;

export type LoadBalancingPolicy = 'round_robin' | 'pick_first';

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialBackoffMs: 50,
  maxBackoffMs: 1000,
  backoffMultiplier: 2,
  retryableStatusCodes: Object.freeze(['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] as const),
});

export const DEFAULT_LOAD_BALANCING: LoadBalancingPolicy = 'round_robin';

/** grpc-js ignores maxAttempts above this (its `grpc-node.retry_max_attempts_limit`). */
const GRPC_JS_MAX_ATTEMPTS = 5;
const POLICY_SERVICE = 'dust.serving.v1.PolicyService';

/** The service config as gRPC's JSON form (what `grpc.service_config` takes, as a string). */
export interface ServiceConfigJson {
  loadBalancingConfig: Array<Record<string, Record<string, never>>>;
  methodConfig: Array<{
    name: Array<{ service: string }>;
    retryPolicy: {
      maxAttempts: number;
      initialBackoff: string;
      maxBackoff: string;
      backoffMultiplier: number;
      retryableStatusCodes: string[];
    };
  }>;
}

/** Fills in the defaults and checks every field; throws a RangeError naming the field. */
export function compileRetryPolicy(init: RetryPolicyInit = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY_POLICY, ...init };
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 2 || p.maxAttempts > GRPC_JS_MAX_ATTEMPTS) {
    throw new RangeError(`retry.maxAttempts must be an integer in [2, ${GRPC_JS_MAX_ATTEMPTS}], got ${p.maxAttempts}`);
  }
  for (const field of ['initialBackoffMs', 'maxBackoffMs'] as const) {
    if (!(p[field] > 0 && Number.isFinite(p[field]))) throw new RangeError(`retry.${field} must be a positive number of milliseconds, got ${p[field]}`);
  }
  if (p.maxBackoffMs < p.initialBackoffMs) {
    throw new RangeError(`retry.maxBackoffMs (${p.maxBackoffMs}) must be at least retry.initialBackoffMs (${p.initialBackoffMs})`);
  }
  if (!(p.backoffMultiplier >= 1 && Number.isFinite(p.backoffMultiplier))) {
    throw new RangeError(`retry.backoffMultiplier must be a finite number >= 1, got ${p.backoffMultiplier}`);
  }
  if (p.retryableStatusCodes.length === 0) throw new RangeError('retry.retryableStatusCodes must name at least one status code');
  for (const name of p.retryableStatusCodes) {
    if (typeof (status as unknown as Record<string, unknown>)[name] !== 'number' || name === 'OK') {
      throw new RangeError(`retry.retryableStatusCodes: ${JSON.stringify(name)} is not a gRPC error status name (e.g. UNAVAILABLE)`);
    }
  }
  return Object.freeze({ ...p, retryableStatusCodes: Object.freeze([...p.retryableStatusCodes]) });
}

/** gRPC durations are decimal seconds with at most nanosecond precision: "0.05s". */
function duration(ms: number): string {
  return `${Number((ms / 1000).toFixed(9))}s`;
}

/** The service config for a load-balancing policy and a retry policy (false: no retries). */
export function serviceConfig(
  loadBalancing: LoadBalancingPolicy = DEFAULT_LOAD_BALANCING,
  retry: RetryPolicy | false = DEFAULT_RETRY_POLICY,
): ServiceConfigJson {
  return {
    loadBalancingConfig: [{ [loadBalancing]: {} }],
    methodConfig: retry
      ? [
          {
            name: [{ service: POLICY_SERVICE }],
            retryPolicy: {
              maxAttempts: retry.maxAttempts,
              initialBackoff: duration(retry.initialBackoffMs),
              maxBackoff: duration(retry.maxBackoffMs),
              backoffMultiplier: retry.backoffMultiplier,
              retryableStatusCodes: [...retry.retryableStatusCodes],
            },
          },
        ]
      : [],
  };
}

export const DEFAULT_SERVICE_CONFIG: Readonly<ServiceConfigJson> = Object.freeze(serviceConfig());

/** ±20% around the exponential backoff, as gRPC's own retries do (gRFC A6). */
const JITTER = 0.2;

/** The wait before retry number `retry` (0 = the first) of a policy, with gRPC's jitter. */
export function retryDelayMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const backoff = Math.min(policy.initialBackoffMs * policy.backoffMultiplier ** retry, policy.maxBackoffMs);
  return backoff * (1 - JITTER + 2 * JITTER * random());
}
