/**
 * A per-robot rate limit on PolicyService requests (Predict, and each message of StreamPredict): a token
 * bucket per robot_id. A request over the limit gets RESOURCE_EXHAUSTED at once, with the wait in the
 * details and in the `grpc-retry-pushback-ms` trailer (gRPC's retry pushback: clients with a retry policy
 * wait that long before retrying). The robot_id is what the client claims; a bearer credential, when
 * present, is the stronger key.
 */
import * as grpc from '@grpc/grpc-js';
import { quote } from '../errors/index.js';
import { currentCallScope } from '../telemetry/index.js';
import { gateMessages } from './message-gate.js';
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

export function rateLimitInterceptor(options: Omit<TokenBucketOptions, 'maxKeys'> & { maxKeys?: number }): grpc.ServerInterceptor {
  const buckets = new TokenBuckets({ maxKeys: DEFAULT_RATE_LIMIT_KEYS, ...options });
  return (method, call) => {
    if (!LIMITED_METHODS.has(method.path)) return new grpc.ServerInterceptingCall(call);
    return gateMessages(call, (message) => {
      const robot = robotIdOf(message);
      // No robot_id: the handler refuses the request with INVALID_ARGUMENT and says why.
      const waitMs = robot ? buckets.take(robot, performance.now()) : 0;
      if (waitMs === 0) return undefined;
      const scope = currentCallScope();
      if (scope) scope.rejectReason = 'rate_limited';
      const trailer = new grpc.Metadata();
      trailer.set(RETRY_PUSHBACK_TRAILER, String(waitMs));
      return {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details:
          `robot ${quote(robot)} is over its rate limit of ${options.ratePerSecond} requests/s (burst ${options.burst}); ` +
          `retry in ${waitMs} ms and lower the request rate`,
        metadata: trailer,
      };
    });
  };
}
