import { EventEmitter } from 'node:events';
import { status, type ServiceDefinition } from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { silentLogger } from '../telemetry/index.js';
import { guardHandlers } from './guard.js';

type Handlers = Record<string, (call: unknown, callback?: (...args: unknown[]) => void) => unknown>;
const guard = (handlers: Handlers): Handlers => guardHandlers(service, handlers, silentLogger);

const service = {
  Unary: { path: '/s/Unary', requestStream: false, responseStream: false },
  Bidi: { path: '/s/Bidi', requestStream: true, responseStream: true },
} as unknown as ServiceDefinition;

describe('guardHandlers', () => {
  it('turns a synchronous throw of a unary handler into an error status', () => {
    const guarded = guard({
      Unary: () => {
        throw new InvalidArgumentError('no');
      },
    });
    const callback = vi.fn();
    guarded.Unary({}, callback);
    expect(callback).toHaveBeenCalledWith(expect.objectContaining({ code: status.INVALID_ARGUMENT, details: 'no' }));
  });

  it('turns the rejection of an async unary handler into an error status', async () => {
    const guarded = guard({
      Unary: async () => {
        throw new Error('boom');
      },
    });
    const done = new Promise((resolve) => guarded.Unary({}, resolve));
    expect(await done).toMatchObject({ code: status.INTERNAL });
  });

  it('ends a streaming call whose handler throws with an error status', () => {
    const guarded = guard({
      Bidi: () => {
        throw new Error('boom');
      },
    });
    const call = new EventEmitter();
    const errors: unknown[] = [];
    call.on('error', (e) => errors.push(e));
    guarded.Bidi(call);
    expect(errors).toEqual([expect.objectContaining({ code: status.INTERNAL })]);
  });

  it('finds the method of a handler registered under its lowerCamel originalName, as libraries do', () => {
    const named = { Check: { path: '/s/Check', requestStream: false, responseStream: false, originalName: 'check' } } as unknown as ServiceDefinition;
    const guarded = guardHandlers(
      named,
      {
        check: () => {
          throw new Error('boom');
        },
      },
      silentLogger,
    ) as Handlers;
    const callback = vi.fn();
    guarded.check({}, callback);
    expect(callback).toHaveBeenCalledWith(expect.objectContaining({ code: status.INTERNAL }));
  });

  it('passes calls and results through untouched', () => {
    const guarded = guard({ Unary: (call, cb) => cb!(null, call) });
    const callback = vi.fn();
    guarded.Unary('req', callback);
    expect(callback).toHaveBeenCalledWith(null, 'req');
  });

  it('logs a handler that keeps throwing once per window, not once per call', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const guarded = guardHandlers(
      service,
      {
        Unary: () => {
          throw new Error('boom');
        },
      },
      log,
    ) as Handlers;
    for (let i = 0; i < 100; i++) guarded.Unary({}, () => undefined);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ msg: 'handler threw', method: '/s/Unary', level: 50 });
  });
});
