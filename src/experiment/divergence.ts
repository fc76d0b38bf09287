/**
 * Shadow action divergence (issue 9 item 3): how far a shadow version's action chunk lies from the primary's
 * for the same observation, seed and step counts. The mean over the chunk's rows of the L2 distance between
 * the two actions, in normalized action space ([-1, 1] per dimension, model-package.md), so that joints in
 * radians and grippers in metres weigh alike and versions with different statistics compare fairly. Values
 * are clipped to [-1, 1] first, as they are before a robot receives them (preprocess/normalize.ts).
 */

const clip = (v: number) => (v < -1 ? -1 : v > 1 ? 1 : v);

/**
 * `a` and `b` are row-major [rows, stride] normalized chunks; only the first `cols` columns of each row (the
 * embodiment's real action_dim, the rest is padding) count.
 */
export function actionDivergence(a: Float32Array, b: Float32Array, rows: number, stride: number, cols: number): number {
  if (a.length < rows * stride || b.length < rows * stride) {
    throw new RangeError(`action chunks of ${a.length} and ${b.length} values are shorter than ${rows}x${stride}`);
  }
  if (rows === 0) return 0;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let c = 0; c < cols; c++) {
      const d = clip(a[r * stride + c]) - clip(b[r * stride + c]);
      sq += d * d;
    }
    sum += Math.sqrt(sq);
  }
  return sum / rows;
}
