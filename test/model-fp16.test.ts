/**
 * The float16 variant of the reference model (test/fixtures/dust-tiny-fp16/1, written by
 * `python3 -m models.toolchain half --package models/dust-tiny/1 --out test/fixtures/dust-tiny-fp16/1`) in ONNX
 * Runtime's CPU provider, against the float32 PyTorch fixtures of dust-tiny (same weights: dust-tiny stores them
 * rounded to float16). ONNX Runtime's CPU provider runs the float16 graph with float16 tensors between nodes, so
 * this checks the conversion (types, the float32 islands, the casts at the contract's float32 boundary) and
 * float16 rounding; the CUDA provider's float16 kernels are measured on the GPU host (BENCHMARKS.md).
 *
 * Tolerances, as relative L2 error ||got - want|| / ||want||:
 * - one graph call: FP16_PARITY. float16 has a unit roundoff of 2^-11 = 4.9e-4; every node rounds its output
 *   once and the errors of a few layers add up in quadrature, so a few 1e-4 are expected (measured 2.1e-4 to
 *   6.1e-4 here); 2e-3 leaves 3x headroom. Losing a float32 island shows here only weakly
 *   on this small trained model (timestep sinusoids in float16: 2.2e-3 on the batch-7 actions, just over the
 *   bound); the pytest suite checks the islands structurally (test_fp16.py).
 * - a whole sampling run: FP16_GOLDEN. N_o Euler steps x_{i+1} = x_i + dt v_i integrate the per-call error
 *   (the dt of a run sum to 1, so the integrated error is at most the per-call error of the velocities relative
 *   to the state's scale, and independent roundings partly cancel), and each step feeds its rounding into the
 *   next call; measured 1.2e-4 to 4.7e-4 over (N_A, N_o) = (4,4), (4,16), (2,8), (1,3), both embodiments, i.e.
 *   no growth with N_o. 2e-3 is 4x the largest, still 40x below the change a different instruction makes to
 *   the sampled actions (0.081 mean |change|, models/toolchain/README.md).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, feedsOf, readJson, relativeL2, sampleGolden, type GoldenCase, type ParityCase } from './support/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const halfDir = join(root, 'test', 'fixtures', 'dust-tiny-fp16', '1');
const fullDir = join(root, 'models', 'dust-tiny', '1');
const fixtureDir = join(root, 'test', 'fixtures', 'dust-tiny');

const FP16_PARITY = 2e-3;
const FP16_GOLDEN = 2e-3;
/** Below this the graph would be computing in float32: the conversion did nothing. */
const FLOAT32_LEVEL = 1e-5;

const manifest = readJson<{
  files: Record<string, string>;
  architecture: { precision: string; weights_dtype: string };
  action: { horizon: number; dim: number };
  future: { tokens: number; dim: number };
}>(join(halfDir, 'manifest.json'));

const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const sessions: Record<string, ort.InferenceSession> = {};

beforeAll(async () => {
  for (const graph of ['vlm', 'denoiser']) {
    sessions[`${graph}16`] = await ort.InferenceSession.create(join(halfDir, `${graph}.onnx`), options);
    sessions[`${graph}32`] = await ort.InferenceSession.create(join(fullDir, `${graph}.onnx`), options);
  }
});

afterAll(async () => {
  await Promise.all(Object.values(sessions).map((s) => s.release()));
});

describe('dust-tiny float16 variant', () => {
  it('records its precision and matches its digests', () => {
    expect(manifest.architecture).toMatchObject({ precision: 'float16', weights_dtype: 'float16' });
    for (const [name, digest] of Object.entries(manifest.files)) {
      const hex = createHash('sha256')
        .update(readFileSync(join(halfDir, name)))
        .digest('hex');
      expect(`sha256:${hex}`, name).toBe(digest);
    }
  });

  it('keeps the float32 contract: every graph input and output is float32', () => {
    for (const graph of ['vlm', 'denoiser']) {
      const s = sessions[`${graph}16`];
      for (const m of [...s.inputMetadata, ...s.outputMetadata]) if (m.isTensor) expect(['float32', 'int64'], `${graph}/${m.name}`).toContain(m.type);
    }
  });

  const cases = readJson<{ cases: ParityCase[] }>(join(fixtureDir, 'parity.json')).cases;
  for (const c of cases) {
    it(`${c.graph} at batch ${c.batch}: within ${FP16_PARITY} of PyTorch float32, and really computed in float16`, async () => {
      const feeds = feedsOf(c);
      const half = await sessions[`${c.graph}16`].run(feeds);
      const full = await sessions[`${c.graph}32`].run(feeds);
      for (const [name, t] of Object.entries(c.outputs)) {
        const want = decode(t).data as Float32Array;
        expect(half[name].dims, name).toEqual(decode(t).dims);
        expect(relativeL2(half[name].data as Float32Array, want), `${c.graph}/${name} float16 vs PyTorch`).toBeLessThanOrEqual(FP16_PARITY);
        expect(relativeL2(half[name].data as Float32Array, full[name].data as Float32Array), `${c.graph}/${name} float16 vs float32 graph`).toBeGreaterThan(
          FLOAT32_LEVEL,
        );
      }
    });
  }

  const golden = readJson<{ cases: GoldenCase[] }>(join(fixtureDir, 'golden-sampling.json'));
  for (const c of golden.cases) {
    it(`golden sampling, embodiment ${c.embodiment_id}, N_A=${c.action_steps}, N_o=${c.vision_steps}, within ${FP16_GOLDEN}`, async () => {
      const sampled = await sampleGolden(sessions.denoiser16, c, manifest);
      expect(sampled.calls).toBe(c.vision_steps);
      const errA = relativeL2(sampled.actions, decode(c.outputs.actions).data as Float32Array);
      const errO = relativeL2(sampled.future, decode(c.outputs.future).data as Float32Array);
      expect(errA, 'actions, float16 sampler vs PyTorch float32 reference').toBeLessThanOrEqual(FP16_GOLDEN);
      expect(errO, 'future, float16 sampler vs PyTorch float32 reference').toBeLessThanOrEqual(FP16_GOLDEN);
    });
  }
});
