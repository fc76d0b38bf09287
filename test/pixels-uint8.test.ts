/**
 * Packages whose VLM takes uint8 pixel_values and normalises them in the graph (docs/model-package.md, "Images"):
 * the shipped dust-tiny beside its uint8 variant, which the toolchain writes here from the same weights
 * (`python3 -m models.toolchain pixels`). The decode threads send the uint8 package the resized pixels unnormalised;
 * its VLM must compute what the float32 one computes on host-normalised rows, and a served Predict must return the
 * same action chunk through either executor.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Manifest } from '../src/model/index.js';
import { decodeViews, type ImageInput } from '../src/preprocess/index.js';
import { floats, jpeg, predict, startTestServer, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { PYTHON, WITH_NUMPY } from './support/tools.js';

const floatManifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
/** Largest |difference| allowed: the graph's Mul and Add in float32 against the host's table rounded once per value. */
const TOLERANCE = 1e-5;

let repo: string;
let uint8Dir: string;

beforeAll(() => {
  if (!WITH_NUMPY.available) return;
  repo = mkdtempSync(path.join(os.tmpdir(), 'dust-uint8-'));
  uint8Dir = path.join(repo, 'dust-tiny', '2');
  cpSync(TINY_DIR, path.join(repo, 'dust-tiny', '1'), { recursive: true });
  const run = spawnSync(PYTHON, ['-m', 'models.toolchain', 'pixels', '--package', TINY_DIR, '--out', uint8Dir, '--version', '2'], {
    cwd: path.resolve('.'),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`the toolchain could not write the uint8 variant: ${run.stderr}`);
}, 120_000);
afterAll(() => {
  if (repo) rmSync(repo, { recursive: true, force: true });
});

async function cameraImages(): Promise<ImageInput[]> {
  // A gradient frame larger than the model's size (resized by sharp) and one at its size (the plain-JPEG path).
  const size = floatManifest.image.width;
  const sharp = (await import('sharp')).default;
  const gradient = Buffer.alloc(2 * size * 2 * size * 3);
  for (let i = 0; i < gradient.length; i++) gradient[i] = (i * 7) % 256;
  const big = await sharp(gradient, { raw: { width: 2 * size, height: 2 * size, channels: 3 } })
    .png()
    .toBuffer();
  return [
    { camera: floatManifest.cameras[0], encoding: 'PNG', width: 0, height: 0, data: big },
    { camera: floatManifest.cameras[1], encoding: 'JPEG', width: 0, height: 0, data: await jpeg(size, size, [30, 160, 220]) },
  ];
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

WITH_NUMPY.describe('a package whose VLM takes uint8 pixels', () => {
  WITH_NUMPY.it('records uint8 in its manifest, and its VLM gives the float32 VLM outputs on the same images', async () => {
    const manifest = JSON.parse(readFileSync(path.join(uint8Dir, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.image.pixel_dtype).toBe('uint8');
    const images = await cameraImages();
    const bytes = await decodeViews(images, manifest);
    const normalized = await decodeViews(images, floatManifest);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(normalized).toBeInstanceOf(Float32Array);

    const s = { V: floatManifest.cameras.length, H: floatManifest.image.height, W: floatManifest.image.width, L: floatManifest.text.max_tokens };
    const ids = BigInt64Array.from({ length: s.L }, (_, i) => BigInt(i < 4 ? 2 + i : 0));
    const mask = BigInt64Array.from({ length: s.L }, (_, i) => (i < 4 ? 1n : 0n));
    const text = { input_ids: new ort.Tensor('int64', ids, [1, s.L]), attention_mask: new ort.Tensor('int64', mask, [1, s.L]) };
    const u8 = await ort.InferenceSession.create(path.join(uint8Dir, 'vlm.onnx'));
    const f32 = await ort.InferenceSession.create(path.join(TINY_DIR, 'vlm.onnx'));
    try {
      expect(u8.inputMetadata.find((m) => m.name === 'pixel_values')).toMatchObject({ type: 'uint8' });
      const got = await u8.run({ ...text, pixel_values: new ort.Tensor('uint8', bytes as Uint8Array, [1, s.V, 3, s.H, s.W]) });
      const want = await f32.run({ ...text, pixel_values: new ort.Tensor('float32', normalized as Float32Array, [1, s.V, 3, s.H, s.W]) });
      for (const name of ['vl_embs', 'obs_embedding']) {
        expect(maxAbsDiff(got[name].data as Float32Array, want[name].data as Float32Array), name).toBeLessThanOrEqual(TOLERANCE);
      }
      // Not trivially equal: other pixels move the outputs by far more than the tolerance.
      const other = await f32.run({ ...text, pixel_values: new ort.Tensor('float32', new Float32Array(normalized.length), [1, s.V, 3, s.H, s.W]) });
      expect(maxAbsDiff(other.vl_embs.data as Float32Array, want.vl_embs.data as Float32Array)).toBeGreaterThan(100 * TOLERANCE);
    } finally {
      await Promise.all([u8.release(), f32.release()]);
    }
  });

  for (const executor of ['onnxruntime-node', 'native'] as const) {
    WITH_NUMPY.describe(`served through the ${executor} executor`, () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer({ modelRepository: repo, executor });
      }, 120_000);
      afterAll(() => t?.close());

      WITH_NUMPY.it('returns the action chunk of the float32 package from the same weights', async () => {
        const images = await cameraImages();
        const base = await validRequest({
          images: images.map((img) => ({
            camera: img.camera,
            encoding: img.encoding === 'PNG' ? 'IMAGE_ENCODING_PNG' : 'IMAGE_ENCODING_JPEG',
            data: Buffer.from(img.data),
          })),
          sampling: { seed: '4242', action_steps: 4, vision_steps: 8 },
          return_future_embedding: true,
        });
        const [u8, f32] = await Promise.all([predict(t.client, { ...base, model: 'dust-tiny@2' }), predict(t.client, { ...base, model: 'dust-tiny@1' })]);
        expect([u8.model_version, f32.model_version]).toEqual([2, 1]);
        expect(maxAbsDiff(floats(u8.actions), floats(f32.actions))).toBeLessThanOrEqual(TOLERANCE);
        expect(maxAbsDiff(floats(u8.future_embedding), floats(f32.future_embedding))).toBeLessThanOrEqual(TOLERANCE);
        // Other images give another chunk: the pixels reach the model.
        const dark = await jpeg(floatManifest.image.width, floatManifest.image.height, [0, 0, 0]);
        const other = await predict(t.client, {
          ...base,
          model: 'dust-tiny@2',
          images: base.images!.map((img) => ({ ...img, encoding: 'IMAGE_ENCODING_JPEG', data: dark })),
        });
        expect(maxAbsDiff(floats(other.actions), floats(u8.actions))).toBeGreaterThan(100 * TOLERANCE);
      });
    });
  }
});
