/**
 * Cross-cutting concerns as grpc-js server interceptors, not code repeated in handlers: refusals of request
 * messages over the limits (request-limits.ts), one request message per unary call, bounded status details,
 * and the access log.
 */
import * as grpc from '@grpc/grpc-js';
import { sampledLog, type Logger } from '../telemetry/index.js';
import { gateCall } from './call-gate.js';
import { RefusedMessage } from './request-limits.js';
import { safeDetails, toServiceError } from './status.js';

/**
 * Answers a request message that its deserializer refused (RefusedMessage) with INVALID_ARGUMENT, and passes
 * nothing of that call on to the handler, unless the method's handler takes refusals itself
 * (StreamPredict, which first sends the responses of the stream's earlier requests).
 */
export function refusalInterceptor(): grpc.ServerInterceptor {
  return (_method, call) =>
    gateCall(call, {
      message: (message) => {
        if (!(message instanceof RefusedMessage) || message.forHandler) return undefined;
        const { code, details } = toServiceError(message.error);
        return { code, details, metadata: new grpc.Metadata() };
      },
    });
}

/**
 * A method that takes one request message (unary, server streaming) gets exactly one: a call that ends its
 * input before its message, or sends a second one, is answered with INVALID_ARGUMENT, as a client error.
 * (grpc-js answers both with UNIMPLEMENTED, which reads as a method this server lacks, in the client's error
 * and in dust_requests_total.) A call reset by its client reaches the server as an end of input followed, in
 * the same turn of the event loop, by its cancellation: the answer waits for the next turn and is not sent
 * when the call was cancelled, so a reset counts as what it is, CANCELLED.
 */
export function requestMessageInterceptor(): grpc.ServerInterceptor {
  return (method, call) => {
    if (method.requestStream) return new grpc.ServerInterceptingCall(call);
    let received = false;
    let ended = false;
    let cancelled = false;
    const refuse = (details: string) => {
      ended = true;
      call.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details, metadata: new grpc.Metadata() });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              if (ended) return;
              if (received) {
                refuse(`${method.path} takes one request message; the call sent more than one`);
                return;
              }
              received = true;
              nextMessage(message);
            })
            .withOnReceiveHalfClose((nextHalfClose) => {
              if (ended) return;
              if (received) {
                nextHalfClose();
                return;
              }
              ended = true;
              setImmediate(() => {
                if (!cancelled)
                  call.sendStatus({
                    code: grpc.status.INVALID_ARGUMENT,
                    details: `the call ended without its request message: ${method.path} takes one`,
                    metadata: new grpc.Metadata(),
                  });
              });
            })
            .withOnCancel(() => {
              cancelled = true;
            })
            .build(),
        ),
    });
  };
}

/**
 * Every status leaves with details that are bounded and valid to encode, whoever wrote them (our handlers, or
 * a library's, like grpc-health-check's, which echoes the service name it was asked about).
 */
export function statusDetailsInterceptor(): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => next({ ...status, details: safeDetails(status.details) }),
    });
}

/**
 * One structured line per call: method, status code, duration, peer. Debug level: robots call at 10-50 Hz.
 * `INTERNAL` is logged at error, sampled per method and peer address (log-sampler.ts): a client that found a
 * way to cause one could otherwise write a line per call.
 */
export function accessLogInterceptor(log: Logger): grpc.ServerInterceptor {
  const failures = sampledLog(log, 'error', 'call failed', 'calls failed: repeats per method and peer not logged one by one');
  return (method, call) => {
    const t0 = performance.now();
    return new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        const entry = { method: method.path, code: grpc.status[status.code], ms: Math.round((performance.now() - t0) * 100) / 100, peer: call.getPeer() };
        if (status.code === grpc.status.INTERNAL)
          failures.write(`${method.path} ${call.getConnectionInfo().remoteAddress ?? 'unknown'}`, { ...entry, details: status.details });
        else log.debug(entry, 'call');
        next(status);
      },
    });
  };
}
