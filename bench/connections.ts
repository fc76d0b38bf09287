/**
 * How many gRPC connections the simulated robots need. The server advertises at most `maxConcurrentStreams` streams
 * per HTTP/2 connection (docs/operations.md, "Open calls"); a grpc-js client holds the calls beyond that in its own
 * queue, where the server's clock has not started. 256 robots on one connection therefore measured 380 ms that no
 * server phase contained (BENCHMARKS.md, "Fourth H100 run"), and with long-lived streams the robots past the limit
 * never got a stream at all. Real robots each have a connection of their own; the bench gives the robots at least
 * enough connections that none waits for a stream. Pure.
 */
import { DEFAULT_SERVE_OPTIONS, OPTION_TABLE } from '../src/config/index.js';
import { serverFlag } from './results.js';

/** Streams per connection of a server started with these extra flags: the flag's value, else the option's default. */
export function streamsPerConnection(serverFlags: readonly string[]): number {
  const value = serverFlag(serverFlags, 'max-concurrent-streams');
  return value === undefined ? DEFAULT_SERVE_OPTIONS.maxConcurrentStreams : OPTION_TABLE.maxConcurrentStreams.schema.parse(value);
}

/** The connections to open: the ones asked for, raised so that no connection carries more robots than it has streams. */
export function robotConnections(asked: number, robots: number, streams: number): number {
  return Math.max(1, asked, Math.ceil(robots / streams));
}
