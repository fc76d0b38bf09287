import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS } from '../src/config/index.js';
import { robotConnections, streamsPerConnection } from './connections.js';

describe('robot connections', () => {
  it("reads the server's streams per connection from its flags, else the option's default", () => {
    expect(streamsPerConnection([])).toBe(DEFAULT_SERVE_OPTIONS.maxConcurrentStreams);
    expect(streamsPerConnection(['--threads', '2', '--max-concurrent-streams', '40'])).toBe(40);
    expect(streamsPerConnection(['--max-concurrent-streams=8'])).toBe(8);
  });

  it('opens enough connections that no robot waits in its client for a stream', () => {
    expect(robotConnections(1, 256, 100)).toBe(3);
    expect(robotConnections(1, 100, 100)).toBe(1);
    expect(robotConnections(1, 64, 100)).toBe(1);
    expect(robotConnections(64, 256, 100)).toBe(64);
    expect(robotConnections(0, 1, 100)).toBe(1);
  });
});
