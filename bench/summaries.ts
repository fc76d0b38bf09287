/**
 * The few lines each benchmark prints for a person (results.ts writes them under a heading, then where the JSON
 * went): the key numbers and, where the benchmark has targets, each verdict. Plain functions over the parts of a
 * result they read, so a test can hand them small objects.
 */
import { DISTURBED_CORES } from './options.js';
import type { SoakVerdict } from './soak-verdict.js';
import { verdictLines, type TargetName, type TargetResult } from './targets.js';

/** A target as abuse and stream-flood record it: the measured value, its limit where it has one, the verdict. */
export interface ValueTarget {
  readonly value: unknown;
  readonly threshold?: number;
  readonly pass: boolean;
}

const verdict = (pass: boolean) => (pass ? 'PASS' : 'FAIL');

/** "name PASS value (limit threshold)" per target, then the overall verdict. */
export function valueTargetLines(targets: Readonly<Record<string, ValueTarget>>): string[] {
  const entries = Object.entries(targets);
  const width = Math.max(0, ...entries.map(([name]) => name.length));
  const lines = entries.map(
    ([name, t]) =>
      `${name.padEnd(width)}  ${verdict(t.pass)}  ${typeof t.value === 'object' ? JSON.stringify(t.value) : String(t.value)}${t.threshold === undefined ? '' : ` (limit ${t.threshold})`}`,
  );
  const failed = entries.filter(([, t]) => !t.pass).map(([name]) => name);
  return [...lines, `verdict: ${failed.length === 0 ? 'PASS' : `FAIL (${failed.join(', ')})`}`];
}

export interface FleetRunSummary {
  readonly throughputRps: number;
  readonly bestBatch?: number;
  readonly health?: { readonly p99: number };
  readonly classes?: Readonly<Record<string, { readonly latencyMs: { readonly p50: number; readonly p99: number } }>>;
}

export interface FleetSummaryInput {
  readonly targets?: Partial<Record<TargetName, TargetResult>>;
  readonly disturbance?: Readonly<Record<string, number>>;
  readonly modes?: Readonly<Record<string, FleetRunSummary>>;
  readonly comparisons?: Readonly<Record<string, number>>;
}

/** `npm run bench`: each target's verdict with --targets; else each mode's throughput and latency, and the ratios. */
export function fleetSummary(r: FleetSummaryInput): string[] {
  if (r.targets) {
    const all = Object.values(r.targets).filter((t): t is TargetResult => t !== undefined);
    const disturbed = Object.entries(r.disturbance ?? {}).filter(([, cores]) => cores > DISTURBED_CORES);
    return [
      ...verdictLines(r.targets),
      ...(disturbed.length ? [`disturbed runs (other work, cores): ${disturbed.map(([n, c]) => `${n} ${c}`).join(', ')}`] : []),
      `verdict: ${all.filter((t) => t.pass).length}/${all.length} targets pass`,
    ];
  }
  const modes = Object.entries(r.modes ?? {}).map(([mode, m]) => {
    if (m.bestBatch !== undefined) return `${mode}: ${m.throughputRps} req/s (batch ${m.bestBatch})`;
    const classes = Object.entries(m.classes ?? {}).map(([label, c]) => `${label} p50 ${c.latencyMs.p50} ms, p99 ${c.latencyMs.p99} ms`);
    return [`${mode}: ${m.throughputRps} req/s`, ...classes, ...(m.health ? [`health p99 ${m.health.p99} ms`] : [])].join('; ');
  });
  return [...modes, ...Object.entries(r.comparisons ?? {}).map(([name, ratio]) => `${name}: ${ratio}`)];
}

/** `npm run bench:abuse`: the targets' verdicts. */
export function abuseSummary(r: {
  readonly attack: { readonly hostile: { readonly calls: number; readonly callsPerSecond: number } };
  readonly targets: Readonly<Record<string, ValueTarget>>;
}): string[] {
  return [`${r.attack.hostile.calls} hostile calls (${r.attack.hostile.callsPerSecond}/s)`, ...valueTargetLines(r.targets)];
}

export interface FloodAttackSummary {
  readonly kind: string;
  readonly connections: number;
  readonly streamsWritten: number;
  readonly rssMb: { readonly growth: number };
  readonly health: { readonly p99: number };
  readonly serverAfter: string;
  readonly targets: Readonly<Record<string, ValueTarget>>;
}

/** `npm run bench:stream-flood`: per attack the health-check p99 and the RSS growth, then the verdict. */
export function streamFloodSummary(r: { readonly attacks: readonly FloodAttackSummary[]; readonly pass: boolean }): string[] {
  return [
    ...r.attacks.map((a) => {
      const failed = Object.entries(a.targets)
        .filter(([, t]) => !t.pass)
        .map(([n]) => n);
      return `${a.kind}: ${a.connections} connections, ${a.streamsWritten} streams; health p99 ${a.health.p99} ms, RSS +${a.rssMb.growth} MB, ${a.serverAfter} after: ${failed.length === 0 ? 'PASS' : `FAIL (${failed.join(', ')})`}`;
    }),
    `verdict: ${verdict(r.pass)}`,
  ];
}

/** `npm run bench:soak`: each check of the verdict with its value and bound, then the verdict. */
export function soakSummary(r: { readonly ranS: number; readonly good: { readonly answered: number }; readonly verdict: SoakVerdict }): string[] {
  const checks = Object.entries(r.verdict.checks);
  const failed = checks.filter(([, c]) => !c.pass).map(([n]) => n);
  return [
    `${r.ranS} s, ${r.good.answered} good answers`,
    ...checks.map(([name, c]) => `${name}: ${verdict(c.pass)}  ${typeof c.value === 'object' ? JSON.stringify(c.value) : String(c.value)} (${c.bound})`),
    `verdict: ${r.verdict.pass ? 'PASS' : `FAIL (${failed.join(', ')})`}`,
  ];
}

/** `npm run bench:health-floor`: the health-check p50/p99 of each server under each load. */
export function healthFloorSummary(r: {
  readonly runs: ReadonlyArray<{
    readonly server: string;
    readonly load: string;
    readonly busyCores: number;
    readonly health: { readonly p50: number; readonly p99: number };
  }>;
}): string[] {
  return r.runs.map((x) => `${x.server}, hogs ${x.load} (${x.busyCores} cores busy): health p50 ${x.health.p50} ms, p99 ${x.health.p99} ms`);
}

type Timed = Readonly<Record<string, number>>;

/** `npm run bench:native`: the native executor's time over onnxruntime-node's, per batch. */
export function nativeSummary(r: {
  readonly step: { readonly prefix: Readonly<Record<string, Timed>>; readonly scattered: Readonly<Record<string, Timed>> };
  readonly vlm: Readonly<Record<string, Timed>>;
}): string[] {
  const ratios = (label: string, byBatch: Readonly<Record<string, Timed>>) => {
    const entries = Object.entries(byBatch);
    return entries.length === 0 ? [] : [`${label}: ${entries.map(([b, t]) => `B=${b} ${t.nativeOverOnnxruntimeNode}`).join(', ')}`];
  };
  return [
    'native / onnxruntime-node time per call (below 1: native faster)',
    ...ratios('step, prefix rows', r.step.prefix),
    ...ratios('step, scattered rows', r.step.scattered),
    ...ratios('VLM', r.vlm),
  ];
}

/** `npm run fleet`: each condition's success rate, or the A/B decision. */
export function pushFleetSummary(r: {
  readonly conditions?: ReadonlyArray<{
    readonly id: string;
    readonly successes: number;
    readonly episodes: number;
    readonly ci95: readonly [number, number];
    readonly latency_ms: { readonly p50: number };
    readonly errors: Readonly<Record<string, number>>;
  }>;
  readonly ab?: { readonly control_version: number; readonly candidate_version: number; readonly decision: string; readonly episodes_started: number };
}): string[] {
  if (r.ab) {
    return [`A/B v${r.ab.control_version} (control) against v${r.ab.candidate_version}: ${r.ab.episodes_started} episodes, decision ${r.ab.decision}`];
  }
  return (r.conditions ?? []).map((c) => {
    const errors = Object.values(c.errors).reduce((a, b) => a + b, 0);
    return `${c.id}: ${c.successes}/${c.episodes} succeeded (95% CI ${c.ci95[0]}-${c.ci95[1]}), latency p50 ${c.latency_ms.p50} ms${errors ? `, ${errors} errors` : ''}`;
  });
}
