/**
 * A connection that keeps opening calls the server answers before the client has sent them whole (refused for
 * a missing credential, over a bound, over a limit) costs the event loop a call each, and since the server
 * resets each such stream (stream-closer.ts) it never runs into the connection's stream cap: one connection
 * can make the server refuse thousands of calls a second, and health checks on other connections wait behind
 * them. Each peer address gets a budget of such early answers (a token bucket: a burst, then a rate), shared
 * by all its connections, so that reconnecting does not renew it; the connection that overdraws it is closed
 * with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 section 5.4.1), as Node closes connections that reset too many
 * streams themselves, and so is every later one of that address that is answered early while the budget is
 * spent. Robots with a valid credential are never answered early in steady state (a refused credential ends a
 * call early a few times, not thousands of times a second), and their connections are closed only for their
 * own early answers, never for another connection's.
 */
import { constants as h2, type Http2Session } from 'node:http2';
import type { OptionSlice } from '../config/index.js';
import { TokenBuckets } from './token-buckets.js';

/**
 * peerRefusalsPerSecond: early answers a peer address may get per second, sustained, and at once (the burst: a
 * larger one lets one connection's chunk of refused calls hold the event loop longer); 0 = no limit.
 */
export interface ConnectionGuardOptions extends OptionSlice<'connectionGuard'> {
  /** Peer addresses whose budgets are remembered; past it the least recently charged one starts afresh. */
  readonly maxPeers: number;
}

export interface ClosedConnection {
  /** The peer address of the closed connection's socket. */
  readonly peer: string | undefined;
}

export class ConnectionGuard {
  private readonly buckets: TokenBuckets | undefined;

  constructor(
    options: ConnectionGuardOptions,
    private readonly onClose: (closed: ClosedConnection) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    const rate = options.peerRefusalsPerSecond;
    this.buckets = rate > 0 ? new TokenBuckets({ ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate)), maxKeys: options.maxPeers }) : undefined;
  }

  /** Charges one early answer on `session` to its peer; closes it when the peer's budget is spent. @returns false when closed. */
  charge(session: Http2Session | undefined): boolean {
    if (!this.buckets || !session || session.destroyed) return true;
    const peer = session.socket?.remoteAddress;
    if (this.buckets.take(peer ?? '', this.now()) === 0) return true;
    // Frames still buffered from this connection are dropped with it, not turned into calls. destroy(code)
    // would also emit an 'error' on the session, which nothing of grpc-js listens to: the GOAWAY goes first,
    // then a plain destroy (whose own GOAWAY says NO_ERROR).
    session.goaway(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
    this.onClose({ peer });
    return false;
  }
}
