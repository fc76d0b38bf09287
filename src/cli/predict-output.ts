/** How `dust-serve predict` prints a result: a header line and the action chunk as a table, or JSON. Pure. */
import Table from 'cli-table3';
import { actionRows, tensorToArrays, type PredictResult } from '@dust-serve/client';

/** Decimals shown per action value in the table (the JSON keeps every float32 digit). */
const TABLE_DECIMALS = 4;

const ms = (v: number): string => `${v.toFixed(1)} ms`;

/** model@version, plus the traffic-split variant when it says something more. */
function modelLabel(r: PredictResult): string {
  const pinned = `${r.modelName}@${r.modelVersion}`;
  return r.variant && r.variant !== pinned ? `${pinned} (variant ${r.variant})` : pinned;
}

export function predictHeader(r: PredictResult): string {
  const parts = [modelLabel(r), `steps: action ${r.sampling.actionSteps}, vision ${r.sampling.visionSteps}`, `seed ${r.sampling.seed}`];
  if (r.sampling.budgetMs > 0) parts.push(`budget ${r.sampling.budgetMs} ms ${r.sampling.budgetMet ? 'met' : 'missed'}`);
  const t = r.timing;
  parts.push(`timing: queue ${ms(t.queueMs)}, vlm ${ms(t.vlmMs)}, denoise ${ms(t.denoiseMs)}, total ${ms(t.totalMs)}`);
  if (r.worldModelSurprise !== undefined) parts.push(`surprise ${r.worldModelSurprise.toFixed(4)}`);
  return parts.join(' | ');
}

/** One row per action step, columns a0..aN. */
export function actionTable(r: PredictResult): string {
  const rows = actionRows(r);
  const dims = r.actions.shape[1] ?? rows[0]?.length ?? 0;
  const table = new Table({
    head: ['step', ...Array.from({ length: dims }, (_, i) => `a${i}`)],
    colAligns: Array(dims + 1).fill('right'),
    // No colours: the output is read by people and by grep alike.
    style: { head: [], border: [], compact: true },
  });
  rows.forEach((row, step) => table.push([String(step), ...Array.from(row, (v) => v.toFixed(TABLE_DECIMALS))]));
  return table.toString();
}

export function formatPredict(r: PredictResult): string {
  const lines = [predictHeader(r), actionTable(r)];
  if (r.futureEmbedding) lines.push(`future embedding: shape [${r.futureEmbedding.shape.join(', ')}] (--json prints it)`);
  return lines.join('\n') + '\n';
}

/** The whole response as JSON-ready data: tensors as nested arrays, the uint64 seed as a decimal string. */
export function predictJson(r: PredictResult): Record<string, unknown> {
  return {
    requestId: r.requestId,
    modelName: r.modelName,
    modelVersion: r.modelVersion,
    variant: r.variant,
    actions: tensorToArrays(r.actions),
    futureEmbedding: r.futureEmbedding ? tensorToArrays(r.futureEmbedding) : null,
    sampling: { ...r.sampling, seed: r.sampling.seed.toString() },
    timing: r.timing,
    worldModelSurprise: r.worldModelSurprise ?? null,
  };
}
