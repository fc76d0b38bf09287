import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { brokenInTransit, DustClientError, statusName } from './errors.js';

function serviceError(code: status, details: string): ServiceError {
  const md = new Metadata();
  md.set('x-trace', 'abc');
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: md });
}

describe('DustClientError', () => {
  it('wraps a ServiceError with the status name, number and details', () => {
    const cause = serviceError(status.INVALID_ARGUMENT, 'state has 3 values; embodiment franka needs 8');
    const err = DustClientError.from(cause);
    expect(err).toBeInstanceOf(DustClientError);
    expect(err.name).toBe('DustClientError');
    expect(err.code).toBe(3);
    expect(err.codeName).toBe('INVALID_ARGUMENT');
    expect(err.details).toBe('state has 3 values; embodiment franka needs 8');
    expect(err.message).toBe('INVALID_ARGUMENT: state has 3 values; embodiment franka needs 8');
    expect(err.cause).toBe(cause);
    expect(err.metadata.get('x-trace')).toEqual(['abc']);
  });

  it('wraps only once, and treats anything else as UNKNOWN', () => {
    const err = DustClientError.from(serviceError(status.UNAVAILABLE, 'draining'));
    expect(DustClientError.from(err)).toBe(err);
    const other = DustClientError.from(new TypeError('boom'));
    expect(other.codeName).toBe('UNKNOWN');
    expect(other.details).toBe('boom');
  });

  it('names codes it does not know by number', () => {
    expect(statusName(16)).toBe('UNAUTHENTICATED');
    expect(statusName(99)).toBe('CODE_99');
  });
});

describe('brokenInTransit', () => {
  it('is a stream reset that reached no server, not a server INTERNAL', () => {
    expect(brokenInTransit(DustClientError.from(serviceError(status.INTERNAL, 'Received RST_STREAM with code 0 (Call ended without gRPC status)')))).toBe(true);
    expect(brokenInTransit(DustClientError.from(serviceError(status.INTERNAL, 'Received RST_STREAM with code 2 triggered by internal client error')))).toBe(
      true,
    );
    expect(brokenInTransit(DustClientError.from(serviceError(status.INTERNAL, 'malformed PredictResponse: RST_STREAM')))).toBe(false);
    expect(brokenInTransit(DustClientError.from(serviceError(status.UNAVAILABLE, 'Received RST_STREAM with code 0')))).toBe(false);
  });
});
