/**
 * Ready-to-fire hostile calls for the benchmark programs (bench:abuse, bench:soak), built from the arbitraries:
 * a pool per kind of attack, and a tally of what the server answered, by kind. A call's outcome is acceptable
 * (OK, INVALID_ARGUMENT, NOT_FOUND), load shedding the server decided on, or a server bug.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { round, summarize } from '../stats.js';
import { hostilePredictRequest, knownAttacks, mutatedBody, randomBody, wrongWireTypes } from '../../test/support/hostile/arbitraries.js';
import { ACCEPTABLE_CODES, isServerShedding, POLICY_PATHS, rawStream, rawUnary, type CallOutcome } from '../../test/support/hostile/raw-calls.js';

/** Distinct generated bodies per kind; a run cycles through them. */
const POOL_PER_KIND = 400;
/** Far above any answer dust-tiny needs: a call that reaches it hung. */
export const HOSTILE_CALL_DEADLINE_MS = 15_000;
const UNEXPECTED_EXAMPLES = 10;

export interface Shot {
  readonly kind: string;
  readonly fire: (client: grpc.Client) => Promise<CallOutcome>;
}

export interface ShotOptions {
  /** Seed of the generated bodies. */
  readonly seed: number;
  /** The server's --max-message-bytes: the floods are sized just under it. */
  readonly messageLimit: number;
}

/**
 * Hostile calls of every kind, one pool per kind; `base` is a valid request (of a robot the good robots are
 * not) that the hostile bodies vary.
 */
export function hostileShots(base: PredictRequest, serialize: (r: PredictRequest) => Buffer, cameras: readonly string[], o: ShotOptions): Shot[][] {
  const sample = (arb: fc.Arbitrary<Buffer>, salt: number) => fc.sample(arb, { numRuns: POOL_PER_KIND, seed: o.seed + salt });
  const valid = serialize(base);
  const unary = (kind: string, path: string, body: Buffer): Shot => ({ kind, fire: (c) => rawUnary(c, path, body, HOSTILE_CALL_DEADLINE_MS) });
  const methods = [POLICY_PATHS.predict, POLICY_PATHS.listModels, POLICY_PATHS.reportOutcome];
  const hostile = sample(hostilePredictRequest(base, cameras, serialize), 3);
  return [
    sample(randomBody(), 1).map((body, i) => unary('random-bytes', methods[i % methods.length], body)),
    sample(mutatedBody([valid]), 2).map((body) => unary('mutated', POLICY_PATHS.predict, body)),
    hostile.map((body) => unary('hostile-fields', POLICY_PATHS.predict, body)),
    sample(wrongWireTypes(), 4).map((body) => unary('wire-types', POLICY_PATHS.predict, body)),
    // A session that turns bad: a good request, a hostile one, a good one the server must not process.
    hostile.map((body) => ({
      kind: 'stream',
      fire: (c: grpc.Client) => rawStream(c, POLICY_PATHS.streamPredict, [valid, body, valid], HOSTILE_CALL_DEADLINE_MS),
    })),
    knownAttacks(base, serialize, o.messageLimit).map(({ name, body }) => unary(`attack:${name}`, POLICY_PATHS.predict, body)),
  ];
}

/** The shots of the kinds `list` names (comma-separated prefixes), pools left empty dropped. */
export function selectKinds(pools: Shot[][], list: string | undefined): Shot[][] {
  if (!list) return pools;
  const prefixes = list
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  const chosen = pools.map((pool) => pool.filter((shot) => prefixes.some((p) => shot.kind.startsWith(p)))).filter((pool) => pool.length > 0);
  if (chosen.length === 0) throw new Error(`--kinds ${list}: no hostile calls of these kinds`);
  return chosen;
}

/** The i-th shot of a run: kinds interleaved, each kind's pool cycled through. */
export function nthShot(kinds: readonly Shot[][], i: number): Shot {
  const pool = kinds[i % kinds.length];
  return pool[Math.floor(i / kinds.length) % pool.length];
}

/** What the server answered to hostile calls, by kind. */
export class HostileTally {
  sent = 0;
  private readonly codes: Record<string, Record<string, number>> = {};
  private readonly latencies: number[] = [];
  private readonly examples: Array<{ kind: string; code: string; details: string; ms: number }> = [];
  private unacceptable = 0;
  private shed = 0;

  record(kind: string, out: CallOutcome): void {
    this.sent++;
    const code = grpc.status[out.code] ?? String(out.code);
    (this.codes[kind] ??= {})[code] = (this.codes[kind][code] ?? 0) + 1;
    this.latencies.push(out.ms);
    if (isServerShedding(out)) this.shed++;
    else if (!ACCEPTABLE_CODES.has(out.code)) {
      this.unacceptable++;
      if (this.examples.length < UNEXPECTED_EXAMPLES) this.examples.push({ kind, code, details: out.details.slice(0, 200), ms: round(out.ms) });
    }
  }

  result(windowS: number) {
    const codes: Record<string, number> = {};
    for (const byCode of Object.values(this.codes)) for (const [c, n] of Object.entries(byCode)) codes[c] = (codes[c] ?? 0) + n;
    return {
      calls: this.sent,
      callsPerSecond: round(this.sent / windowS, 1),
      codes,
      byKind: this.codes,
      latencyMs: summarize(this.latencies),
      /** RESOURCE_EXHAUSTED, or DEADLINE_EXCEEDED decided by the server's admission: load shedding, not a failure. */
      shedUnderLoad: this.shed,
      /** Any other status outside OK / INVALID_ARGUMENT / NOT_FOUND: a server bug, a hang or a crash. */
      unacceptable: this.unacceptable,
      unacceptableExamples: this.examples,
    };
  }
}
