/**
 * A per-robot rate limit on PolicyService requests (Predict, and each message of StreamPredict): a token
 * bucket per caller. A request over the limit gets RESOURCE_EXHAUSTED at once, with the wait in the
 * details and in the `grpc-retry-pushback-ms` trailer (gRPC's retry pushback: clients with a retry policy
 * wait that long before retrying). The caller is the authenticated credential when the call carries a known
 * bearer token (a client cannot escape its limit by changing robot_id; so a token shared by several robots
 * shares one budget), and the robot_id the request claims otherwise.
 */
import * as grpc from '@grpc/grpc-js';
import { callerKey } from '../engine/index.js';
import { quote } from '../errors/index.js';
import { currentCallScope } from '../telemetry/index.js';
import { gateCall } from './call-gate.js';
import { POLICY_SERVICE_NAME } from './proto.js';
import { TokenBuckets, type TokenBucketOptions } from './token-buckets.js';

/** The trailer gRPC clients read as "retry after this many milliseconds". */
export const RETRY_PUSHBACK_TRAILER = 'grpc-retry-pushback-ms';
/** Robots whose buckets are remembered; beyond this the least recently seen robot starts afresh. */
export const DEFAULT_RATE_LIMIT_KEYS = 100_000;

const LIMITED_METHODS: ReadonlySet<string> = new Set([`/${POLICY_SERVICE_NAME}/Predict`, `/${POLICY_SERVICE_NAME}/StreamPredict`]);

function robotIdOf(message: unknown): string {
  const id = (message as { robot_id?: unknown } | null)?.robot_id;
  return typeof id === 'string' ? id : '';
}

/** An authenticated caller: `key` identifies its credential, `name` is what the details may say. */
export interface RateLimitIdentity {
  readonly key: string;
  readonly name: string;
}

export interface RateLimitOptions extends Omit<TokenBucketOptions, 'maxKeys'> {
  maxKeys?: number;
  /** Buckets shared with another door (the openpi door's), so that a caller has one budget; new ones otherwise. */
  buckets?: TokenBuckets;
  /** The call's authenticated caller, when its metadata carries a known credential. */
  identify?: (metadata: grpc.Metadata) => RateLimitIdentity | undefined;
}

/** A rate limit whose buckets both doors take from. */
export interface SharedRateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly buckets: TokenBuckets;
}

export function rateLimitInterceptor(options: RateLimitOptions): grpc.ServerInterceptor {
  const { identify, buckets: shared, ...bucketOptions } = options;
  const buckets = shared ?? new TokenBuckets({ maxKeys: DEFAULT_RATE_LIMIT_KEYS, ...bucketOptions });
  return (method, call) => {
    if (!LIMITED_METHODS.has(method.path)) return new grpc.ServerInterceptingCall(call);
    let caller: RateLimitIdentity | undefined;
    return gateCall(call, {
      metadata: (metadata) => {
        caller = identify?.(metadata);
        return undefined;
      },
      message: (message) => {
        const robot = robotIdOf(message);
        // Neither a credential nor a robot_id: the handler refuses the request with INVALID_ARGUMENT and says why.
        const key = caller || robot ? callerKey(caller?.key, robot) : undefined;
        const waitMs = key ? buckets.take(key, performance.now()) : 0;
        if (waitMs === 0) return undefined;
        const scope = currentCallScope();
        if (scope) scope.rejectReason = 'rate_limited';
        const trailer = new grpc.Metadata();
        trailer.set(RETRY_PUSHBACK_TRAILER, String(waitMs));
        return { code: grpc.status.RESOURCE_EXHAUSTED, details: overRateLimit(caller?.name, robot, options, waitMs), metadata: trailer };
      },
    });
  };
}

/** The refusal's details, the same on both doors. */
export function overRateLimit(callerName: string | undefined, robotId: string, limit: Omit<TokenBucketOptions, 'maxKeys'>, waitMs: number): string {
  return (
    `${callerName !== undefined ? `caller ${quote(callerName)}` : `robot ${quote(robotId)}`} is over its rate limit of ${limit.ratePerSecond} requests/s (burst ${limit.burst}); ` +
    `retry in ${waitMs} ms and lower the request rate`
  );
}
