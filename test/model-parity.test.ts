/**
 * The shipped reference model (models/dust-tiny/1) in ONNX Runtime against the PyTorch toolchain:
 * both graphs within 1e-4 of PyTorch at batch 1 and 7 (parity.json), and a plain sampler loop over the
 * denoiser session reproducing the toolchain's golden vectors within 1e-5 (golden-sampling.json,
 * docs/sampling.md). Fixtures are written by `python3 -m models.toolchain build-tiny` / `golden`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from 'tokenizers';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, maxAbsDiff, readJson, sampleGolden, type GoldenCase, type ParityCase } from './support/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const packageDir = join(root, 'models', 'dust-tiny', '1');
const fixtureDir = join(root, 'test', 'fixtures', 'dust-tiny');

const PARITY_TOLERANCE = 1e-4;
const GOLDEN_TOLERANCE = 1e-5;

const manifest = readJson<{
  files: Record<string, string>;
  text: { max_tokens: number; tokenizer: string };
  action: { horizon: number; dim: number };
  future: { tokens: number; dim: number };
}>(join(packageDir, 'manifest.json'));

const sessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
};

let vlm: ort.InferenceSession;
let denoiser: ort.InferenceSession;

beforeAll(async () => {
  vlm = await ort.InferenceSession.create(join(packageDir, 'vlm.onnx'), sessionOptions);
  denoiser = await ort.InferenceSession.create(join(packageDir, 'denoiser.onnx'), sessionOptions);
});

afterAll(async () => {
  await vlm?.release();
  await denoiser?.release();
});

describe('dust-tiny package', () => {
  it('files match the manifest digests', () => {
    for (const [name, digest] of Object.entries(manifest.files)) {
      const hex = createHash('sha256')
        .update(readFileSync(join(packageDir, name)))
        .digest('hex');
      expect(`sha256:${hex}`, name).toBe(digest);
    }
  });

  it('tokenizer.json loads with tokenizers and maps unknown words to [UNK]', async () => {
    const tokenizer = Tokenizer.fromFile(join(packageDir, manifest.text.tokenizer));
    const known = await tokenizer.encode('Push the RED block left');
    expect(known.getTokens()).toEqual(['push', 'the', 'red', 'block', 'left']);
    expect(known.getIds().every((id) => id > 1)).toBe(true);
    const unknown = await tokenizer.encode('push the purple block');
    expect(unknown.getTokens()[2]).toBe('[UNK]');
    expect(unknown.getIds()[2]).toBe(1);
    expect(unknown.getIds().length).toBe(4); // no post-processor: no special tokens added
  });

  it('the tokenizer gives the ids the fixtures were built with (padded with 0 to max_tokens)', async () => {
    const tokenizer = Tokenizer.fromFile(join(packageDir, manifest.text.tokenizer));
    const L = manifest.text.max_tokens;
    const cases = readJson<{ cases: ParityCase[] }>(join(fixtureDir, 'parity.json')).cases.filter((c) => c.graph === 'vlm');
    for (const c of cases) {
      const ids = decode(c.inputs.input_ids).data as BigInt64Array;
      const mask = decode(c.inputs.attention_mask).data as BigInt64Array;
      for (const [row, prompt] of (c.prompts ?? []).entries()) {
        const got = (await tokenizer.encode(prompt)).getIds().slice(0, L);
        const want = Array.from(ids.subarray(row * L, (row + 1) * L), Number);
        expect(want, prompt).toEqual([...got, ...new Array(L - got.length).fill(0)]);
        expect(Array.from(mask.subarray(row * L, (row + 1) * L), Number)).toEqual(want.map((_, i) => (i < got.length ? 1 : 0)));
      }
    }
  });
});

describe('ONNX Runtime vs PyTorch parity', () => {
  const cases = readJson<{ cases: ParityCase[] }>(join(fixtureDir, 'parity.json')).cases;

  it('covers both graphs at batch 1 and 7', () => {
    expect(cases.map((c) => `${c.graph}@${c.batch}`).sort()).toEqual(['denoiser@1', 'denoiser@7', 'vlm@1', 'vlm@7']);
  });

  for (const c of cases) {
    it(`${c.graph} at batch ${c.batch} within ${PARITY_TOLERANCE}`, async () => {
      const session = c.graph === 'vlm' ? vlm : denoiser;
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(c.inputs)) feeds[name] = decode(t);
      const out = await session.run(feeds);
      for (const [name, t] of Object.entries(c.outputs)) {
        const want = decode(t);
        expect(out[name].dims, name).toEqual(want.dims);
        const err = maxAbsDiff(out[name].data as Float32Array, want.data as Float32Array);
        expect(err, `${c.graph}/${name} max |ORT - PyTorch|`).toBeLessThanOrEqual(PARITY_TOLERANCE);
      }
    });
  }
});

describe('golden asynchronous joint sampling (docs/sampling.md)', () => {
  const golden = readJson<{ model: string; version: number; cases: GoldenCase[] }>(join(fixtureDir, 'golden-sampling.json'));

  it('covers (N_A, N_o) = (4,4), (4,16), (2,8), (1,3) for both embodiments', () => {
    const keys = golden.cases.map((c) => `${c.embodiment_id}:${c.action_steps}/${c.vision_steps}`).sort();
    expect(keys).toEqual(['0:1/3', '0:2/8', '0:4/16', '0:4/4', '1:1/3', '1:2/8', '1:4/16', '1:4/4']);
  });

  for (const c of golden.cases) {
    it(`embodiment ${c.embodiment_id}, N_A=${c.action_steps}, N_o=${c.vision_steps} within ${GOLDEN_TOLERANCE}`, async () => {
      const sampled = await sampleGolden(denoiser, c, manifest);
      expect(sampled.evaluations).toBe(c.vision_steps);
      expect(sampled.calls).toBe(c.vision_steps);
      const errA = maxAbsDiff(sampled.actions, decode(c.outputs.actions).data as Float32Array);
      const errO = maxAbsDiff(sampled.future, decode(c.outputs.future).data as Float32Array);
      expect(errA, 'actions max |ORT sampler - PyTorch reference|').toBeLessThanOrEqual(GOLDEN_TOLERANCE);
      expect(errO, 'future max |ORT sampler - PyTorch reference|').toBeLessThanOrEqual(GOLDEN_TOLERANCE);
    });
  }
});
