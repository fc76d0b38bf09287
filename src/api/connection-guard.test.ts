import { constants as h2, type Http2Session } from 'node:http2';
import { describe, expect, it, vi } from 'vitest';
import { ConnectionGuard } from './connection-guard.js';

function fakeSession(remoteAddress = '10.0.0.7'): Http2Session & { destroy: ReturnType<typeof vi.fn>; goaway: ReturnType<typeof vi.fn> } {
  const session = { destroyed: false, socket: { remoteAddress }, goaway: vi.fn(), destroy: vi.fn(() => (session.destroyed = true)) };
  return session as unknown as Http2Session & { destroy: ReturnType<typeof vi.fn>; goaway: ReturnType<typeof vi.fn> };
}

describe('ConnectionGuard', () => {
  it('lets an address have a second of the rate refused at once, then closes the connection with ENHANCE_YOUR_CALM', () => {
    let now = 0;
    const closed: Array<string | undefined> = [];
    const guard = new ConnectionGuard(
      { peerRefusalsPerSecond: 10, maxPeers: 100 },
      (c) => closed.push(c.peer),
      () => now,
    );
    const session = fakeSession();
    for (let i = 0; i < 10; i++) expect(guard.charge(session)).toBe(true);
    expect(guard.charge(session)).toBe(false);
    expect(session.goaway).toHaveBeenCalledWith(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(session.destroy).toHaveBeenCalledOnce();
    expect(closed).toEqual(['10.0.0.7']);
  });

  it('refills at the rate, and keeps each peer address on its own budget', () => {
    let now = 0;
    const guard = new ConnectionGuard(
      { peerRefusalsPerSecond: 10, maxPeers: 100 },
      () => undefined,
      () => now,
    );
    const a = fakeSession('10.0.0.1');
    const b = fakeSession('10.0.0.2');
    for (let i = 0; i < 10; i++) guard.charge(a);
    // A steady 10 a second is sustained forever.
    for (let s = 0; s < 50; s++) {
      now += 1000;
      for (let i = 0; i < 10; i++) expect(guard.charge(a)).toBe(true);
    }
    for (let i = 0; i < 10; i++) expect(guard.charge(b)).toBe(true);
    expect(a.destroy).not.toHaveBeenCalled();
    expect(b.destroy).not.toHaveBeenCalled();
  });

  it('shares the budget of a peer address among its connections: reconnecting does not renew it', () => {
    const guard = new ConnectionGuard(
      { peerRefusalsPerSecond: 10, maxPeers: 100 },
      () => undefined,
      () => 0,
    );
    const first = fakeSession('10.0.0.9');
    for (let i = 0; i < 10; i++) guard.charge(first);
    expect(guard.charge(first)).toBe(false);
    const second = fakeSession('10.0.0.9');
    expect(guard.charge(second)).toBe(false);
    expect(second.goaway).toHaveBeenCalledWith(h2.NGHTTP2_ENHANCE_YOUR_CALM);
  });

  it('does nothing when off (rate 0) or for a connection already gone', () => {
    const off = new ConnectionGuard(
      { peerRefusalsPerSecond: 0, maxPeers: 100 },
      () => undefined,
      () => 0,
    );
    const session = fakeSession();
    for (let i = 0; i < 10_000; i++) expect(off.charge(session)).toBe(true);
    const on = new ConnectionGuard(
      { peerRefusalsPerSecond: 1, maxPeers: 100 },
      () => undefined,
      () => 0,
    );
    const gone = fakeSession();
    gone.destroy();
    for (let i = 0; i < 10; i++) expect(on.charge(gone)).toBe(true);
    expect(on.charge(undefined)).toBe(true);
  });
});
