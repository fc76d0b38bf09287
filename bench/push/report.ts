/** Fleet results -> the JSON report: per-condition success with intervals, paired comparisons, the plot. Pure. */
import { wilsonInterval } from '../../src/experiment/index.js';
import { histogram, meanOf, round, summarize, type LatencySummary } from '../stats.js';
import type { Condition } from './conditions.js';
import type { PlotSpec, Series } from './plot.js';
import type { EpisodeResult } from './push-robot.js';
import { mcnemarExact } from './success-stats.js';
import { lateSwitchFraction } from './chunk-metrics.js';

export interface ConditionSummary {
  readonly id: string;
  readonly model: string;
  readonly version: number;
  readonly action_steps: number;
  readonly vision_steps: number;
  readonly budget_ms: number;
  readonly episodes: number;
  readonly successes: number;
  readonly success_rate: number;
  readonly ci95: readonly [number, number];
  readonly by_embodiment: Record<string, { episodes: number; successes: number; success_rate: number }>;
  /** Mean control steps of the successful episodes. */
  readonly mean_steps_to_success: number;
  readonly mean_final_distance_m: number;
  readonly requests: number;
  readonly latency_ms: LatencySummary;
  /** N_o the server used, counted over requests. */
  readonly vision_steps_used: Record<string, number>;
  readonly mean_vision_steps_used: number;
  readonly budget_met_fraction: number | null;
  readonly stale_actions_per_request: number;
  readonly hold_ticks_per_episode: number;
  readonly late_ticks: number;
  readonly mean_world_model_surprise: number;
  /**
   * Real-time chunking: the mean ||a_new(k) - a_old(k)|| over chunk switches (k the ticks from observation to
   * switch, chunk-metrics.ts; null where the old chunk had no action for the switch's tick), the switches it is
   * over, the mean step of the executed commands at a switch (from the last executed action), and the mean jerk of the executed actions (m/s^3 for the
   * push task's pusher targets).
   */
  readonly mean_boundary_discontinuity: number;
  readonly switches: number;
  readonly mean_switch_step: number;
  readonly mean_switch_delay_steps: number;
  /** The mean d the server assumed (declared by the robot or estimated) over switches whose request had a prefix. */
  readonly mean_assumed_delay_steps: number;
  /** Share of those switches that came later than the assumed d (chunk-metrics.ts lateSwitchFraction). */
  readonly late_switch_fraction: number;
  readonly mean_jerk: number;
  readonly errors: Record<string, number>;
  /** ReportOutcome answers: version credited -> episodes (or "error:<code>"). */
  readonly credited: Record<string, number>;
  /** Episodes credited to a version other than the one every request of the episode was pinned to. */
  readonly credit_mismatches: number;
  readonly wall_s: number;
  /** CPU seconds the server process used during the condition (all threads); null with --address. */
  readonly server_cpu_s: number | null;
}

function count(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

export function summarizeCondition(c: Condition, model: string, results: readonly EpisodeResult[], wallS: number, serverCpuS?: number): ConditionSummary {
  const n = results.length;
  const wins = results.filter((r) => r.success);
  const ci95 = wilsonInterval({ successes: wins.length, trials: n });
  const byEmbodiment: ConditionSummary['by_embodiment'] = {};
  for (const e of new Set(results.map((r) => r.embodiment))) {
    const rs = results.filter((r) => r.embodiment === e);
    const s = rs.filter((r) => r.success).length;
    byEmbodiment[e] = { episodes: rs.length, successes: s, success_rate: round(s / rs.length, 4) };
  }
  const requests = results.reduce((a, r) => a + r.requests, 0);
  const answered = results.reduce((a, r) => a + r.visionStepsUsed.length, 0);
  const vision = results.flatMap((r) => r.visionStepsUsed);
  const credited = results.map((r) => ('error' in r.credited ? `error:${r.credited.error}` : String(r.credited.version)));
  const mismatches = results.filter((r) => 'error' in r.credited || r.credited.version !== c.version || r.servedVersions.some((v) => v !== c.version)).length;
  return {
    id: c.id,
    model,
    version: c.version,
    action_steps: c.actionSteps,
    vision_steps: c.visionSteps,
    budget_ms: c.budgetMs,
    episodes: n,
    successes: wins.length,
    success_rate: round(wins.length / n, 4),
    ci95: [round(ci95.low, 4), round(ci95.high, 4)],
    by_embodiment: byEmbodiment,
    mean_steps_to_success: meanOf(wins.map((r) => r.steps)),
    mean_final_distance_m: meanOf(results.map((r) => r.finalDistance)),
    requests,
    latency_ms: summarize(results.flatMap((r) => r.latenciesMs)),
    vision_steps_used: histogram(vision),
    mean_vision_steps_used: meanOf(vision),
    budget_met_fraction: c.budgetMs > 0 && answered > 0 ? round(results.reduce((a, r) => a + r.budgetMet, 0) / answered, 4) : null,
    stale_actions_per_request: answered > 0 ? round(results.reduce((a, r) => a + r.staleActions, 0) / answered) : 0,
    hold_ticks_per_episode: round(results.reduce((a, r) => a + r.holdTicks, 0) / n),
    late_ticks: results.reduce((a, r) => a + r.lateTicks, 0),
    mean_world_model_surprise: meanOf(results.flatMap((r) => r.surprises)),
    mean_boundary_discontinuity: meanOf(results.flatMap((r) => r.boundaryDiscontinuities)),
    switches: results.reduce((a, r) => a + r.switchDelays.length, 0),
    mean_switch_step: meanOf(results.flatMap((r) => r.switchSteps)),
    mean_switch_delay_steps: meanOf(results.flatMap((r) => r.switchDelays)),
    mean_assumed_delay_steps: meanOf(results.flatMap((r) => r.assumedDelays.filter((d) => d >= 0))),
    late_switch_fraction: round(
      lateSwitchFraction(
        results.flatMap((r) => r.switchDelays),
        results.flatMap((r) => r.assumedDelays),
      ),
      4,
    ),
    mean_jerk: meanOf(results.map((r) => r.jerk)),
    errors: count(results.flatMap((r) => r.errors)),
    credited: count(credited),
    credit_mismatches: mismatches,
    wall_s: round(wallS, 1),
    server_cpu_s: serverCpuS === undefined ? null : round(serverCpuS, 1),
  };
}

export interface Comparison {
  readonly a: string;
  readonly b: string;
  readonly success_a: number;
  readonly success_b: number;
  /** Paired on layouts: episodes only A solved, only B solved. */
  readonly only_a: number;
  readonly only_b: number;
  /** Exact McNemar test of equal success. */
  readonly p_value: number;
}

function compare(a: string, b: string, ra: readonly EpisodeResult[], rb: readonly EpisodeResult[]): Comparison {
  const bySeed = new Map(rb.map((r) => [r.seed, r.success]));
  let onlyA = 0;
  let onlyB = 0;
  for (const r of ra) {
    const other = bySeed.get(r.seed);
    if (other === undefined) continue;
    if (r.success && !other) onlyA++;
    if (!r.success && other) onlyB++;
  }
  const rate = (rs: readonly EpisodeResult[]) => round(rs.filter((r) => r.success).length / rs.length, 4);
  return { a, b, success_a: rate(ra), success_b: rate(rb), only_a: onlyA, only_b: onlyB, p_value: round(mcnemarExact(onlyA, onlyB), 4) };
}

/**
 * The comparisons each experiment is about. The base is the version of the first condition (version 1 in every
 * named experiment; the first of `--conditions` otherwise): it against every other version at the same sampling
 * settings; for the base, every setting against N_A = N_o = 4, and asynchronous (N_A = 4) against synchronous
 * (N_A = N_o) at the same N_o, i.e. the same number of denoiser evaluations.
 */
export function compareConditions(conditions: readonly Condition[], results: ReadonlyMap<string, readonly EpisodeResult[]>): Comparison[] {
  const out: Comparison[] = [];
  if (conditions.length === 0) return out;
  const baseVersion = conditions[0].version;
  const get = (c: Condition) => results.get(c.id) ?? [];
  const same = (x: Condition, y: Condition) => x.actionSteps === y.actionSteps && x.visionSteps === y.visionSteps && x.budgetMs === y.budgetMs;
  for (const c of conditions) {
    if (c.version === baseVersion) continue;
    const base = conditions.find((x) => x.version === baseVersion && same(x, c));
    if (base) out.push(compare(base.id, c.id, get(base), get(c)));
  }
  const own = conditions.filter((c) => c.version === baseVersion);
  const reference = own.find((c) => c.actionSteps === 4 && c.visionSteps === 4 && c.budgetMs === 0);
  for (const c of own) {
    if (reference && c !== reference) out.push(compare(c.id, reference.id, get(c), get(reference)));
    if (c.actionSteps === 4 && c.budgetMs === 0 && c.visionSteps > 4) {
      const sync = own.find((x) => x.actionSteps === c.visionSteps && x.visionSteps === c.visionSteps && x.budgetMs === 0);
      if (sync) out.push(compare(c.id, sync.id, get(c), get(sync)));
    }
  }
  return out;
}

/**
 * Success vs N_o for the base version (the first condition's, as in compareConditions): N_A = 4 (asynchronous) and
 * N_A = N_o (synchronous); undefined without them.
 */
export function scalingPlot(
  summaries: readonly ConditionSummary[],
  settings: { episodes_per_condition: number; robots: number; held_out_seeds: readonly number[] },
): PlotSpec | undefined {
  if (summaries.length === 0) return undefined;
  const version = summaries[0].version;
  const own = summaries.filter((s) => s.version === version && s.budget_ms === 0);
  const point = (s: ConditionSummary) => ({ x: s.vision_steps, rate: s.success_rate, lo: s.ci95[0], hi: s.ci95[1], n: s.episodes });
  const series: Series[] = [
    { label: 'asynchronous: N_A = 4 (paper Table 5)', color: '#1f77b4', points: own.filter((s) => s.action_steps === 4).map(point) },
    { label: 'synchronous: N_A = N_o (paper Table 7)', color: '#d62728', points: own.filter((s) => s.action_steps === s.vision_steps).map(point) },
  ].filter((s) => s.points.length > 1);
  if (series.length === 0) return undefined;
  return {
    title: `dust-push@${version} on the MuJoCo push task: success vs N_o`,
    subtitle: `${settings.episodes_per_condition} held-out episodes per point (seeds ${settings.held_out_seeds.join('-')}), ${settings.robots} robots, Wilson 95% intervals`,
    xLabel: 'N_o (vision denoising steps = denoiser evaluations per chunk)',
    series,
  };
}
