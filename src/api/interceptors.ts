/**
 * Cross-cutting concerns as grpc-js server interceptors, not code repeated in handlers: the request size
 * limit (INVALID_ARGUMENT with a fix, serving-api.md) and the access log.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../telemetry/index.js';
import { gateMessages } from './message-gate.js';
import { wireSize } from './proto.js';

/**
 * Refuses request messages larger than `limit` bytes with INVALID_ARGUMENT. grpc-js's own receive limit is
 * set higher (a hard cap against abuse) because it answers RESOURCE_EXHAUSTED, which the spec reserves for
 * overload: a too-large message is the client's to fix.
 */
export function messageSizeInterceptor(limit: number): grpc.ServerInterceptor {
  return (_method, call) =>
    gateMessages(call, (message) => {
      const size = wireSize(message);
      if (size === undefined || size <= limit) return undefined;
      return {
        code: grpc.status.INVALID_ARGUMENT,
        details: `the request message is ${size} bytes, above this server's limit of ${limit}: send JPEG or PNG images, or fewer/smaller ones`,
        metadata: new grpc.Metadata(),
      };
    });
}

/** One structured line per call: method, status code, duration, peer. Debug level: robots call at 10-50 Hz. */
export function accessLogInterceptor(log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const t0 = performance.now();
    return new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        const entry = { method: method.path, code: grpc.status[status.code], ms: Math.round((performance.now() - t0) * 100) / 100, peer: call.getPeer() };
        if (status.code === grpc.status.INTERNAL) log.error({ ...entry, details: status.details }, 'call failed');
        else log.debug(entry, 'call');
        next(status);
      },
    });
  };
}
