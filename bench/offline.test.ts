/**
 * Offline mode runs the graphs on what the server's flags choose: a GPU run must not measure its offline limit on
 * the CPU (it once did, and never finished on the paper-size model).
 */
import { describe, expect, it } from 'vitest';
import { offlineEngine } from './offline.js';

describe('offlineEngine', () => {
  it("takes the server's --device, --executor and --cuda-graphs, in either flag form", () => {
    expect(offlineEngine(['--device', 'cuda', '--cuda-graphs', 'true'])).toEqual({ device: 'cuda', executor: 'auto', cudaGraphs: true });
    expect(offlineEngine(['--device', 'cuda', '--cuda-graphs=auto'])).toEqual({ device: 'cuda', executor: 'auto', cudaGraphs: 'auto' });
    expect(offlineEngine(['--threads', '1', '--device=webgpu', '--executor', 'onnxruntime-node'])).toEqual({
      device: 'webgpu',
      executor: 'onnxruntime-node',
      cudaGraphs: 'auto',
    });
  });

  it("defaults to the server's defaults, the last flag winning as on its command line", () => {
    const env = process.env.DUST_DEVICE;
    delete process.env.DUST_DEVICE;
    try {
      expect(offlineEngine([])).toEqual({ device: 'cpu', executor: 'auto', cudaGraphs: 'auto' });
      expect(offlineEngine(['--device', 'cuda', '--device', 'cpu']).device).toBe('cpu');
    } finally {
      if (env !== undefined) process.env.DUST_DEVICE = env;
    }
  });

  it('refuses a device it cannot run on alone, and values the server would refuse', () => {
    expect(() => offlineEngine(['--device', 'auto'])).toThrow(/give --device cpu, cuda or webgpu/);
    expect(() => offlineEngine(['--device', 'tpu'])).toThrow();
    expect(() => offlineEngine(['--cuda-graphs', 'maybe'])).toThrow();
  });
});
