/**
 * What a call's handler learns that the edge interceptors report on: the model version that served it and
 * the domain error that refused it. The metrics interceptor opens a scope around the call's listener
 * events; the handler (below it, in the same async context) fills it in.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { OverloadedError, UnavailableError } from '../errors/index.js';

export class CallScope {
  model = '';
  version = '';
  /** Why the call was refused, when something refused it (rate_limited, queue_full, ...). */
  rejectReason: string | undefined;

  setModel(name: string, version: number): void {
    this.model = name;
    this.version = String(version);
  }

  /** Records why a request was refused, when the error is a refusal (shed load, not served). */
  failedWith(err: unknown): void {
    this.rejectReason ??= rejectReasonOf(err);
  }
}

/** The dust_rejected_total reason of a refusal; undefined for errors that are not refusals. */
export function rejectReasonOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof OverloadedError) return e.reason;
    if (e instanceof UnavailableError) return 'unavailable';
  }
  return undefined;
}

const storage = new AsyncLocalStorage<CallScope>();

export function runInCallScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The current call's scope; undefined outside a call (or when no metrics interceptor is installed). */
export function currentCallScope(): CallScope | undefined {
  return storage.getStore();
}
