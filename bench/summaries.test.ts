/**
 * The lines each benchmark prints for a person (summaries.ts): the key numbers and the verdict against its
 * targets, on small hand-made results.
 */
import { describe, expect, it } from 'vitest';
import type { SoakVerdict } from './soak-verdict.js';
import {
  abuseSummary,
  fleetSummary,
  healthFloorSummary,
  nativeSummary,
  pushFleetSummary,
  soakSummary,
  streamFloodSummary,
  valueTargetLines,
} from './summaries.js';
import type { TargetResult } from './targets.js';

const latency = (p50: number, p99: number) => ({ latencyMs: { p50, p99 } });

describe('fleetSummary', () => {
  it('gives each mode its throughput, per-class latency and health p99, then the ratios between modes', () => {
    const lines = fleetSummary({
      modes: {
        step: { throughputRps: 812, classes: { '4:4': latency(70, 120) }, health: { p99: 3.1 } },
        'max-batch-1': { throughputRps: 190, classes: { '4:4': latency(300, 420) }, health: { p99: 2.2 } },
        offline: { throughputRps: 900, bestBatch: 64 },
      },
      comparisons: { stepOverMaxBatch1Throughput: 4.2737, stepOverOfflineThroughput: 0.9022 },
    });
    expect(lines).toEqual([
      'step: 812 req/s; 4:4 p50 70 ms, p99 120 ms; health p99 3.1 ms',
      'max-batch-1: 190 req/s; 4:4 p50 300 ms, p99 420 ms; health p99 2.2 ms',
      'offline: 900 req/s (batch 64)',
      'stepOverMaxBatch1Throughput: 4.2737',
      'stepOverOfflineThroughput: 0.9022',
    ]);
  });

  it('with --targets gives each target its verdict, the disturbed runs, and how many pass', () => {
    const t = (ratio: number, threshold: number, pass: boolean): TargetResult => ({ target: 'x', ratio, op: '>=', threshold, pass, detail: {} });
    const lines = fleetSummary({ targets: { '4a': t(4.3, 4, true), '4b': t(0.8, 0.85, false) }, disturbance: { 'step 4:4': 0.05, 'offline 4:4': 0.4 } });
    expect(lines[0]).toMatch(/^4a\s+PASS\s+4\.3 >= 4\b/);
    expect(lines[1]).toMatch(/^4b\s+FAIL\s+0\.8 >= 0\.85\b/);
    expect(lines.slice(2)).toEqual(['disturbed runs (other work, cores): offline 4:4 0.4', 'verdict: 1/2 targets pass']);
  });
});

describe('valueTargetLines and abuseSummary', () => {
  const targets = {
    healthP99Ms: { value: 4.2, threshold: 10, pass: true },
    goodRobotErrors: { value: { UNAVAILABLE: 2 }, pass: false },
    serverServingAfter: { value: 'SERVING', pass: true },
  };

  it('lists each target with its value and limit, and names the failed ones in the verdict', () => {
    expect(valueTargetLines(targets)).toEqual([
      'healthP99Ms         PASS  4.2 (limit 10)',
      'goodRobotErrors     FAIL  {"UNAVAILABLE":2}',
      'serverServingAfter  PASS  SERVING',
      'verdict: FAIL (goodRobotErrors)',
    ]);
  });

  it('abuse leads with the hostile calls it sent', () => {
    const lines = abuseSummary({ attack: { hostile: { calls: 2000, callsPerSecond: 150.2 } }, targets: { healthP99Ms: targets.healthP99Ms } });
    expect(lines).toEqual(['2000 hostile calls (150.2/s)', 'healthP99Ms  PASS  4.2 (limit 10)', 'verdict: PASS']);
  });
});

describe('streamFloodSummary', () => {
  it('gives each attack its health p99, RSS growth and state after, and the overall verdict', () => {
    const attack = (kind: string, p99: number, pass: boolean) => ({
      kind,
      connections: 4,
      streamsWritten: 4000,
      rssMb: { growth: 12.5 },
      health: { p99 },
      serverAfter: 'SERVING',
      targets: { healthP99Ms: { value: p99, threshold: 10, pass } },
    });
    expect(streamFloodSummary({ attacks: [attack('open streams', 3, true), attack('headers only', 14, false)], pass: false })).toEqual([
      'open streams: 4 connections, 4000 streams; health p99 3 ms, RSS +12.5 MB, SERVING after: PASS',
      'headers only: 4 connections, 4000 streams; health p99 14 ms, RSS +12.5 MB, SERVING after: FAIL (healthP99Ms)',
      'verdict: FAIL',
    ]);
  });
});

describe('soakSummary', () => {
  it('gives each check of the verdict with its bound and names the failed ones', () => {
    const check = (pass: boolean, value: unknown, bound: string) => ({ pass, value, bound });
    const verdict = {
      pass: false,
      checks: {
        noCrash: check(true, null, 'no exit'),
        health: check(true, 0, 'no failed check'),
        goodRobots: check(true, {}, 'no errors'),
        hostile: check(true, 0, 'no unacceptable status'),
        rssSlope: check(false, 80, '<= 50 MB/h'),
        rssGrowth: check(true, 20, '<= 64 MB'),
        p99: check(true, 1.1, '<= 1.25x'),
      },
    } as SoakVerdict;
    const lines = soakSummary({ ranS: 1800, good: { answered: 90000 }, verdict });
    expect(lines[0]).toBe('1800 s, 90000 good answers');
    expect(lines).toContain('rssSlope: FAIL  80 (<= 50 MB/h)');
    expect(lines.at(-1)).toBe('verdict: FAIL (rssSlope)');
  });
});

describe('healthFloorSummary, nativeSummary, pushFleetSummary', () => {
  it('health floor: one line per server and load', () => {
    expect(healthFloorSummary({ runs: [{ server: 'idle dust-serve', load: 'nice 0', busyCores: 1.02, health: { p50: 0.4, p99: 1.9 } }] })).toEqual([
      'idle dust-serve, hogs nice 0 (1.02 cores busy): health p50 0.4 ms, p99 1.9 ms',
    ]);
  });

  it('native: the time ratio per batch for prefix steps, scattered steps and VLM calls', () => {
    const r = (x: number) => ({ native: 1, onnxruntimeNode: 1, nativeOverOnnxruntimeNode: x });
    expect(nativeSummary({ step: { prefix: { 8: r(1), 64: r(0.99) }, scattered: { 8: r(1.016) } }, vlm: {} })).toEqual([
      'native / onnxruntime-node time per call (below 1: native faster)',
      'step, prefix rows: B=8 1, B=64 0.99',
      'step, scattered rows: B=8 1.016',
    ]);
  });

  it('push fleet: success per condition with its interval, or the A/B decision', () => {
    const condition = { id: 'v1-4x4', successes: 3, episodes: 4, ci95: [0.3, 0.95] as const, latency_ms: { p50: 21 }, errors: { UNAVAILABLE: 1 } };
    expect(pushFleetSummary({ conditions: [condition] })).toEqual(['v1-4x4: 3/4 succeeded (95% CI 0.3-0.95), latency p50 21 ms, 1 errors']);
    expect(pushFleetSummary({ ab: { control_version: 3, candidate_version: 1, decision: 'control', episodes_started: 8 } })).toEqual([
      'A/B v3 (control) against v1: 8 episodes, decision control',
    ]);
  });
});
