/**
 * Seeded Gaussian noise for the initial A_0 and O_0 (docs/sampling.md "Noise and seeds": drawn on the host,
 * never in the graph). The generator is documented so that a client can reproduce a request's noise:
 *
 * - state: xoshiro128** (Blackman & Vigna), 4 x uint32, seeded from the request's uint64 seed by
 *   splitmix64 (two outputs, each split into its low then high 32 bits);
 * - uniforms: u = ((a >>> 5) * 2^26 + (b >>> 6)) / 2^53 from two consecutive outputs a, b (53-bit doubles);
 * - normals: Box-Muller, z0 = sqrt(-2 ln(1 - u1)) cos(2 pi u2), z1 = ... sin(...), both used in order.
 *
 * A_0 is drawn first (horizon x action dim, row-major), then O_0 (tokens x dim), from one stream.
 */

const MASK64 = (1n << 64n) - 1n;

function splitmix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class GaussianNoise {
  private readonly s = new Uint32Array(4);
  private readonly words = new Uint32Array(4);
  private spare: number | undefined;

  /** Seeds from a raw xoshiro128** state (tests check the generator against the reference outputs). */
  static fromState(state: readonly [number, number, number, number]): GaussianNoise {
    const g = new GaussianNoise(0n);
    g.s.set(state);
    return g;
  }

  constructor(seed: bigint) {
    let st = BigInt.asUintN(64, seed);
    for (let i = 0; i < 2; i++) {
      const [next, out] = splitmix64(st);
      st = next;
      this.s[2 * i] = Number(out & 0xffffffffn);
      this.s[2 * i + 1] = Number(out >> 32n);
    }
    // xoshiro's only bad state is all zeros; splitmix64 cannot produce two zero outputs in a row.
  }

  /** splitmix64's first output for a seed, exposed so tests can check it against the reference. */
  static splitmix64First(seed: bigint): bigint {
    return splitmix64(BigInt.asUintN(64, seed))[1];
  }

  /** Next uint32 of xoshiro128**. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextUniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  nextGaussian(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const u1 = this.nextUniform();
    const u2 = this.nextUniform();
    const r = Math.sqrt(-2 * Math.log(1 - u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /**
   * out.length draws, exactly those of as many nextGaussian() calls, with the generator inlined: a request's
   * initial noise is 74,240 normals for the paper-size model, drawn on the event loop, where the per-call
   * overhead was much of its cost (BENCHMARKS.md, "CUDA on one H200", before the VLM at batch 1).
   */
  fill(out: Float32Array): Float32Array {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spare !== undefined) {
      out[i++] = this.spare;
      this.spare = undefined;
    }
    const st = this.s;
    const w = this.words;
    let s0 = st[0] | 0;
    let s1 = st[1] | 0;
    let s2 = st[2] | 0;
    let s3 = st[3] | 0;
    while (i < n) {
      // Four xoshiro128** outputs (nextUint32), two 53-bit uniforms (nextUniform), one Box-Muller pair.
      for (let k = 0; k < 4; k++) {
        const x = Math.imul(s1, 5);
        w[k] = Math.imul((x << 7) | (x >>> 25), 9);
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = (s3 << 11) | (s3 >>> 21);
      }
      const u1 = ((w[0] >>> 5) * 67108864 + (w[1] >>> 6)) / 9007199254740992;
      const u2 = ((w[2] >>> 5) * 67108864 + (w[3] >>> 6)) / 9007199254740992;
      const r = Math.sqrt(-2 * Math.log(1 - u1));
      const angle = 2 * Math.PI * u2;
      out[i++] = r * Math.cos(angle);
      if (i < n) out[i++] = r * Math.sin(angle);
      else this.spare = r * Math.sin(angle);
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
    return out;
  }
}

export interface InitialNoise {
  readonly actions: Float32Array;
  readonly future: Float32Array;
}

/** A_0 [horizon * actionDim] then O_0 [tokens * dim] from one seeded stream. */
export function initialNoise(seed: bigint, actionLength: number, futureLength: number): InitialNoise {
  const g = new GaussianNoise(seed);
  const actions = g.fill(new Float32Array(actionLength));
  const future = g.fill(new Float32Array(futureLength));
  return { actions, future };
}

/** A fresh uint64 seed for requests that did not send one; reported back so the result can be reproduced. */
export function randomSeed(random: (size: number) => Uint8Array): bigint {
  const b = random(8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}
