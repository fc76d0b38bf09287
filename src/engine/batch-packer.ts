/**
 * Packs the rows the scheduler picked into the executor's batch formats: a VLM batch (each request's
 * tensors laid out row after row) and a denoiser step batch (per-row flow times and step sizes from the
 * sampler's step plan, docs/sampling.md). Pure.
 */
import { pixelRowDtype } from '../preprocess/index.js';
import { pinCommitted, positionTimes, stepPlan, type PrefixGuide, type StepCounts } from '../sampling/index.js';
import { pixelRowLength, type ModelShapes, type StepBatch, type StepGuide, type VlmBatch } from './executor.js';
import type { JobInput } from './job.js';
import type { SlotMove } from './slot-table.js';

type VlmInput = Pick<JobInput, 'pixelValues' | 'inputIds' | 'attentionMask' | 'state' | 'embodimentId' | 'noise' | 'chunking'>;

export function packVlmBatch(inputs: readonly VlmInput[], slots: Int32Array, moves: readonly SlotMove[], s: ModelShapes): VlmBatch {
  const B = inputs.length;
  const pixelLen = pixelRowLength(s);
  const aLen = s.horizon * s.actionDim;
  const oLen = s.futureTokens * s.futureDim;
  const batch = {
    moves,
    slots,
    pixelRows: inputs.map((r) => r.pixelValues),
    inputIds: new BigInt64Array(B * s.textTokens),
    attentionMask: new BigInt64Array(B * s.textTokens),
    state: new Float32Array(B * s.stateDim),
    embodimentIds: BigInt64Array.from(inputs.map((r) => BigInt(r.embodimentId))),
    actions0: new Float32Array(B * aLen),
    futureRows: inputs.map((r) => r.noise.future),
  };
  inputs.forEach((r, b) => {
    if (r.pixelValues.length !== pixelLen) throw new RangeError(`row ${b}: ${r.pixelValues.length} pixel values, the model takes ${pixelLen}`);
    const dtype = pixelRowDtype(r.pixelValues);
    if (dtype !== s.pixelDtype) throw new RangeError(`row ${b}: ${dtype} pixel values, the model takes ${s.pixelDtype}`);
    if (r.noise.future.length !== oLen) throw new RangeError(`row ${b}: ${r.noise.future.length} future noise values, the model takes ${oLen}`);
    batch.inputIds.set(r.inputIds, b * s.textTokens);
    batch.attentionMask.set(r.attentionMask, b * s.textTokens);
    batch.state.set(r.state, b * s.stateDim);
    batch.actions0.set(r.noise.actions, b * aLen);
    // Real-time chunking's condition method: the committed positions start (and stay) at the clean prefix.
    if (r.chunking?.method === 'condition') pinCommitted({ ...r.chunking, actionDim: s.actionDim }, batch.actions0.subarray(b * aLen, (b + 1) * aLen));
  });
  return batch;
}

export interface SteppingRow {
  readonly slot: number;
  /** Steps taken so far. */
  readonly i: number;
  readonly counts: StepCounts;
  /** The row's prefix to inpaint after its action steps (real-time chunking's inpaint and condition methods). */
  readonly guide?: PrefixGuide;
}

/**
 * A step over `rows`, which must be in ascending slot order. `finishing` lists the slots whose last step
 * this is, in row order. With a row on the condition method, the step carries every row's per-position action
 * times (the horizon is its guide's).
 */
export function packStepBatch(rows: readonly SteppingRow[], moves: readonly SlotMove[]): StepBatch {
  const B = rows.length;
  let guides: (StepGuide | undefined)[] | undefined;
  const horizon = rows.find((r) => r.guide?.clean)?.guide?.weights.length ?? 0;
  const actionTimes = horizon > 0 ? new Float32Array(B * horizon) : undefined;
  const batch = {
    moves,
    slots: new Int32Array(B),
    tauA: new Float32Array(B),
    tauO: new Float32Array(B),
    dtA: new Float32Array(B),
    dtO: new Float32Array(B),
    finishing: Int32Array.from(rows.filter(isLastStep).map((r) => r.slot)),
  };
  rows.forEach((r, b) => {
    const plan = stepPlan(r.i, r.counts);
    batch.slots[b] = r.slot;
    batch.tauA[b] = plan.tauA;
    batch.tauO[b] = plan.tauO;
    batch.dtA[b] = plan.dtA;
    batch.dtO[b] = plan.dtO;
    if (actionTimes) positionTimes(plan.tauA, r.guide, actionTimes.subarray(b * horizon, (b + 1) * horizon));
    if (r.guide && plan.dtA > 0) {
      guides ??= new Array<StepGuide | undefined>(B).fill(undefined);
      // From the step counts, not tauA + dtA in float32: the last action step must land on exactly 1.
      guides[b] = { guide: r.guide, tau: (Math.floor((r.i * r.counts.actionSteps) / r.counts.visionSteps) + 1) / r.counts.actionSteps };
    }
  });
  return { ...batch, ...(guides && { guides }), ...(actionTimes && { actionTimes }) };
}

export function isLastStep(r: Pick<SteppingRow, 'i' | 'counts'>): boolean {
  return r.i + 1 === r.counts.visionSteps;
}
