/** Success-rate statistics for fleet results. Pure. */

/** Two-sided 95% normal quantile. */
const Z95 = 1.959963984540054;

/**
 * Wilson score interval of a binomial proportion (95%). Unlike the normal approximation it stays inside
 * [0, 1] and is sensible at 0 or n successes, which small fleet runs produce.
 */
export function wilson(successes: number, n: number, z = Z95): [number, number] {
  if (n === 0) return [0, 1];
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = ((z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n)));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** log of n choose k. */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * Exact two-sided McNemar test for paired successes (the same layouts run under two conditions): `onlyA`
 * episodes succeeded under A alone, `onlyB` under B alone. Returns the p-value of "A and B succeed equally
 * often" (binomial test of onlyA out of onlyA + onlyB at 1/2).
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  const k = Math.min(onlyA, onlyB);
  let tail = 0;
  for (let i = 0; i <= k; i++) tail += Math.exp(logChoose(n, i) - n * Math.LN2);
  return Math.min(1, 2 * tail);
}
