/**
 * The one way a test waits for something it cannot await directly (a child process, a file watcher, another
 * thread, a server's view of the world): poll a condition until it holds, and fail with what was awaited once a
 * deadline passes. Never a fixed sleep: a sleep is too short on a busy machine and wastes time on an idle one.
 * Where time itself is under test, use the injected clock (src/engine/testing/fakes.ts ManualClock) instead.
 */

export interface EventuallyOptions {
  /** What is awaited, for the failure message. */
  readonly what?: string;
  /** How long to wait before failing; 10 s unless told. */
  readonly timeoutMs?: number;
  /** Time between checks; 20 ms unless told. */
  readonly intervalMs?: number;
}

/**
 * Resolves once `done()` holds. A `done` that throws counts as "not yet" (e.g. a port that is not open yet);
 * the last error is the failure's `cause` when the deadline passes.
 */
export async function eventually(done: () => boolean | Promise<boolean>, options: EventuallyOptions | number = {}): Promise<void> {
  const { what = 'the condition', timeoutMs = 10_000, intervalMs = 20 } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await done()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Lets everything already queued on the event loop run (timers due now, I/O callbacks, then setImmediate): for
 * checking that something did NOT happen in response to a step, without guessing a duration.
 */
export async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
}
