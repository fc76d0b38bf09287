/**
 * Where the server's executor calls spent their time over a measured window, from two scrapes of its
 * `dust_batch_duration_seconds` histogram (docs/operations.md, "Metrics"): per stage, the calls made in the window
 * and the mean milliseconds per call inside ONNX Runtime (run), in the executor around it (host) and elsewhere on
 * the inference thread (wait). A served VLM call that costs far more than the offline one says which part grew.
 */
import { BATCH_DURATION_METRIC, BATCH_PARTS, BATCH_STAGES, type BatchPart, type BatchStage } from '../src/telemetry/index.js';
import { parseExposition } from '../test/support/prometheus.js';
import { round } from './stats.js';

/** Sum (seconds) and count per stage and part, over every model version the server exposes. */
export type BatchDurations = Record<BatchStage, Record<BatchPart, { readonly sum: number; readonly count: number }>>;

export type BatchParts = Record<BatchStage, { readonly calls: number } & Record<BatchPart, number>>;

export function batchDurations(exposition: string): BatchDurations {
  const out = Object.fromEntries(BATCH_STAGES.map((s) => [s, Object.fromEntries(BATCH_PARTS.map((p) => [p, { sum: 0, count: 0 }]))])) as Record<
    BatchStage,
    Record<BatchPart, { sum: number; count: number }>
  >;
  for (const sample of parseExposition(exposition).samples) {
    const field = sample.name === `${BATCH_DURATION_METRIC}_sum` ? 'sum' : sample.name === `${BATCH_DURATION_METRIC}_count` ? 'count' : undefined;
    const { stage, part } = sample.labels;
    if (field === undefined || !(BATCH_STAGES as readonly string[]).includes(stage) || !(BATCH_PARTS as readonly string[]).includes(part)) continue;
    out[stage as BatchStage][part as BatchPart][field] += sample.value;
  }
  return out;
}

/** Mean milliseconds per call of each part between two scrapes (NaN for a stage with no call in between). */
export function batchParts(before: BatchDurations, after: BatchDurations): BatchParts {
  const stage = (s: BatchStage) => {
    const calls = after[s].run.count - before[s].run.count;
    const mean = (p: BatchPart) => round(((after[s][p].sum - before[s][p].sum) * 1000) / calls, 3);
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
