/**
 * Bounds on the calls open at once (docs/operations.md, "Open calls"): every call but grpc.health.v1's under
 * maxOpenCalls; health Check and List under a bound of the same size of their own, so that load balancers and
 * probes still get answers while other calls fill the first; health Watch streams under maxWatchStreams in
 * all and maxWatchStreamsPerConnection on one connection. Pure counting: the interceptor
 * (open-calls-interceptor.ts) admits a call when its headers arrive and releases it when it ends.
 */
import type { OptionSlice } from '../config/index.js';
import { HEALTH_SERVICE_NAME } from '@dust-serve/client/protos';

/** The bounds, options that apply to 'openCalls' (src/config/option-table.ts). */
export type OpenCallLimits = OptionSlice<'openCalls'>;

const HEALTH_PREFIX = `/${HEALTH_SERVICE_NAME}/`;
const WATCH_PATH = `${HEALTH_PREFIX}Watch`;

/** What an admitted call gives back when it ends; calling it more than once releases it once. */
export type Release = () => void;

export type Admission = { readonly ok: true; readonly release: Release } | { readonly ok: false; readonly details: string };

export class OpenCalls {
  private calls = 0;
  private healthCalls = 0;
  private watches = 0;
  private readonly watchesByConnection = new Map<string, number>();

  constructor(readonly limits: OpenCallLimits) {}

  /** Calls open now: { calls, healthCalls, watches, connectionsWatching }. */
  get counts(): { calls: number; healthCalls: number; watches: number; connectionsWatching: number } {
    return { calls: this.calls, healthCalls: this.healthCalls, watches: this.watches, connectionsWatching: this.watchesByConnection.size };
  }

  /** Admits a call to `method` (its path) on `connection` (any key that tells connections apart), or says why not. */
  admit(method: string, connection: string): Admission {
    if (method === WATCH_PATH) return this.admitWatch(connection);
    if (method.startsWith(HEALTH_PREFIX)) {
      if (this.healthCalls >= this.limits.maxOpenCalls) {
        return refused(
          `this server has ${this.healthCalls} health checks open, its limit (maxOpenCalls): send the check's request message at once, and retry with backoff`,
        );
      }
      this.healthCalls++;
      return admitted(() => this.healthCalls--);
    }
    if (this.calls >= this.limits.maxOpenCalls) {
      return refused(
        `this server has ${this.calls} calls open, its limit (maxOpenCalls): retry with backoff or on another replica, ` +
          'and end calls you no longer use (a robot needs one StreamPredict stream, not one call per request)',
      );
    }
    this.calls++;
    return admitted(() => this.calls--);
  }

  private admitWatch(connection: string): Admission {
    const here = this.watchesByConnection.get(connection) ?? 0;
    if (here >= this.limits.maxWatchStreamsPerConnection) {
      return refused(
        `this connection has ${here} health Watch streams open, the limit per connection (maxWatchStreamsPerConnection): ` +
          'end a Watch before opening another, or poll with Check',
      );
    }
    if (this.watches >= this.limits.maxWatchStreams) {
      return refused(`this server has ${this.watches} health Watch streams open, its limit (maxWatchStreams): retry with backoff, or poll with Check`);
    }
    this.watches++;
    this.watchesByConnection.set(connection, here + 1);
    return admitted(() => {
      this.watches--;
      const left = (this.watchesByConnection.get(connection) ?? 1) - 1;
      if (left > 0) this.watchesByConnection.set(connection, left);
      else this.watchesByConnection.delete(connection);
    });
  }
}

function admitted(release: () => void): Admission {
  let released = false;
  return {
    ok: true,
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}

function refused(details: string): Admission {
  return { ok: false, details };
}
