/**
 * A server span per RPC (OTel RPC semantic conventions: `rpc.system=grpc`, `rpc.service`, `rpc.method`,
 * `rpc.grpc.status_code`, server and peer addresses), continuing the caller's trace from the W3C
 * `traceparent`/`tracestate` metadata. Installed innermost, so it sees every status (including refusals
 * by other interceptors) and runs everything above it, the handler included, with the span active.
 */
import * as grpc from '@grpc/grpc-js';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { traceNow } from '../telemetry/index.js';

/** Incubating RPC semantic-convention names (copied, as OTel advises for incubating attributes). */
const ATTR_RPC_SYSTEM = 'rpc.system';
const ATTR_RPC_SERVICE = 'rpc.service';
const ATTR_RPC_METHOD = 'rpc.method';
const ATTR_RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';

/** Codes that mean the server failed (semantic conventions for gRPC server spans); others are the client's. */
const SERVER_ERROR_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key).map(String);
    return values.length === 0 ? undefined : values;
  },
};

/** `/pkg.Service/Method` -> [pkg.Service, Method]. */
export function splitMethodPath(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return [path.slice(1, slash), path.slice(slash + 1)];
}

/** grpc-js peers look like `127.0.0.1:5000`, `[::1]:5000` or a unix path. */
export function parsePeer(peer: string): { address: string; port?: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(peer);
  return m ? { address: m[1], port: Number(m[2]) } : { address: peer };
}

export interface TracedServer {
  readonly host: string;
  /** Known once bound. */
  port(): number | undefined;
}

export function tracingInterceptor(tracer: Tracer, server: TracedServer): grpc.ServerInterceptor {
  return (method, call) => {
    const [service, rpc] = splitMethodPath(method.path);
    let span: Span | undefined;
    let ctx: Context = ROOT_CONTEXT;
    const within = (fn: () => void) => context.with(ctx, fn);
    const end = (code: grpc.status, details?: string) => {
      if (!span) return;
      span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, code);
      if (SERVER_ERROR_CODES.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: details ?? grpc.status[code] });
      span.end(traceNow());
      span = undefined;
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const parent = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
              const peer = parsePeer(call.getPeer());
              const port = server.port();
              span = tracer.startSpan(
                `${service}/${rpc}`,
                {
                  kind: SpanKind.SERVER,
                  startTime: traceNow(),
                  attributes: {
                    [ATTR_RPC_SYSTEM]: 'grpc',
                    [ATTR_RPC_SERVICE]: service,
                    [ATTR_RPC_METHOD]: rpc,
                    'server.address': server.host,
                    ...(port !== undefined ? { 'server.port': port } : {}),
                    'network.peer.address': peer.address,
                    ...(peer.port !== undefined ? { 'network.peer.port': peer.port } : {}),
                  },
                },
                parent,
              );
              ctx = trace.setSpan(parent, span);
              within(() => nextMetadata(metadata));
            })
            .withOnReceiveMessage((message, nextMessage) => within(() => nextMessage(message)))
            .withOnReceiveHalfClose((nextHalfClose) => within(nextHalfClose))
            .withOnCancel(() => end(grpc.status.CANCELLED))
            .build(),
        ),
      sendStatus: (status, next) => {
        end(status.code, status.details);
        next(status);
      },
    });
  };
}
