/**
 * A connection's measured latency, from which real-time chunking estimates the delay d of a prefix that gives
 * its control period instead (docs/api.md, "Real-time chunking"): a moving average of the server's receipt-to-
 * response time (`timing.total_ms`) of the connection's earlier answers. A StreamPredict stream and an openpi
 * connection keep one each. Pure.
 */

/** Weight of the newest response in the average: a few responses follow a change of load. */
export const LATENCY_SMOOTHING = 0.25;

/** The average after one more response of `totalMs`; the first response is the average. */
export function nextMeasuredLatency(averageMs: number | undefined, totalMs: number): number {
  return averageMs === undefined ? totalMs : averageMs + LATENCY_SMOOTHING * (totalMs - averageMs);
}
