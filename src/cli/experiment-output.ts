/** How `dust-serve experiment show` prints GetExperiment and `experiment split` prints SetTrafficSplit. Pure. */
import Table from 'cli-table3';
import type { ExperimentResult, TrafficSplitResult, VariantStatsResult } from '@dust-serve/client';

export const EXPERIMENT_COLUMNS = [
  'version',
  'state',
  'weight',
  'requests',
  'robots',
  'episodes',
  'success rate [95% CI]',
  'p (z-test)',
  'p (always valid)',
  'decision',
  'latency p50/p99 ms',
  'mean N_o',
  'surprise',
  'shadow n/shed',
  'shadow divergence',
  'shadow p50/p99 ms',
] as const;

const num = (v: number, digits = 3) => String(Number(v.toFixed(digits)));
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
/** p-values this small print in exponent form rather than as 0. */
const pValue = (p: number) => (p < 1e-4 ? p.toExponential(1) : num(p, 4));

export function variantRow(v: VariantStatsResult, hasControl: boolean): string[] {
  const candidate = hasControl && v.decision !== 'control';
  return [
    String(v.version),
    v.state,
    num(v.weight),
    String(v.requests),
    `${v.robots}${v.robotsCapped ? '+' : ''}`,
    `${v.episodes} (${v.successes} ok)`,
    v.episodes > 0 ? `${pct(v.successRate)} [${pct(v.ci95Low)}, ${pct(v.ci95High)}]` : '-',
    candidate ? pValue(v.pValueVsControl) : '-',
    candidate ? pValue(v.alwaysValidPValue) : '-',
    v.decision === 'none' ? '-' : v.decision,
    v.requests > 0 ? `${num(v.latencyP50Ms, 1)}/${num(v.latencyP99Ms, 1)}` : '-',
    v.requests > 0 ? num(v.meanVisionSteps, 1) : '-',
    v.requests > 0 ? num(v.meanWorldModelSurprise, 4) : '-',
    v.shadowRequests + v.shadowShed > 0 ? `${v.shadowRequests}/${v.shadowShed}` : '-',
    v.shadowRequests > 0 ? num(v.shadowActionDivergence, 4) : '-',
    v.shadowRequests > 0 ? `${num(v.shadowLatencyP50Ms, 1)}/${num(v.shadowLatencyP99Ms, 1)}` : '-',
  ];
}

function splitSummary(s: { salt: string; controlVersion: number; stickyKey: string; shadowVersion: number; shadowFraction: number }): string {
  const shadow = s.shadowVersion ? `version ${s.shadowVersion} gets ${num(100 * s.shadowFraction, 2)}% of primary requests mirrored` : 'none';
  return [
    `salt: ${s.salt || '(none: no split set, the newest READY version serves)'}`,
    `control: ${s.controlVersion || '(none)'}   sticky per: ${s.stickyKey}`,
    `shadow: ${shadow}`,
  ].join('\n');
}

export function formatExperiment(e: ExperimentResult): string {
  const table = new Table({ head: [...EXPERIMENT_COLUMNS], style: { head: [], border: [] } });
  const hasControl = e.controlVersion !== 0;
  for (const v of e.variants) table.push(variantRow(v, hasControl));
  const header = [
    `model: ${e.model}   experiment ${e.experimentId}, started ${e.startedAt}`,
    splitSummary(e),
    `decisions at alpha = ${e.alpha} (mixture SPRT, valid whenever read)`,
  ];
  return `${header.join('\n')}\n${table.toString()}\n`;
}

export function formatSplit(s: TrafficSplitResult): string {
  const weights = s.weights.map((w) => `${w.version}=${num(w.weight, 4)}`).join(', ');
  const started = s.newExperiment ? `started experiment ${s.experimentId}` : `experiment ${s.experimentId} goes on`;
  return `model: ${s.model}   ${started}\nweights: ${weights}\n${splitSummary(s)}\n`;
}
