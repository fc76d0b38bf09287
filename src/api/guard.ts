/**
 * A service's handlers made unable to throw into grpc-js: a synchronous throw, or the rejection of a handler
 * that returns a promise, becomes an error status through status.ts. grpc-js calls handlers from its own
 * event callbacks, where a throw would surface as an uncaught exception or unhandled rejection and end the
 * process (test/hostile-input.test.ts). Errors inside a handler's own listeners and promise chains stay the handler's to catch.
 */
import type * as grpc from '@grpc/grpc-js';
import { sampledLog, type Logger } from '../telemetry/index.js';
import { toServiceError } from './status.js';

type AnyHandler = (call: unknown, callback?: (err: unknown, value?: unknown) => void) => unknown;

export function guardHandlers<H extends object>(service: grpc.ServiceDefinition, handlers: H, log: Logger): H {
  // Sampled per method (log-sampler.ts): a request that makes a handler throw can be sent in a loop.
  const threw = sampledLog(log, 'error', 'handler threw', 'handlers threw: repeats per method not logged one by one');
  const out: Record<string, AnyHandler> = {};
  for (const [name, handler] of Object.entries(handlers as Record<string, AnyHandler>)) {
    // Libraries register handlers under the method's name or its lowerCamel originalName (grpc-js takes both).
    const definition = service[name] ?? Object.values(service).find((d) => (d as { originalName?: string }).originalName === name);
    const responds = definition?.responseStream === false;
    out[name] = (call, callback) => {
      const fail = (err: unknown) => {
        threw.write(definition?.path ?? name, { err, method: definition?.path });
        const status = toServiceError(err);
        if (responds && callback) callback(status);
        else (call as { emit(event: 'error', e: unknown): void }).emit('error', status);
      };
      try {
        const returned = handler(call, callback);
        if (returned instanceof Promise) returned.catch(fail);
      } catch (err) {
        fail(err);
      }
    };
  }
  return out as H;
}
