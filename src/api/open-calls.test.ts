import { describe, expect, it } from 'vitest';
import { OpenCalls, type Admission } from './open-calls.js';

const PREDICT = '/dust.serving.v1.PolicyService/Predict';
const CHECK = '/grpc.health.v1.Health/Check';
const WATCH = '/grpc.health.v1.Health/Watch';

function release(a: Admission): () => void {
  if (!a.ok) throw new Error(`refused: ${a.details}`);
  return a.release;
}

describe('OpenCalls', () => {
  it('refuses calls beyond maxOpenCalls, whatever the connection, and admits again once one ends', () => {
    const calls = new OpenCalls({ maxOpenCalls: 2, maxWatchStreams: 1, maxWatchStreamsPerConnection: 1 });
    const first = release(calls.admit(PREDICT, 'a'));
    release(calls.admit(PREDICT, 'b'));
    const over = calls.admit(PREDICT, 'c');
    expect(over).toEqual({ ok: false, details: expect.stringMatching(/2 calls open, its limit \(maxOpenCalls\)/) });
    first();
    first(); // a second release gives nothing back twice
    expect(calls.admit(PREDICT, 'c').ok).toBe(true);
    expect(calls.admit(PREDICT, 'c').ok).toBe(false);
  });

  it('health Check has a bound of its own: answered while other calls fill theirs', () => {
    const calls = new OpenCalls({ maxOpenCalls: 1, maxWatchStreams: 1, maxWatchStreamsPerConnection: 1 });
    release(calls.admit(PREDICT, 'a'));
    expect(calls.admit(PREDICT, 'a').ok).toBe(false);
    release(calls.admit(CHECK, 'a'));
    expect(calls.admit(CHECK, 'a')).toEqual({ ok: false, details: expect.stringMatching(/health checks open/) });
  });

  it('bounds Watch streams per connection and in all, and forgets a connection with none', () => {
    const calls = new OpenCalls({ maxOpenCalls: 10, maxWatchStreams: 3, maxWatchStreamsPerConnection: 2 });
    const a1 = release(calls.admit(WATCH, 'a'));
    const a2 = release(calls.admit(WATCH, 'a'));
    expect(calls.admit(WATCH, 'a')).toEqual({ ok: false, details: expect.stringMatching(/this connection has 2 .*maxWatchStreamsPerConnection/) });
    release(calls.admit(WATCH, 'b'));
    expect(calls.admit(WATCH, 'c')).toEqual({ ok: false, details: expect.stringMatching(/this server has 3 .*maxWatchStreams\)/) });
    // Watches take nothing from the other bounds.
    expect(calls.admit(PREDICT, 'a').ok).toBe(true);
    a1();
    a2();
    expect(calls.counts).toEqual({ calls: 1, healthCalls: 0, watches: 1, connectionsWatching: 1 });
    expect(calls.admit(WATCH, 'c').ok).toBe(true);
  });

  it('a bound of 0 refuses every Watch', () => {
    const calls = new OpenCalls({ maxOpenCalls: 10, maxWatchStreams: 0, maxWatchStreamsPerConnection: 4 });
    expect(calls.admit(WATCH, 'a').ok).toBe(false);
  });
});
