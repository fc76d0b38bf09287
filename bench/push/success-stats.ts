/** Paired comparison of fleet results (the intervals are src/experiment's wilsonInterval). Pure. */

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
