/**
 * Debian's Prometheus binaries for the tests (`apt-get install prometheus`; .ci/run installs it), the metric
 * names the server must expose (docs/operations.md, "Metrics"), and a parser for the text format.
 */
import { execFileSync } from 'node:child_process';

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const PROMETHEUS = which('prometheus');
export const PROMTOOL = which('promtool');
export const NO_PROMETHEUS = 'Debian package prometheus not installed (apt-get install prometheus; .ci/run does)';

/** Histograms of the spec; each is exposed as <name>_bucket, <name>_sum and <name>_count. */
export const SPEC_HISTOGRAMS = [
  'dust_request_duration_seconds',
  'dust_queue_duration_seconds',
  'dust_vlm_batch_size',
  'dust_denoise_batch_size',
  'dust_batch_duration_seconds',
  'dust_vision_steps',
  'dust_world_model_surprise',
] as const;
export const SPEC_COUNTERS = ['dust_requests_total', 'dust_budget_miss_total', 'dust_rejected_total', 'dust_model_load_failures_total'] as const;
export const SPEC_GAUGES = ['dust_inflight_requests'] as const;

/** Every series name the server exposes for the spec's metrics. */
export const EXPOSED_SERIES: ReadonlySet<string> = new Set([
  ...SPEC_COUNTERS,
  ...SPEC_GAUGES,
  ...SPEC_HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
]);

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The Prometheus text exposition format: samples and the `# TYPE` of each metric family. */
export function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}
