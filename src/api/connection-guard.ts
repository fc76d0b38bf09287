/**
 * A connection that keeps opening calls the server answers before the client has sent them whole (refused for
 * a missing credential, over a bound, over a limit) costs the event loop a call each, and since the server
 * resets each such stream (stream-closer.ts) it never runs into the connection's stream cap: one connection
 * can make the server refuse thousands of calls a second, and health checks on other connections wait behind
 * them. Each connection gets a budget of such early answers (a token bucket: a burst, then a rate); a
 * connection that overdraws it is closed with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 section 5.4.1), as Node
 * closes connections that reset too many streams themselves. A client must then reconnect, which costs it a
 * handshake per burst. Robots with a valid credential are never answered early in steady state: a refused
 * credential or a full server ends a call early a few times, not thousands of times a second.
 */
import { constants as h2, type Http2Session } from 'node:http2';
import { TokenBuckets } from './token-buckets.js';

export interface ConnectionGuardOptions {
  /** Early answers a connection may get per second, sustained; 0 = no limit. */
  readonly earlyAnswersPerSecond: number;
  /** Connections whose budgets are remembered; past it the least recently charged one starts afresh. */
  readonly maxConnections: number;
}

export interface ClosedConnection {
  /** The peer address of the closed connection's socket. */
  readonly peer: string | undefined;
}

/** A burst of this many seconds of the rate: a robot fleet behind one proxy connection may all fail at once. */
const BURST_SECONDS = 2;

export class ConnectionGuard {
  private readonly buckets: TokenBuckets | undefined;
  private readonly ids = new WeakMap<Http2Session, string>();
  private nextId = 0;

  constructor(
    options: ConnectionGuardOptions,
    private readonly onClose: (closed: ClosedConnection) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    const rate = options.earlyAnswersPerSecond;
    this.buckets = rate > 0 ? new TokenBuckets({ ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate * BURST_SECONDS)), maxKeys: options.maxConnections }) : undefined;
  }

  /** Charges one early answer to `session`; closes it when its budget is spent. @returns false when closed. */
  charge(session: Http2Session | undefined): boolean {
    if (!this.buckets || !session || session.destroyed) return true;
    let id = this.ids.get(session);
    if (id === undefined) {
      id = String(this.nextId++);
      this.ids.set(session, id);
    }
    if (this.buckets.take(id, this.now()) === 0) return true;
    const peer = session.socket?.remoteAddress;
    // Frames still buffered from this connection are dropped with it, not turned into calls. destroy(code)
    // would also emit an 'error' on the session, which nothing of grpc-js listens to: the GOAWAY goes first,
    // then a plain destroy (whose own GOAWAY says NO_ERROR).
    session.goaway(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
    this.onClose({ peer });
    return false;
  }
}
