/**
 * Seeded Gaussian noise for the initial A_0 and O_0 (sampling.md "Noise and seeds": drawn on the host,
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

  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.nextGaussian();
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
