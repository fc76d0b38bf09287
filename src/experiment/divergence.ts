/**
 * Shadow action divergence (docs/api.md, GetExperiment): how far a shadow version's action chunk lies from the primary's
 * for the same observation, seed and step counts. The mean over the chunk's rows of the L2 distance between
 * the two actions, in normalized action space ([-1, 1] per dimension, docs/model-package.md), so that joints in
 * radians and grippers in metres weigh alike and versions with different statistics compare fairly. Values
 * are clipped to [-1, 1] first, as they are before a robot receives them (preprocess/normalize.ts).
 */

/** A row-major normalized action chunk: `rows` actions of `stride` values (the model's padded action.dim). */
export interface ActionChunk {
  readonly values: Float32Array;
  readonly rows: number;
  readonly stride: number;
}

const clip = (v: number) => (v < -1 ? -1 : v > 1 ? 1 : v);

/**
 * Over the rows both chunks have (versions may differ in horizon) and the first `cols` columns of each row
 * (the embodiment's real action_dim; the rest is padding).
 */
export function actionDivergence(a: ActionChunk, b: ActionChunk, cols: number): number {
  for (const c of [a, b]) {
    if (c.values.length < c.rows * c.stride || cols > c.stride) {
      throw new RangeError(`an action chunk of ${c.values.length} values does not hold ${c.rows}x${c.stride} with ${cols} real columns`);
    }
  }
  const rows = Math.min(a.rows, b.rows);
  if (rows === 0) return 0;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let c = 0; c < cols; c++) {
      const d = clip(a.values[r * a.stride + c]) - clip(b.values[r * b.stride + c]);
      sq += d * d;
    }
    sum += Math.sqrt(sq);
  }
  return sum / rows;
}
