/**
 * Where the server's executor calls spent their time over a measured window, from two scrapes of its
 * `dust_batch_duration_seconds` histogram (docs/operations.md, "Metrics"): per stage, the calls made in the window
 * and the mean milliseconds per call inside ONNX Runtime (run), in the executor around it (host) and elsewhere on
 * the inference thread (wait). A served VLM call that costs far more than the offline one says which part grew.
 */
import { parseExposition } from '../test/support/prometheus.js';
import { round } from './stats.js';

const HISTOGRAM = 'dust_batch_duration_seconds';
const STAGES = ['vlm', 'denoise'] as const;
const PARTS = ['run', 'host', 'wait'] as const;

type Stage = (typeof STAGES)[number];
type Part = (typeof PARTS)[number];

/** Sum (seconds) and count per stage and part, over every model version the server exposes. */
export type BatchDurations = Record<Stage, Record<Part, { readonly sum: number; readonly count: number }>>;

export type BatchParts = Record<Stage, { readonly calls: number } & Record<Part, number>>;

export function batchDurations(exposition: string): BatchDurations {
  const out = Object.fromEntries(STAGES.map((s) => [s, Object.fromEntries(PARTS.map((p) => [p, { sum: 0, count: 0 }]))])) as Record<
    Stage,
    Record<Part, { sum: number; count: number }>
  >;
  for (const sample of parseExposition(exposition).samples) {
    const field = sample.name === `${HISTOGRAM}_sum` ? 'sum' : sample.name === `${HISTOGRAM}_count` ? 'count' : undefined;
    const { stage, part } = sample.labels;
    if (field === undefined || !(STAGES as readonly string[]).includes(stage) || !(PARTS as readonly string[]).includes(part)) continue;
    out[stage as Stage][part as Part][field] += sample.value;
  }
  return out;
}

/** Mean milliseconds per call of each part between two scrapes (NaN for a stage with no call in between). */
export function batchParts(before: BatchDurations, after: BatchDurations): BatchParts {
  const stage = (s: Stage) => {
    const calls = after[s].run.count - before[s].run.count;
    const mean = (p: Part) => round(((after[s][p].sum - before[s][p].sum) * 1000) / calls, 3);
    return { calls, run: mean('run'), host: mean('host'), wait: mean('wait') };
  };
  return { vlm: stage('vlm'), denoise: stage('denoise') };
}

/** The server's histogram now; undefined when its metrics endpoint does not answer (a bench result never fails on it). */
export async function scrapeBatchDurations(metricsPort: number): Promise<BatchDurations | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    return res.ok ? batchDurations(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}
