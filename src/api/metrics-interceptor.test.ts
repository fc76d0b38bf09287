import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { ServingMetrics } from '../telemetry/index.js';
import { metricsInterceptor } from './metrics-interceptor.js';

/** The gauge and counter calls the interceptor makes. */
function fakeMetrics() {
  const inflight = new Map<string, number>();
  const finished: string[] = [];
  const metrics = {
    inflightChanged: (method: string, delta: number) => inflight.set(method, (inflight.get(method) ?? 0) + delta),
    requestFinished: (method: string, code: string) => finished.push(`${method} ${code}`),
    requestRejected: () => undefined,
    predictServed: () => undefined,
  } as unknown as ServingMetrics;
  return { metrics, inflight, finished };
}

/**
 * A StreamPredict call through the interceptor, driven by hand: `transport` plays grpc-js's side (messages
 * and cancellation arrive through it), `handler` the handler's (responses and the status leave through it).
 */
function streamCall(metrics: ServingMetrics) {
  let transport!: Parameters<grpc.ServerInterceptingCallInterface['start']>[0];
  const base = {
    start: (listener: typeof transport) => void (transport = listener),
    sendMetadata: () => undefined,
    sendMessage: (_m: unknown, cb: () => void) => cb(),
    sendStatus: () => undefined,
    startRead: () => undefined,
    getPeer: () => '127.0.0.1:1',
    getDeadline: () => Infinity,
    getHost: () => 'localhost',
    getAuthContext: () => ({}),
    getConnectionInfo: () => ({ remoteAddress: '127.0.0.1' }),
    getMetricsRecorder: () => undefined,
  } as unknown as grpc.ServerInterceptingCallInterface;
  const method = { path: '/dust.serving.v1.PolicyService/StreamPredict', requestStream: true, responseStream: true } as grpc.ServerMethodDefinition<
    unknown,
    unknown
  >;
  const handler = metricsInterceptor(metrics)(method, base);
  handler.start({ onReceiveMetadata: () => undefined, onReceiveMessage: () => undefined, onReceiveHalfClose: () => undefined, onCancel: () => undefined });
  transport.onReceiveMetadata(new grpc.Metadata());
  return {
    message: () => transport.onReceiveMessage({}),
    cancel: () => transport.onCancel(),
    respond: () => handler.sendMessage({}, () => undefined),
    status: (code: grpc.status) => handler.sendStatus({ code, details: '', metadata: new grpc.Metadata() }),
  };
}

describe('metricsInterceptor: the in-flight gauge returns to zero however a stream ends', () => {
  const endings: Record<string, (c: ReturnType<typeof streamCall>) => void> = {
    'status, then messages the client had already sent, then the connection drops': (c) => {
      c.status(grpc.status.RESOURCE_EXHAUSTED);
      c.message();
      c.message();
      c.cancel();
    },
    'status only': (c) => c.status(grpc.status.RESOURCE_EXHAUSTED),
    'cancellation (a reset or a dropped connection), then a late status': (c) => {
      c.cancel();
      c.status(grpc.status.CANCELLED);
    },
    'a response, then OK': (c) => {
      c.respond();
      c.status(grpc.status.OK);
    },
  };
  it.each(Object.keys(endings))('%s', (ending) => {
    const { metrics, inflight } = fakeMetrics();
    const call = streamCall(metrics);
    call.message();
    call.message();
    call.message();
    expect(inflight.get('StreamPredict')).toBe(3);
    endings[ending](call);
    expect(inflight.get('StreamPredict')).toBe(0);
  });

  it('counts the request that ended the stream with its code and the others still waiting as CANCELLED, once', () => {
    const { metrics, finished } = fakeMetrics();
    const call = streamCall(metrics);
    call.message();
    call.message();
    call.status(grpc.status.RESOURCE_EXHAUSTED);
    call.message();
    call.cancel();
    expect(finished).toEqual(['StreamPredict RESOURCE_EXHAUSTED', 'StreamPredict CANCELLED']);
  });
});
