/** Helpers of the real-time chunking tests: committed prefixes as proto tensors, and gaps between two chunks. */
import { readFileSync } from 'node:fs';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { EmbodimentSpec, Manifest } from '../../src/model/index.js';
import { floats, predict } from './harness.js';

/** float32 little-endian, row-major (docs/api.md Tensor): `values` as `rows` rows. */
export function tensor(rows: number, values: Float32Array): { shape: number[]; data: Buffer } {
  const data = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => data.writeFloatLE(v, i * 4));
  return { shape: [rows, values.length / rows], data };
}

/** The worst gap between two chunks' rows [from, to), in the embodiment's units relative to its action range. */
export function worstGap(emb: EmbodimentSpec, a: Float32Array, b: Float32Array, from: number, to: number): number {
  const { min, max } = emb.normalization.action;
  const dim = emb.action_dim;
  let worst = 0;
  for (let j = from * dim; j < to * dim; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / (max[j % dim] - min[j % dim] || 1));
  return worst;
}

/** The model facts a chunking test needs, read from a package's manifest for one embodiment. */
export function chunkModel(manifestPath: string, embodiment: string) {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  const emb = manifest.embodiments[embodiment];
  return {
    manifest,
    emb,
    /** The action horizon. */
    H: manifest.action.horizon,
    /** The embodiment's action dim. */
    DIM: emb.action_dim,
    gap: (a: Float32Array, b: Float32Array, from: number, to: number) => worstGap(emb, a, b, from, to),
  };
}

/**
 * A seeded request's actions served alone, then twice more while each of `others` (twice too) shares its batches:
 * [alone, first, second], for the reproducibility tests of real-time chunking.
 */
export async function servedAmid(
  client: PolicyServiceClient,
  req: PredictRequest,
  others: readonly PredictRequest[],
): Promise<[Float32Array, Float32Array, Float32Array]> {
  const alone = floats((await predict(client, req)).actions);
  const [a, b] = await Promise.all([predict(client, req), predict(client, req), ...others.flatMap((o) => [predict(client, o), predict(client, o)])]);
  return [alone, floats(a.actions), floats(b.actions)];
}
