/**
 * Small seeded PRNG (mulberry32). Layouts and perturbed demonstrations are drawn from it, so a layout seed names
 * the same scene and the same recorded episode on every machine; the benchmark robots draw their arrival
 * patterns from it too.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
