/**
 * The verdict of a soak run (bench:soak), from what it sampled. Pure: plain data in, the checks out, each with
 * its measured value and the bound it was held to, so the JSON states what "no growth" and "steady" meant.
 *
 * - noCrash: the server process never exited and answered SERVING on a fresh connection at the end.
 * - health: every health check of the run answered, and answered SERVING.
 * - goodRobots: no request of the good robots failed.
 * - hostile: no hostile call got a status outside OK, INVALID_ARGUMENT, NOT_FOUND or the server's own load
 *   shedding.
 * - rssSlope: the slope of a least-squares line through the RSS samples of the last `rssSlopeWindowS` seconds
 *   (after warm-up), in MB per hour, is at most `maxRssSlopeMbPerHour`. A plateau (allocator arenas, caches
 *   filling to their caps) passes; a leak keeps a slope.
 * - rssGrowth: the median RSS of the last `rssMedianWindowS` seconds minus that of the first
 *   `rssMedianWindowS` seconds after warm-up is at most `maxRssGrowthMb`.
 * - p99: the good robots' p99 latency over the last `p99WindowS` seconds is at most `maxP99Ratio` times that of
 *   the first `p99WindowS` seconds after warm-up, plus `p99SlackMs` (a few milliseconds of difference on a
 *   fast answer is not a trend).
 */
import { linearRegression, median, quantile } from 'simple-statistics';
import { round } from './stats.js';

export interface SoakBounds {
  readonly warmupS: number;
  readonly rssSlopeWindowS: number;
  readonly maxRssSlopeMbPerHour: number;
  readonly rssMedianWindowS: number;
  readonly maxRssGrowthMb: number;
  readonly p99WindowS: number;
  readonly maxP99Ratio: number;
  readonly p99SlackMs: number;
}

export interface SoakSamples {
  /** Seconds the load ran (ends early on a crash). */
  readonly durationS: number;
  /** Server RSS over time: seconds since the load started, MiB. */
  readonly rss: ReadonlyArray<{ readonly s: number; readonly mb: number }>;
  /** Good robots' answered requests: completion time (seconds since the load started) and latency. */
  readonly latencies: ReadonlyArray<{ readonly s: number; readonly ms: number }>;
  readonly goodErrors: Readonly<Record<string, number>>;
  readonly crash: { readonly atS: number; readonly code: number | null; readonly signal: string | null } | undefined;
  /** Health status on a fresh connection after the run. */
  readonly servingAfter: string;
  readonly healthChecks: number;
  readonly healthFailures: Readonly<Record<string, number>>;
  readonly healthNotServing: number;
  readonly hostileUnacceptable: number;
}

export interface Check {
  readonly pass: boolean;
  readonly value: unknown;
  readonly bound: string;
  readonly detail?: Record<string, unknown>;
}

export interface SoakVerdict {
  readonly pass: boolean;
  readonly checks: Record<'noCrash' | 'health' | 'goodRobots' | 'hostile' | 'rssSlope' | 'rssGrowth' | 'p99', Check>;
}

const within = <T extends { s: number }>(xs: readonly T[], from: number, to: number) => xs.filter((x) => x.s >= from && x.s <= to);
const sum = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);

/** The slope of RSS over time in MB per hour, or NaN with fewer than 3 samples. */
export function rssSlopeMbPerHour(samples: ReadonlyArray<{ s: number; mb: number }>): number {
  if (samples.length < 3) return NaN;
  return linearRegression(samples.map((x) => [x.s, x.mb])).m * 3600;
}

function p99(samples: ReadonlyArray<{ ms: number }>): number {
  return samples.length === 0
    ? NaN
    : quantile(
        samples.map((x) => x.ms),
        0.99,
      );
}

export function soakVerdict(d: SoakSamples, b: SoakBounds): SoakVerdict {
  const end = d.durationS;
  const after = Math.min(b.warmupS, end);
  const measuredS = end - after;

  const slopeFrom = Math.max(after, end - b.rssSlopeWindowS);
  const slopeSamples = within(d.rss, slopeFrom, end);
  const slope = rssSlopeMbPerHour(slopeSamples);

  const medianWindow = Math.min(b.rssMedianWindowS, measuredS / 2);
  const firstRss = within(d.rss, after, after + medianWindow).map((x) => x.mb);
  const lastRss = within(d.rss, end - medianWindow, end).map((x) => x.mb);
  const growth = firstRss.length && lastRss.length ? median(lastRss) - median(firstRss) : NaN;

  const p99Window = Math.min(b.p99WindowS, measuredS / 2);
  const firstP99 = p99(within(d.latencies, after, after + p99Window));
  const lastP99 = p99(within(d.latencies, end - p99Window, end));
  const p99Bound = firstP99 * b.maxP99Ratio + b.p99SlackMs;

  const goodErrors = sum(d.goodErrors);
  const healthFailed = sum(d.healthFailures);
  const checks: SoakVerdict['checks'] = {
    noCrash: {
      pass: !d.crash && d.servingAfter === 'SERVING',
      value: d.crash ?? { servingAfter: d.servingAfter },
      bound: 'the server never exits and answers SERVING after the run',
    },
    health: {
      pass: healthFailed === 0 && d.healthNotServing === 0 && d.healthChecks > 0,
      value: { checks: d.healthChecks, failed: healthFailed, notServing: d.healthNotServing },
      bound: 'every health check answered SERVING',
      detail: { failures: d.healthFailures },
    },
    goodRobots: {
      pass: goodErrors === 0 && d.latencies.length > 0,
      value: { answered: d.latencies.length, failed: goodErrors },
      bound: 'no request of the good robots fails',
      detail: { errors: d.goodErrors },
    },
    hostile: {
      pass: d.hostileUnacceptable === 0,
      value: d.hostileUnacceptable,
      bound: 'every hostile call gets OK, INVALID_ARGUMENT, NOT_FOUND or load shedding',
    },
    rssSlope: {
      pass: slope <= b.maxRssSlopeMbPerHour,
      value: round(slope, 1),
      bound: `least-squares slope of RSS over the last ${round((end - slopeFrom) / 60, 2)} min after warm-up <= ${b.maxRssSlopeMbPerHour} MB/h`,
      detail: { fromS: round(slopeFrom, 1), toS: round(end, 1), samples: slopeSamples.length },
    },
    rssGrowth: {
      pass: growth <= b.maxRssGrowthMb,
      value: round(growth, 1),
      bound: `median RSS of the last ${round(medianWindow, 1)} s minus that of the first ${round(medianWindow, 1)} s after warm-up <= ${b.maxRssGrowthMb} MB`,
      detail: { firstMedianMb: firstRss.length ? median(firstRss) : null, lastMedianMb: lastRss.length ? median(lastRss) : null },
    },
    p99: {
      pass: lastP99 <= p99Bound,
      value: { firstMs: round(firstP99, 1), lastMs: round(lastP99, 1), ratio: round(lastP99 / firstP99, 3) },
      bound: `p99 of the last ${round(p99Window, 1)} s <= ${b.maxP99Ratio} x p99 of the first ${round(p99Window, 1)} s after warm-up + ${b.p99SlackMs} ms (= ${round(p99Bound, 1)} ms)`,
    },
  };
  // NaN compares false: a check without data fails rather than passing silently.
  return { pass: Object.values(checks).every((c) => c.pass), checks };
}
