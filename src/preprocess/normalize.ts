/**
 * Proprioceptive state and action normalization (docs/model-package.md, "Normalization": min-max to [-1, 1] per
 * dimension, GR00T's `min_max` mode). Pure functions over plain arrays.
 *
 * - normalize:   n = 2 (x - min) / (max - min) - 1, and n = 0 where max == min (GR00T sets such dimensions
 *   to 0). State is not clipped: GR00T's min_max mode does not clip either, so a state slightly outside the
 *   training range reaches the model exactly as the training transform would have produced it.
 * - denormalize: x = (n + 1) / 2 (max - min) + min, after clipping n to [-1, 1]. GR00T's min_max inverse does
 *   not clip; we do, on purpose: min/max are the extremes seen in the training data, so a clipped action never
 *   commands the robot outside the range it was demonstrated in, whatever the sampler overshoots.
 */
import { InferenceError, InvalidArgumentError, ModelPackageError } from '../errors/index.js';
import type { EmbodimentSpec, MinMax } from '../model/manifest.js';

/**
 * Checks an embodiment's normalization statistics, so that a bad package is refused at load time rather than
 * producing NaN actions. The loader calls it for every embodiment; `padded` (the manifest's `state.dim` and
 * `action.dim`) additionally checks that the embodiment fits the graph.
 * @throws ModelPackageError naming the embodiment and the offending field.
 */
export function checkNormalization(emb: EmbodimentSpec, name: string, padded?: { readonly stateDim: number; readonly actionDim: number }): void {
  const where = `manifest.json: embodiments.${name}`;
  for (const [field, dim] of [
    ['state_dim', emb.state_dim],
    ['action_dim', emb.action_dim],
  ] as const) {
    if (!Number.isInteger(dim) || dim <= 0) {
      throw new ModelPackageError(`${where}.${field} must be a positive integer, got ${dim}`);
    }
  }
  if (padded !== undefined) {
    if (emb.state_dim > padded.stateDim) {
      throw new ModelPackageError(`${where}.state_dim is ${emb.state_dim}, larger than the graph's state.dim ${padded.stateDim}`);
    }
    if (emb.action_dim > padded.actionDim) {
      throw new ModelPackageError(`${where}.action_dim is ${emb.action_dim}, larger than the graph's action.dim ${padded.actionDim}`);
    }
  }
  const norm = emb.normalization as EmbodimentSpec['normalization'] | undefined;
  checkMinMax(norm?.state, emb.state_dim, `${where}.normalization.state`, 'state_dim');
  checkMinMax(norm?.action, emb.action_dim, `${where}.normalization.action`, 'action_dim');
}

function checkMinMax(stats: MinMax | undefined, dim: number, where: string, dimName: string): void {
  if (stats === undefined || !Array.isArray(stats.min) || !Array.isArray(stats.max)) {
    throw new ModelPackageError(`${where} must have "min" and "max" arrays of ${dimName} = ${dim} numbers`);
  }
  for (const key of ['min', 'max'] as const) {
    const values = stats[key];
    if (values.length !== dim) {
      throw new ModelPackageError(`${where}.${key} has ${values.length} values, expected ${dimName} = ${dim}`);
    }
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ModelPackageError(`${where}.${key}[${i}] is ${String(v)}, expected a finite number`);
      }
    });
  }
  for (let i = 0; i < dim; i++) {
    if (stats.max[i] < stats.min[i]) {
      throw new ModelPackageError(`${where}: max[${i}] = ${stats.max[i]} is less than min[${i}] = ${stats.min[i]}`);
    }
  }
}

/**
 * Largest accepted |normalized state value|; the training data spans [-1, 1]. Far above anything a sensor in
 * sane units produces, far below where float32 overflows: a finite but huge value (3.4e38) would otherwise
 * become Inf in the float32 row, or overflow inside the model, and come back as a non-finite action.
 */
export const MAX_NORMALIZED_STATE = 1e6;

/**
 * Validates a request's state and returns the graph's `state` row: the embodiment's `state_dim` normalized
 * values followed by zeros up to `paddedDim` (the manifest's `state.dim`).
 * @param embodimentName used in error messages only.
 * @throws InvalidArgumentError when the length is wrong, a value is not finite, or a value normalizes beyond
 *   ±MAX_NORMALIZED_STATE.
 */
export function normalizeState(values: readonly number[], emb: EmbodimentSpec, paddedDim: number, embodimentName?: string): Float32Array {
  const dim = emb.state_dim;
  if (values.length !== dim) {
    const forWhom = embodimentName === undefined ? '' : ` for embodiment ${embodimentName}`;
    throw new InvalidArgumentError(`state: expected ${dim} values${forWhom}, got ${values.length}`);
  }
  for (let i = 0; i < dim; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      throw new InvalidArgumentError(`state[${i}] is ${String(v)}: every state value must be finite`);
    }
  }
  if (dim > paddedDim) {
    throw new ModelPackageError(`embodiment state_dim ${dim} exceeds the graph's state.dim ${paddedDim}`);
  }
  const { min, max } = emb.normalization.state;
  const row = new Float32Array(paddedDim);
  for (let i = 0; i < dim; i++) {
    const range = max[i] - min[i];
    row[i] = range === 0 ? 0 : (2 * (values[i] - min[i])) / range - 1;
    if (!(Math.abs(row[i]) <= MAX_NORMALIZED_STATE)) {
      throw new InvalidArgumentError(
        `state[${i}] = ${values[i]} is far outside this embodiment's range [${min[i]}, ${max[i]}] for it ` +
          `(normalized: ${row[i]}, accepted up to ±${MAX_NORMALIZED_STATE}); check the units and the order of the state values`,
      );
    }
  }
  return row;
}

/**
 * Turns the denoiser's final action chunk for one request, [horizon, paddedDim] row-major in [-1, 1], into
 * the robot's actions: [horizon, emb.action_dim] row-major, padding columns dropped, clipped to [-1, 1] and
 * mapped back through the embodiment's min-max statistics.
 * @throws InferenceError when the chunk has the wrong size or holds a non-finite value (never sent to a robot).
 */
export function denormalizeActions(normalized: Float32Array, horizon: number, paddedDim: number, emb: EmbodimentSpec): Float32Array {
  const dim = emb.action_dim;
  if (normalized.length !== horizon * paddedDim) {
    throw new InferenceError(`action chunk has ${normalized.length} values, expected horizon*action.dim = ${horizon}*${paddedDim}`);
  }
  if (dim > paddedDim) {
    throw new ModelPackageError(`embodiment action_dim ${dim} exceeds the graph's action.dim ${paddedDim}`);
  }
  const { min, max } = emb.normalization.action;
  const out = new Float32Array(horizon * dim);
  for (let t = 0; t < horizon; t++) {
    for (let d = 0; d < dim; d++) {
      const n = normalized[t * paddedDim + d];
      if (!Number.isFinite(n)) {
        throw new InferenceError(`the model produced a non-finite action (${n}) at step ${t}, dimension ${d}`);
      }
      const clipped = n < -1 ? -1 : n > 1 ? 1 : n;
      out[t * dim + d] = ((clipped + 1) / 2) * (max[d] - min[d]) + min[d];
    }
  }
  return out;
}

/**
 * The inverse of denormalizeActions, for a committed prefix the robot sends back (docs/sampling.md, "Real-time
 * chunking"): [rows, emb.action_dim] in the robot's units to [rows, paddedDim] in [-1, 1], padding columns 0, values
 * clipped to [-1, 1] as the server's own outputs were. A dimension with max == min maps to 0 (any value is the only
 * one it can have). The caller has checked the size and that every value is finite.
 */
export function normalizeActions(values: Float32Array, rows: number, paddedDim: number, emb: EmbodimentSpec): Float32Array {
  const dim = emb.action_dim;
  const { min, max } = emb.normalization.action;
  const out = new Float32Array(rows * paddedDim);
  for (let t = 0; t < rows; t++) {
    for (let d = 0; d < dim; d++) {
      const range = max[d] - min[d];
      const n = range === 0 ? 0 : (2 * (values[t * dim + d] - min[d])) / range - 1;
      out[t * paddedDim + d] = n < -1 ? -1 : n > 1 ? 1 : n;
    }
  }
  return out;
}
