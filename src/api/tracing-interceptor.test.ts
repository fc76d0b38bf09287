import { describe, expect, it } from 'vitest';
import { parsePeer, splitMethodPath } from './tracing-interceptor.js';

describe('RPC span naming', () => {
  it('splits a method path into service and method', () => {
    expect(splitMethodPath('/dust.serving.v1.PolicyService/Predict')).toEqual(['dust.serving.v1.PolicyService', 'Predict']);
    expect(splitMethodPath('/grpc.health.v1.Health/Check')).toEqual(['grpc.health.v1.Health', 'Check']);
  });

  it('parses grpc-js peers', () => {
    expect(parsePeer('127.0.0.1:5000')).toEqual({ address: '127.0.0.1', port: 5000 });
    expect(parsePeer('[::1]:443')).toEqual({ address: '::1', port: 443 });
    expect(parsePeer('/run/dust.sock')).toEqual({ address: '/run/dust.sock' });
  });
});
