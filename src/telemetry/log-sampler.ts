/**
 * Log lines that a caller can trigger at will (a refused credential, a failing call) must not let that caller
 * flood the logs: per window, the first occurrence of each key (a caller) is written, its repeats are only
 * counted, and one summary line reports them when the window closes. At most `maxKeys` keys are tracked per
 * window, so a caller rotating addresses or tokens neither grows memory nor the log beyond `maxKeys` lines per
 * window: occurrences of keys past the cap are counted in the summary without lines of their own.
 *
 * LogSampler is the pure decision, on an injected clock; sampledLog binds it to a logger and a timer.
 */
import type { Logger } from 'pino';

/** Length of a sampling window. */
export const DEFAULT_LOG_SAMPLE_WINDOW_MS = 10_000;
/** Keys tracked per window, hence also the most individual lines per window. */
export const DEFAULT_LOG_SAMPLE_KEYS = 100;
/** Keys named in a window's summary, those with the most repeats. */
export const LOG_SAMPLE_TOP_KEYS = 5;

export interface LogSamplerOptions {
  readonly windowMs: number;
  readonly maxKeys: number;
}

/** What a closed window did not write. */
export interface SampleSummary {
  /** Occurrences not written: repeats of tracked keys plus everything of untracked keys. */
  readonly suppressed: number;
  /** Distinct keys tracked (each had its first occurrence written). */
  readonly keys: number;
  /** Occurrences of keys beyond maxKeys. */
  readonly untracked: number;
  /** The keys with the most repeats, most first. */
  readonly top: ReadonlyArray<{ readonly key: string; readonly repeats: number }>;
  readonly windowMs: number;
}

export class LogSampler {
  private windowStart: number | undefined;
  /** Repeats not written, per key tracked in the current window. */
  private readonly repeats = new Map<string, number>();
  private untracked = 0;

  constructor(
    readonly options: LogSamplerOptions,
    private readonly now: () => number,
  ) {}

  /** When the current window closes; undefined while no window is open. */
  get windowEnd(): number | undefined {
    return this.windowStart === undefined ? undefined : this.windowStart + this.options.windowMs;
  }

  /**
   * One occurrence of `key`: `write` says whether to write its line; `closed` is the summary of the window
   * that ended before it, if that window suppressed anything.
   */
  admit(key: string): { write: boolean; closed: SampleSummary | undefined } {
    const closed = this.closeIfDue();
    this.windowStart ??= this.now();
    const seen = this.repeats.get(key);
    if (seen !== undefined) {
      this.repeats.set(key, seen + 1);
      return { write: false, closed };
    }
    if (this.repeats.size >= this.options.maxKeys) {
      this.untracked++;
      return { write: false, closed };
    }
    this.repeats.set(key, 0);
    return { write: true, closed };
  }

  /** Closes the window if it has ended: its summary when it suppressed anything. */
  closeIfDue(): SampleSummary | undefined {
    const end = this.windowEnd;
    if (end === undefined || this.now() < end) return undefined;
    let suppressed = this.untracked;
    for (const n of this.repeats.values()) suppressed += n;
    const top = [...this.repeats]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, LOG_SAMPLE_TOP_KEYS)
      .map(([key, repeats]) => ({ key, repeats }));
    const summary: SampleSummary = { suppressed, keys: this.repeats.size, untracked: this.untracked, top, windowMs: this.options.windowMs };
    this.repeats.clear();
    this.untracked = 0;
    this.windowStart = undefined;
    return suppressed > 0 ? summary : undefined;
  }
}

export interface SampledLog {
  /** Writes `fields` with the sampled message when `key` has not been written this window; counts it otherwise. */
  write(key: string, fields: Record<string, unknown>): void;
}

/**
 * A sampled line at `level`: `msg` for the first occurrence of each key per window, `summaryMsg` for the
 * window's summary. The summary is written when the window closes, by a timer armed only while a window is
 * open (so an idle server holds none), or by the next occurrence after it, whichever comes first.
 */
export function sampledLog(
  log: Logger,
  level: 'warn' | 'error' | 'info',
  msg: string,
  summaryMsg: string,
  options: LogSamplerOptions = { windowMs: DEFAULT_LOG_SAMPLE_WINDOW_MS, maxKeys: DEFAULT_LOG_SAMPLE_KEYS },
): SampledLog {
  const sampler = new LogSampler(options, () => performance.now());
  let timer: NodeJS.Timeout | undefined;
  const report = (summary: SampleSummary | undefined) => {
    if (!summary) return;
    const { suppressed, keys, untracked, top, windowMs } = summary;
    log[level]({ suppressed, keys, untracked, top, windowSeconds: windowMs / 1000 }, summaryMsg);
  };
  const arm = () => {
    const end = sampler.windowEnd;
    if (timer || end === undefined) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        report(sampler.closeIfDue());
        // A timer may fire a fraction of a millisecond before the window's end on this clock: wait again.
        arm();
      },
      Math.max(1, Math.ceil(end - performance.now())),
    );
    // The summary of the last window before exit is not worth keeping a process alive for.
    timer.unref();
  };
  return {
    write(key, fields) {
      const { write, closed } = sampler.admit(key);
      report(closed);
      if (write) log[level](fields, msg);
      arm();
    },
  };
}
