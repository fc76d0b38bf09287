/**
 * `npm run bench:health-floor` end to end on the built programs: both servers, all three loads, every check
 * answered, and the hogs really took the cores (so the loaded rows measure what they say).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const BENCH = path.resolve('dist/bench/health-floor.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dust-health-floor-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface FloorRun {
  server: string;
  load: string;
  busyCores: number;
  health: { count: number; p50: number; p99: number; failures: Record<string, number>; notServing: number };
}

describe('npm run bench:health-floor', () => {
  it('probes a bare grpc-js health server and an idle dust-serve with free and busy cores', async () => {
    const out = path.join(tmp, 'floor.json');
    const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--seconds', '1', '--quiet', '--out', out], { timeout: 120_000 });
    const { runs } = JSON.parse(readFileSync(out, 'utf8')) as { runs: FloorRun[] };
    // stdout is the summary for a person: a line per run and where the JSON went.
    expect(stdout).toContain('idle dust-serve, hogs nice 0');
    expect(stdout).toContain(`JSON: ${out}`);
    expect(runs.map((r) => `${r.server} / ${r.load}`)).toEqual([
      'bare grpc-js health server / none',
      'bare grpc-js health server / nice 19',
      'bare grpc-js health server / nice 0',
      'idle dust-serve / none',
      'idle dust-serve / nice 19',
      'idle dust-serve / nice 0',
    ]);
    for (const r of runs) {
      // A check every 20 ms for a second.
      expect(r.health.count).toBeGreaterThan(20);
      expect(r.health.failures).toEqual({});
      expect(r.health.notServing).toBe(0);
      expect(r.health.p99).toBeGreaterThanOrEqual(r.health.p50);
    }
    // One hog keeps a core busy on its own.
    for (const r of runs.filter((x) => x.load !== 'none')) expect(r.busyCores).toBeGreaterThan(0.8);
  });
});
