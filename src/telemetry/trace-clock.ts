/**
 * The one clock every span of a request is timed by: the process's monotonic clock (performance.now()) put
 * on the epoch once, at process start (performance.timeOrigin).
 *
 * OpenTelemetry's span takes Date.now() for a span started without a time, and for the end of a span whose start
 * was given, at millisecond resolution and on the wall clock, which NTP may slew. A child timed on the
 * monotonic clock then ends up to a millisecond after a parent timed on the wall clock, and trace viewers draw
 * it outside its parent. Giving every start and end from this clock keeps children inside their parents.
 */
export function traceNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A performance.now() reading on the same clock as traceNow(). */
export function traceTime(performanceMs: number): number {
  return performance.timeOrigin + performanceMs;
}
