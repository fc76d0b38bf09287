/** Summary statistics over plain arrays of samples. Pure. */
import { mean, quantileSorted } from 'simple-statistics';

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

const EMPTY: LatencySummary = Object.freeze({ count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN });

/** Rounds to 3 decimals so the JSON stays readable; NaN (no samples) becomes null in JSON. */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) return EMPTY;
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  return {
    count: arr.length,
    mean: round(mean(arr)),
    p50: round(quantileSorted(arr, 0.5)),
    p90: round(quantileSorted(arr, 0.9)),
    p99: round(quantileSorted(arr, 0.99)),
    max: round(arr[arr.length - 1]),
  };
}

export function meanOf(samples: readonly number[]): number {
  return samples.length === 0 ? NaN : round(mean(samples as number[]));
}

/** Median of a few repeated measurements (BENCHMARKS.md quotes medians of runs). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  return quantileSorted(Array.from(Float64Array.from(samples).sort()), 0.5);
}

/** Counts of each distinct value, keys in ascending numeric order. */
export function histogram(values: readonly number[]): Record<string, number> {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => a - b).map(([k, n]) => [String(k), n]));
}

/** Fraction of samples for which the predicate holds; NaN when there are none. */
export function fraction<T>(samples: readonly T[], predicate: (s: T) => boolean): number {
  if (samples.length === 0) return NaN;
  let n = 0;
  for (const s of samples) if (predicate(s)) n++;
  return round(n / samples.length, 4);
}
