import { describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { http2StreamOf } from './stream-closer.js';

describe('http2StreamOf', () => {
  it('finds a stream-shaped field and nothing else', () => {
    const stream = { close: () => undefined, once: () => undefined, headersSent: false };
    expect(http2StreamOf({ stream } as unknown as grpc.ServerInterceptingCallInterface)).toBe(stream);
    // An interceptor's call (no stream field) or a grpc-js whose field changed shape: nothing to close.
    expect(http2StreamOf({} as unknown as grpc.ServerInterceptingCallInterface)).toBeUndefined();
    expect(http2StreamOf({ stream: { close: 1 } } as unknown as grpc.ServerInterceptingCallInterface)).toBeUndefined();
  });
});
