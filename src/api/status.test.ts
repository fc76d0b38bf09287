import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { MAX_DETAILS_CHARS, safeDetails, toServiceError } from './status.js';

describe('toServiceError', () => {
  it('maps domain errors and echoes a valid request_id in x-request-id', () => {
    const e = toServiceError(new NotFoundError('unknown embodiment "x"'), 'req-1');
    expect(e.code).toBe(status.NOT_FOUND);
    expect(e.details).toBe('unknown embodiment "x"');
    expect((e.metadata as Metadata).get('x-request-id')).toEqual(['req-1']);
  });

  it.each(['a\nb', 'robot-🤖', 'a b', '', 'x'.repeat(1025), '\ud800'])('never throws, and leaves out an id that is not a safe metadata value (%j)', (id) => {
    const e = toServiceError(new InvalidArgumentError('bad'), id);
    expect((e.metadata as Metadata).get('x-request-id')).toEqual([]);
    expect(e.details).toBe('bad');
  });

  it('names a valid id in INTERNAL details only', () => {
    expect(toServiceError(new Error('boom'), 'req-9').details).toMatch(/\(request_id req-9\)$/);
    expect(toServiceError(new Error('boom'), 'a\nb').details).not.toMatch(/request_id/);
  });
});

describe('safeDetails', () => {
  it('bounds the length', () => {
    expect(safeDetails('x'.repeat(100_000))).toHaveLength(MAX_DETAILS_CHARS + 3);
    expect(safeDetails('short')).toBe('short');
    expect(safeDetails(undefined)).toBe('');
  });

  it('replaces lone surrogates, on which encodeURI (grpc-js) throws, and keeps pairs', () => {
    const out = safeDetails('a\ud800b\udc00c 🤖');
    expect(out).toBe('a\ufffdb\ufffdc 🤖');
    expect(() => encodeURI(out)).not.toThrow();
    // A cut through a surrogate pair at the length bound.
    const cut = safeDetails(`${'x'.repeat(MAX_DETAILS_CHARS - 1)}🤖`);
    expect(() => encodeURI(cut)).not.toThrow();
  });
});
