/**
 * Closes a call's HTTP/2 stream from the server's side once its status is written. grpc-js ends only its own
 * side of the stream (a trailers-only response with END_STREAM, or trailers after the responses) and keeps the
 * stream, its call and every interceptor's state until the client half-closes, so a client that opens calls
 * and never half-closes them (HEADERS only) keeps all of it alive, refused calls included. RFC 9113 section
 * 8.1 lets a server that has sent a complete response reset the stream with NO_ERROR, which gRPC C-core does
 * too; a grpc-js client that already holds the status keeps it (its stream 'close' handler ignores a NO_ERROR
 * reset after a status).
 *
 * grpc-js (1.14) has no public way to do this: the call handed to the first interceptor of the server's list
 * (its BaseServerInterceptingCall) holds the stream in a TS-private field, `stream`. http2StreamOf reads it,
 * checking its shape, and this interceptor does nothing when it is not there (a grpc-js that changed);
 * test/stream-limits.test.ts fails then. It must be the first interceptor of the list.
 */
import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { ConnectionGuard } from './connection-guard.js';

/** The HTTP/2 stream of grpc-js's innermost server call, if it has the shape this module relies on. */
export function http2StreamOf(call: grpc.ServerInterceptingCallInterface): ServerHttp2Stream | undefined {
  const stream = (call as unknown as { stream?: unknown }).stream;
  if (typeof stream !== 'object' || stream === null) return undefined;
  const s = stream as Partial<ServerHttp2Stream>;
  return typeof s.close === 'function' && typeof s.once === 'function' && 'headersSent' in s ? (stream as ServerHttp2Stream) : undefined;
}

/** True while the client may still send on the stream (it has not sent END_STREAM) and the stream is open. */
function clientSideOpen(stream: ServerHttp2Stream): boolean {
  return !stream.closed && !stream.destroyed && stream.state.remoteClose !== 1;
}

function closeNoError(stream: ServerHttp2Stream): void {
  if (clientSideOpen(stream)) stream.close(h2.NGHTTP2_NO_ERROR);
}

/**
 * Closes answered streams. A call answered before any of its messages arrived (a HEADERS-only call refused at
 * its metadata) is charged to its connection's `guard`; a stream that ends with an error after requests is not.
 */
export function streamCloserInterceptor(guard?: ConnectionGuard): grpc.ServerInterceptor {
  return (_method, call) => {
    const stream = http2StreamOf(call);
    if (!stream) return new grpc.ServerInterceptingCall(call);
    let messages = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              messages = true;
              nextMessage(message);
            })
            .build(),
        ),
      sendStatus: (status, next) => {
        // Without headers sent, next() has submitted the whole (trailers-only) response. With, grpc-js sends the
        // trailers from its own 'wantTrailers' listener, added by next(), and Node submits them in a
        // setImmediate; this listener, added after grpc-js's, queues the close behind that one. Node's close
        // sends what was submitted before the RST_STREAM; a reset submitted before the trailers would lose the
        // status (the client would see "RST_STREAM with code 0").
        const trailersLater = stream.headersSent;
        next(status);
        if (!clientSideOpen(stream)) return;
        if (guard && !messages && !guard.charge(stream.session)) return;
        if (trailersLater) stream.once('wantTrailers', () => setImmediate(closeNoError, stream));
        else closeNoError(stream);
      },
    });
  };
}
