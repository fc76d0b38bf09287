/**
 * Sticky traffic splits (docs/api.md SetTrafficSplitRequest): which version serves a robot (or an episode).
 *
 * Weighted rendezvous hashing, the "logarithmic method" (Schindelhauer & Schomaker, "Weighted distributed hash
 * tables", SPAA 2005; Resch, "New hashing algorithms for data storage", 2015): every version v draws a uniform
 * u_v = H(salt, key, v) in (0, 1) and scores w_v / -ln(u_v); the highest score wins. -ln(u_v) / w_v is an
 * exponential variable of rate w_v, so v wins with probability w_v / sum(w): the split honours the weights.
 * Each version's score depends only on its own weight, so raising one version's weight moves robots only *to*
 * that version (exactly the share it gains, the fewest possible), lowering it moves only its own robots away,
 * and a version that stops being eligible (not READY) hands its robots to the others in proportion to their
 * weights while nobody else moves. A new salt redraws every u_v: a new experiment.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';

export interface VersionWeight {
  readonly version: number;
  /** A share of the model's unpinned traffic; normalized weights sum to 1. */
  readonly weight: number;
}

/** STICKY_KEY_ROBOT keeps a robot on one version across episodes; STICKY_KEY_EPISODE assigns each episode anew. */
export type StickyKeyKind = 'robot' | 'episode';

const SCORE_BITS = 48;
const SCORE_SCALE = 2 ** SCORE_BITS;

/**
 * Checks and normalizes an operator's weights: positive and finite, one entry per version, summing to 1
 * (in version order, so equal splits compare equal whatever order they were given in). Weights whose sum is
 * not a finite double (two of 1e308) would normalize to zeros, and a share too small for a double would
 * become 0: either leaves a version in the split that no robot can be assigned to, so both are refused.
 */
export function normalizeWeights(weights: readonly VersionWeight[]): VersionWeight[] {
  if (weights.length === 0) throw new InvalidArgumentError('weights is empty: give at least one { version, weight } with weight > 0');
  const seen = new Set<number>();
  let total = 0;
  for (const { version, weight } of weights) {
    if (!Number.isInteger(version) || version <= 0) throw new InvalidArgumentError(`weights: version ${version} is not a positive integer`);
    if (seen.has(version)) throw new InvalidArgumentError(`weights: version ${version} appears twice; give each version once`);
    if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight)) {
      throw new InvalidArgumentError(
        `weights: version ${version} has weight ${weight}; weights must be finite and > 0 (leave a version out to give it no traffic)`,
      );
    }
    seen.add(version);
    total += weight;
  }
  if (!Number.isFinite(total)) {
    throw new InvalidArgumentError(`weights: their sum overflows (${total}); give smaller weights, e.g. shares that sum to 1 or percentages`);
  }
  const normalized = [...weights].sort((a, b) => a.version - b.version).map(({ version, weight }) => ({ version, weight: weight / total }));
  const vanished = normalized.find((w) => !(w.weight > 0));
  if (vanished) {
    throw new InvalidArgumentError(
      `weights: version ${vanished.version}'s share of the sum ${total} is too small to represent; give weights of comparable sizes (or leave the version out)`,
    );
  }
  return normalized;
}

/**
 * Why weights read back from a store cannot route (undefined when they can): the store's copy is normalized,
 * but a row written by an older server (which accepted weights whose sum overflowed), edited by hand or
 * damaged would otherwise send unpinned requests to no version. Empty weights are fine: no split.
 */
export function storedWeightsProblem(weights: unknown): string | undefined {
  if (!Array.isArray(weights)) return `weights are not a list (${typeof weights})`;
  if (weights.length === 0) return undefined;
  if (!weights.every((w: unknown) => typeof w === 'object' && w !== null)) return 'weights hold an entry that is not { version, weight }';
  try {
    normalizeWeights(weights as VersionWeight[]);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The key a request is assigned by: its episode when the split is per episode and it names one, else its robot. */
export function stickyKeyOf(kind: StickyKeyKind, robotId: string, episodeId: string): string {
  return kind === 'episode' && episodeId ? `episode:${robotId}\u0000${episodeId}` : `robot:${robotId}`;
}

/** A uniform draw in (0, 1), a pure function of (salt, key, version): the same on every replica and restart. */
export function unitHash(salt: string, key: string, version: number): number {
  const digest = createHash('sha256').update(`${salt}\u0000${key}\u0000${version}`).digest();
  return (digest.readUIntBE(0, SCORE_BITS / 8) + 0.5) / SCORE_SCALE;
}

/**
 * The version that serves `key` under `weights` (only versions that can serve: the caller leaves out those
 * not READY). Undefined when no version has weight.
 */
export function assignVersion(salt: string, key: string, weights: readonly VersionWeight[]): number | undefined {
  let best: number | undefined;
  let bestScore = -Infinity;
  for (const { version, weight } of weights) {
    if (!(weight > 0)) continue;
    const score = weight / -Math.log(unitHash(salt, key, version));
    if (score > bestScore) {
      bestScore = score;
      best = version;
    }
  }
  return best;
}
