/** The decode pool with real threads (from the build output: `npm run build` first). */
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { decodeViews, type ImageInput } from '../preprocess/index.js';
import { initialNoise } from '../sampling/index.js';
import { eventually } from '../../test/support/eventually.js';
import { DecodePool, SPLIT_NOISE_FROM } from './decode-pool.js';

const spec = { cameras: ['front', 'wrist'], image: { height: 8, width: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } } as const;
const jpeg = (r: number) =>
  sharp({ create: { width: 16, height: 12, channels: 3, background: { r, g: 30, b: 90 } } })
    .jpeg()
    .toBuffer();

const pool = new DecodePool({ threads: 2, niceness: 0 });
afterAll(() => pool.close());

describe('DecodePool', () => {
  it('decodes as decodeViews does on this thread, and draws the noise of the seed', async () => {
    const images: ImageInput[] = [
      { camera: 'wrist', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(200) },
      { camera: 'front', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(20) },
    ];
    const here = await decodeViews(images, spec);
    const d = await pool.decode({ images, spec, seed: 42n, noise: { actions: 6, future: 4 } });
    expect(Array.from(d.pixelValues)).toEqual(Array.from(here));
    expect(d.seed).toBe(42n);
    const noise = initialNoise(42n, 6, 4);
    expect(Array.from(d.noise.actions)).toEqual(Array.from(noise.actions));
    expect(Array.from(d.noise.future)).toEqual(Array.from(noise.future));
    // The caller's image bytes are untouched (the pool sends copies).
    expect(images[0].data.length).toBeGreaterThan(0);
  });

  it('sends a uint8 package its resized pixels unnormalized, moved across as a Uint8Array', async () => {
    const images: ImageInput[] = [
      { camera: 'front', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(90) },
      { camera: 'wrist', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(180) },
    ];
    const uint8 = { ...spec, image: { ...spec.image, pixel_dtype: 'uint8' as const } };
    const d = await pool.decode({ images, spec: uint8, seed: 1n, noise: { actions: 2, future: 2 } });
    expect(d.pixelValues).toBeInstanceOf(Uint8Array);
    const floats = await decodeViews(images, spec);
    // (x / 255 - 0.5) / 0.25 of each byte is the float package's value.
    expect(Array.from(d.pixelValues, (x) => Math.fround((x / 255 - 0.5) / 0.25))).toEqual(Array.from(floats));
  });

  it('draws a seed when the request has none, and reports it', async () => {
    const images: ImageInput[] = spec.cameras.map((camera) => ({ camera, encoding: 'RAW_RGB8', width: 8, height: 8, data: new Uint8Array(192) }));
    const [a, b] = await Promise.all([0, 1].map(() => pool.decode({ images, spec, seed: undefined, noise: { actions: 3, future: 3 } })));
    expect(a.seed).not.toBe(b.seed);
    expect(Array.from(a.noise.actions)).toEqual(Array.from(initialNoise(a.seed, 3, 3).actions));
  });

  it('splits a request with large noise over two idle threads: images on one, noise on the other, same result', async () => {
    const threads = (pool as unknown as { threads: Array<{ pending: Map<number, unknown> }> }).threads;
    const images: ImageInput[] = [
      { camera: 'front', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(70) },
      { camera: 'wrist', encoding: 'JPEG', width: 0, height: 0, data: await jpeg(140) },
    ];
    const noise = { actions: 512, future: SPLIT_NOISE_FROM };
    const seeded = pool.decode({ images, spec, seed: 7n, noise });
    // Both threads hold a part of the one request.
    expect(threads.map((t) => t.pending.size)).toEqual([1, 1]);
    const d = await seeded;
    expect(Array.from(d.pixelValues)).toEqual(Array.from(await decodeViews(images, spec)));
    const want = initialNoise(7n, noise.actions, noise.future);
    expect(d.seed).toBe(7n);
    expect(Array.from(d.noise.actions)).toEqual(Array.from(want.actions));
    expect(Array.from(d.noise.future)).toEqual(Array.from(want.future));
    // Without a seed the pool draws one and the noise is that seed's.
    const drawn = await pool.decode({ images, spec, seed: undefined, noise });
    expect(Array.from(drawn.noise.future)).toEqual(Array.from(initialNoise(drawn.seed, noise.actions, noise.future).future));
  });

  it('keeps a request on one thread when the other is busy or the noise is small', async () => {
    const threads = (pool as unknown as { threads: Array<{ pending: Map<number, unknown> }> }).threads;
    const images: ImageInput[] = spec.cameras.map((camera) => ({ camera, encoding: 'RAW_RGB8', width: 8, height: 8, data: new Uint8Array(192) }));
    const small = pool.decode({ images, spec, seed: 1n, noise: { actions: 4, future: 4 } });
    expect(threads.map((t) => t.pending.size).sort()).toEqual([0, 1]);
    const busy = pool.decode({ images, spec, seed: 2n, noise: { actions: 0, future: SPLIT_NOISE_FROM } });
    expect(threads.map((t) => t.pending.size)).toEqual([1, 1]);
    const [a, b] = await Promise.all([small, busy]);
    expect(Array.from(a.noise.actions)).toEqual(Array.from(initialNoise(1n, 4, 4).actions));
    expect(Array.from(b.noise.future)).toEqual(Array.from(initialNoise(2n, 0, SPLIT_NOISE_FROM).future));
  });

  it('rejects a bad image of a split request with the error decodeViews gives', async () => {
    const images: ImageInput[] = spec.cameras.map((camera) => ({ camera, encoding: 'JPEG', width: 0, height: 0, data: new Uint8Array([0xff, 0xd8, 0xff, 9]) }));
    const err = await pool.decode({ images, spec, seed: 1n, noise: { actions: 0, future: SPLIT_NOISE_FROM } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/images\[front\]: JPEG data could not be decoded/);
  });

  it('rejects a bad image with the INVALID_ARGUMENT error decodeViews gives', async () => {
    const images: ImageInput[] = spec.cameras.map((camera) => ({
      camera,
      encoding: 'JPEG',
      width: 0,
      height: 0,
      data: new Uint8Array([0xff, 0xd8, 0xff, 1, 2]),
    }));
    const err = await pool.decode({ images, spec, seed: 1n, noise: { actions: 1, future: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/images\[front\]: JPEG data could not be decoded/);
  });

  it('replaces a thread that died and keeps decoding', async () => {
    const threads = (pool as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> }).threads;
    const dead = threads[0].worker;
    await dead.terminate();
    await eventually(() => threads[0].worker !== dead, { what: 'the dead decode thread to be replaced' });
    expect(threads[0].worker).not.toBe(dead);
    const images: ImageInput[] = spec.cameras.map((camera) => ({ camera, encoding: 'RAW_RGB8', width: 8, height: 8, data: new Uint8Array(192) }));
    const all = await Promise.all([0, 1, 2, 3].map((s) => pool.decode({ images, spec, seed: BigInt(s), noise: { actions: 1, future: 1 } })));
    expect(all.map((d) => d.seed)).toEqual([0n, 1n, 2n, 3n]);
  });
});
