/**
 * The soak run's verdict (bench/soak-verdict.ts) on synthetic series: a plateau passes, a leak, a p99 that
 * drifts up, a crash, failed health checks or failed good requests fail, and a run without data never passes.
 */
import { describe, expect, it } from 'vitest';
import { rssSlopeMbPerHour, soakVerdict, type SoakBounds, type SoakSamples } from './soak-verdict.js';
import { mulberry32 } from '@dust-serve/sim-push';

const MINUTES = 30;
const bounds: SoakBounds = {
  warmupS: 300,
  rssSlopeWindowS: 600,
  maxRssSlopeMbPerHour: 50,
  rssMedianWindowS: 60,
  maxRssGrowthMb: 64,
  p99WindowS: 600,
  maxP99Ratio: 1.25,
  p99SlackMs: 5,
};

/** RSS every 5 s: `shape(s)` plus +-8 MB of noise (a GC sawtooth is not smooth). */
function rssSeries(shape: (s: number) => number): SoakSamples['rss'] {
  const random = mulberry32(1);
  return Array.from({ length: (MINUTES * 60) / 5 + 1 }, (_, i) => ({ s: i * 5, mb: shape(i * 5) + (random() - 0.5) * 16 }));
}

/** 50 answers per second with latencies around 40 ms; `p99At(s)` is the tail at time s. */
function latencySeries(tail: (s: number) => number): SoakSamples['latencies'] {
  const random = mulberry32(2);
  const out: Array<{ s: number; ms: number }> = [];
  for (let s = 0; s < MINUTES * 60; s += 0.02) out.push({ s, ms: random() < 0.02 ? tail(s) * (0.9 + 0.2 * random()) : 30 + 20 * random() });
  return out;
}

const plateau = (s: number) => 180 + 120 * (1 - Math.exp(-s / 120));
const steadyTail = () => 90;

function samples(over: Partial<SoakSamples> = {}): SoakSamples {
  return {
    durationS: MINUTES * 60,
    rss: rssSeries(plateau),
    latencies: latencySeries(steadyTail),
    goodErrors: {},
    crash: undefined,
    servingAfter: 'SERVING',
    healthChecks: 90_000,
    healthFailures: {},
    healthNotServing: 0,
    hostileUnacceptable: 0,
    ...over,
  };
}

describe('soak verdict', () => {
  it('passes a server whose RSS levels off after warm-up and whose p99 holds', () => {
    const v = soakVerdict(samples(), bounds);
    expect(Object.entries(v.checks).filter(([, c]) => !c.pass)).toEqual([]);
    expect(v.pass).toBe(true);
    expect(Math.abs(v.checks.rssSlope.value as number)).toBeLessThan(20);
  });

  it('fails a leak of 3 MB a minute (180 MB/h), on slope and on growth', () => {
    const v = soakVerdict(samples({ rss: rssSeries((s) => 200 + (3 * s) / 60) }), bounds);
    expect(v.checks.rssSlope.pass).toBe(false);
    expect(v.checks.rssSlope.value as number).toBeGreaterThan(150);
    expect(v.checks.rssGrowth.pass).toBe(false);
    expect(v.pass).toBe(false);
  });

  it('fails a slow leak on the slope even when the total growth is within its bound', () => {
    const v = soakVerdict(samples({ rss: rssSeries((s) => 200 + s / 60) }), bounds);
    expect(v.checks.rssGrowth.pass).toBe(true);
    expect(v.checks.rssSlope.pass).toBe(false);
  });

  it('fails a p99 that drifts up over the run', () => {
    const v = soakVerdict(samples({ latencies: latencySeries((s) => 90 + s / 20) }), bounds);
    expect(v.checks.p99.pass).toBe(false);
    const value = v.checks.p99.value as { firstMs: number; lastMs: number };
    expect(value.lastMs).toBeGreaterThan(value.firstMs * 1.25);
  });

  it('fails a crash, a failed health check, a failed good request or an unacceptable hostile status', () => {
    expect(soakVerdict(samples({ crash: { atS: 900, code: null, signal: 'SIGSEGV' }, durationS: 900 }), bounds).checks.noCrash.pass).toBe(false);
    expect(soakVerdict(samples({ servingAfter: 'failed: UNAVAILABLE' }), bounds).checks.noCrash.pass).toBe(false);
    expect(soakVerdict(samples({ healthFailures: { DEADLINE_EXCEEDED: 1 } }), bounds).checks.health.pass).toBe(false);
    expect(soakVerdict(samples({ healthNotServing: 3 }), bounds).checks.health.pass).toBe(false);
    expect(soakVerdict(samples({ goodErrors: { UNAVAILABLE: 2 } }), bounds).checks.goodRobots.pass).toBe(false);
    expect(soakVerdict(samples({ hostileUnacceptable: 1 }), bounds).checks.hostile.pass).toBe(false);
  });

  it('never passes without data', () => {
    const v = soakVerdict(samples({ rss: [], latencies: [], healthChecks: 0 }), bounds);
    expect(v.pass).toBe(false);
    expect(v.checks.rssSlope.pass).toBe(false);
    expect(v.checks.p99.pass).toBe(false);
  });

  it('shrinks its windows to fit a short run (a smoke test of a minute)', () => {
    const short = { ...bounds, warmupS: 10 };
    const rss = Array.from({ length: 13 }, (_, i) => ({ s: i * 5, mb: 250 }));
    const latencies = Array.from({ length: 3000 }, (_, i) => ({ s: i * 0.02, ms: 40 }));
    const v = soakVerdict(samples({ durationS: 60, rss, latencies }), short);
    expect(v.pass).toBe(true);
    expect(v.checks.p99.bound).toMatch(/last 25 s/);
  });

  it('fits the slope in MB per hour', () => {
    expect(
      rssSlopeMbPerHour([
        { s: 0, mb: 100 },
        { s: 1800, mb: 110 },
        { s: 3600, mb: 120 },
      ]),
    ).toBeCloseTo(20);
  });
});
