import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import type { Manifest } from '../model/manifest.js';
import { decodeViews, type ImageInput, type PixelRow } from './index.js';
import { pixelValuesLength } from './images.js';

// Non-square on purpose (H != W), so that a transposed axis fails the tests.
const H = 32;
const W = 48;
const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;

const manifest = {
  format_version: 1,
  name: 'test',
  version: 1,
  architecture: { family: 'dust' },
  image: { height: H, width: W, mean: MEAN, std: STD },
  cameras: ['front', 'wrist'],
  text: { max_tokens: 8, tokenizer: 'tokenizer.json', prompt_template: '{instruction}' },
  conditioning: { tokens: 4, dim: 8 },
  action: { horizon: 4, dim: 8 },
  state: { dim: 8 },
  future: { tokens: 4, dim: 8 },
  sampling: { action_steps: 2, vision_steps: 2, max_vision_steps: 8 },
  embodiments: {},
  files: {},
} satisfies Manifest;

type Rgb = readonly [number, number, number];
const RED: Rgb = [255, 0, 0];
const GREEN: Rgb = [0, 255, 0];
const BLUE: Rgb = [0, 0, 255];
const DARK: Rgb = [10, 20, 30];

/** The normalized float32 the server must produce for an 8-bit value of channel c. */
const norm = (x: number, c: number): number => Math.fround((x / 255 - MEAN[c]) / STD[c]);

/** Interleaved RGB, colour chosen per pixel. */
function rgbFrame(width: number, height: number, color: (x: number, y: number) => Rgb): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) buf.set(color(x, y), (y * width + x) * 3);
  }
  return buf;
}

/** Four quadrants: red top-left, green top-right, blue bottom-left, dark bottom-right. */
const quadrants = (width: number, height: number): Buffer =>
  rgbFrame(width, height, (x, y) => (y < height / 2 ? (x < width / 2 ? RED : GREEN) : x < width / 2 ? BLUE : DARK));

const raw = (frame: Buffer, width: number, height: number) => sharp(frame, { raw: { width, height, channels: 3 } });
const png = (frame: Buffer, width: number, height: number) => raw(frame, width, height).png().toBuffer();
const jpeg = (frame: Buffer, width: number, height: number) => raw(frame, width, height).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();

const solid = (c: Rgb) => rgbFrame(W, H, () => c);

/** Value of view v, channel c, row y, column x in a [V, 3, H, W] row. */
const at = (row: PixelRow, v: number, c: number, y: number, x: number): number => row[((v * 3 + c) * H + y) * W + x];

const pixel = (row: PixelRow, v: number, y: number, x: number): number[] => [0, 1, 2].map((c) => at(row, v, c, y, x));
const expected = (rgb: Rgb): number[] => rgb.map((x, c) => norm(x, c));

function image(camera: string, encoding: ImageInput['encoding'], data: Uint8Array, width = 0, height = 0): ImageInput {
  return { camera, encoding, width, height, data };
}

async function rejection(promise: Promise<unknown>): Promise<InvalidArgumentError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidArgumentError);
  return err as InvalidArgumentError;
}

describe('decodeViews', () => {
  it('decodes a PNG exactly into normalized CHW planes', async () => {
    const data = await png(quadrants(W, H), W, H);
    const wrist = await png(solid(DARK), W, H);
    const row = await decodeViews([image('front', 'PNG', data, W, H), image('wrist', 'PNG', wrist)], manifest);

    expect(row).toBeInstanceOf(Float32Array);
    expect(row.length).toBe(2 * 3 * H * W);
    expect(row.length).toBe(pixelValuesLength(manifest));
    // Each corner, including the last pixel of each plane.
    expect(pixel(row, 0, 0, 0)).toEqual(expected(RED));
    expect(pixel(row, 0, 0, W - 1)).toEqual(expected(GREEN));
    expect(pixel(row, 0, H - 1, 0)).toEqual(expected(BLUE));
    expect(pixel(row, 0, H - 1, W - 1)).toEqual(expected(DARK));
    expect(pixel(row, 1, H - 1, W - 1)).toEqual(expected(DARK));
    // Planar, not interleaved: the red plane of the front view is uniform across the red quadrant.
    expect(row[0]).toBe(norm(255, 0));
    expect(row[1]).toBe(norm(255, 0));
    expect(row[H * W]).toBe(norm(0, 1));
    expect(row[2 * H * W]).toBe(norm(0, 2));
  });

  it('orders views by manifest.cameras, not by the request', async () => {
    const front = await png(solid(RED), W, H);
    const wrist = await jpeg(solid(BLUE), W, H);
    const row = await decodeViews([image('wrist', 'JPEG', wrist), image('front', 'PNG', front)], manifest);

    expect(pixel(row, 0, 5, 5)).toEqual(expected(RED));
    pixel(row, 1, 5, 5).forEach((v, c) => expect(v).toBeCloseTo(expected(BLUE)[c], 1));
  });

  it('decodes a JPEG to near the colours it encodes', async () => {
    const data = await jpeg(quadrants(W, H), W, H);
    const row = await decodeViews([image('front', 'JPEG', data), image('wrist', 'JPEG', data)], manifest);
    // Quadrant centres, away from block edges where JPEG rings; 0.05 is about 3 levels of 255.
    const checks: [number, number, Rgb][] = [
      [H / 4, W / 4, RED],
      [H / 4, (3 * W) / 4, GREEN],
      [(3 * H) / 4, W / 4, BLUE],
      [(3 * H) / 4, (3 * W) / 4, DARK],
    ];
    for (const v of [0, 1]) {
      for (const [y, x, rgb] of checks) {
        pixel(row, v, y, x).forEach((got, c) => expect(Math.abs(got - expected(rgb)[c])).toBeLessThan(0.05));
      }
    }
  });

  it('accepts RAW_RGB8 at model size exactly', async () => {
    const frame = quadrants(W, H);
    const row = await decodeViews([image('front', 'RAW_RGB8', frame, W, H), image('wrist', 'RAW_RGB8', solid(GREEN), W, H)], manifest);
    expect(pixel(row, 0, 0, 0)).toEqual(expected(RED));
    expect(pixel(row, 0, H - 1, W - 1)).toEqual(expected(DARK));
    expect(pixel(row, 1, 7, 9)).toEqual(expected(GREEN));
  });

  it('resizes RAW_RGB8 and encoded frames to the model size', async () => {
    const big = quadrants(2 * W, 2 * H);
    const row = await decodeViews([image('front', 'RAW_RGB8', big, 2 * W, 2 * H), image('wrist', 'PNG', await png(big, 2 * W, 2 * H))], manifest);
    for (const v of [0, 1]) {
      expect(pixel(row, v, 2, 2)).toEqual(expected(RED));
      expect(pixel(row, v, 2, W - 3)).toEqual(expected(GREEN));
      expect(pixel(row, v, H - 3, 2)).toEqual(expected(BLUE));
      expect(pixel(row, v, H - 3, W - 3)).toEqual(expected(DARK));
    }
  });

  it('keeps the whole field of view when the aspect ratio differs (fill, no crop)', async () => {
    // 640x480 (4:3) into 48x32 (3:2): a crop-to-fill resize would cut 27 rows off the top and bottom,
    // removing the 30-row green band; stretching keeps it as the first 2 output rows.
    const frame = rgbFrame(640, 480, (x, y) => (y < 30 ? GREEN : x >= 600 ? RED : DARK));
    const data = await jpeg(frame, 640, 480);
    const row = await decodeViews([image('front', 'JPEG', data, 640, 480), image('wrist', 'JPEG', data)], manifest);

    const near = (got: number[], rgb: Rgb) => got.every((g, c) => Math.abs(g - expected(rgb)[c]) < 0.1);
    expect(near(pixel(row, 0, 0, W / 2), GREEN)).toBe(true);
    expect(near(pixel(row, 0, H / 2, W - 1), RED)).toBe(true);
    expect(near(pixel(row, 0, H / 2, W / 2), DARK)).toBe(true);
    expect(near(pixel(row, 0, H - 1, 0), DARK)).toBe(true);
  });

  it('drops alpha and expands greyscale to three channels', async () => {
    const rgba = await raw(solid(BLUE), W, H).ensureAlpha(0.3).png().toBuffer();
    const grey = await sharp({ create: { width: W, height: H, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const row = await decodeViews([image('front', 'PNG', rgba), image('wrist', 'PNG', grey)], manifest);
    expect(pixel(row, 0, 3, 3)).toEqual(expected(BLUE));
    expect(pixel(row, 1, 3, 3)).toEqual(expected([90, 90, 90]));
  });

  it('writes into a caller buffer at an offset without touching the rest', async () => {
    const len = pixelValuesLength(manifest);
    const out = new Float32Array(3 * len).fill(7);
    const front = await png(solid(RED), W, H);
    const row = await decodeViews([image('front', 'PNG', front), image('wrist', 'PNG', front)], manifest, {
      out,
      offset: len,
    });
    expect(row.buffer).toBe(out.buffer);
    expect(row.byteOffset).toBe(len * 4);
    expect(row.length).toBe(len);
    expect(out[len - 1]).toBe(7);
    expect(out[2 * len]).toBe(7);
    expect(out[len]).toBe(norm(255, 0));
    expect(out[2 * len - 1]).toBe(norm(0, 2));
  });

  it('leaves the caller buffer untouched when a view is bad', async () => {
    const out = new Float32Array(pixelValuesLength(manifest)).fill(7);
    const good = await png(solid(RED), W, H);
    const whole = await jpeg(quadrants(W, H), W, H);
    const truncated = whole.subarray(0, whole.length / 2);
    await rejection(decodeViews([image('front', 'PNG', good), image('wrist', 'JPEG', truncated)], manifest, { out }));
    expect(out.every((v) => v === 7)).toBe(true);
  });

  it('refuses a caller buffer that is too small', async () => {
    const good = await png(solid(RED), W, H);
    await expect(
      decodeViews([image('front', 'PNG', good), image('wrist', 'PNG', good)], manifest, {
        out: new Float32Array(pixelValuesLength(manifest)),
        offset: 1,
      }),
    ).rejects.toThrow(RangeError);
  });
});

describe('decodeViews for a package whose VLM takes uint8 pixels', () => {
  const uint8 = { ...manifest, image: { ...manifest.image, pixel_dtype: 'uint8' as const } };

  it('gives the float path its values before normalization, for every decoder path', async () => {
    const frame = quadrants(W, H);
    const big = quadrants(2 * W, 2 * H);
    const cases: Array<[string, ImageInput[]]> = [
      ['RAW_RGB8 at size and resized', [image('front', 'RAW_RGB8', frame, W, H), image('wrist', 'RAW_RGB8', big, 2 * W, 2 * H)]],
      ['PNG', [image('front', 'PNG', await png(frame, W, H)), image('wrist', 'PNG', await png(big, 2 * W, 2 * H))]],
      // At size: the WebAssembly libjpeg-turbo path; larger: sharp's.
      ['JPEG', [image('front', 'JPEG', await jpeg(frame, W, H)), image('wrist', 'JPEG', await jpeg(big, 2 * W, 2 * H))]],
    ];
    const plane = H * W;
    for (const [name, images] of cases) {
      const bytes = await decodeViews(images, uint8);
      const floats = await decodeViews(images, manifest);
      expect(bytes, name).toBeInstanceOf(Uint8Array);
      expect(floats, name).toBeInstanceOf(Float32Array);
      expect(bytes.length, name).toBe(floats.length);
      const mismatches = Array.from(bytes).filter((x, i) => norm(x, Math.floor(i / plane) % 3) !== floats[i]).length;
      expect(mismatches, name).toBe(0);
    }
    const row = await decodeViews(cases[0][1], uint8);
    expect([0, 1, 2].map((c) => at(row, 0, c, 0, 0))).toEqual([...RED]);
    expect([0, 1, 2].map((c) => at(row, 0, c, H - 1, W - 1))).toEqual([...DARK]);
  });

  it('refuses a caller buffer of the other type', async () => {
    const good = await png(solid(RED), W, H);
    const images = [image('front', 'PNG', good), image('wrist', 'PNG', good)];
    await expect(decodeViews(images, uint8, { out: new Float32Array(pixelValuesLength(manifest)) })).rejects.toThrow(/uint8/);
    await expect(decodeViews(images, manifest, { out: new Uint8Array(pixelValuesLength(manifest)) })).rejects.toThrow(/float32/);
  });
});

describe('decodeViews validation', () => {
  const rawFrame = (camera: string) => image(camera, 'RAW_RGB8', solid(RED), W, H);

  it('needs exactly one image per camera', async () => {
    const err = await rejection(decodeViews([rawFrame('front')], manifest));
    expect(err.message).toBe('images: expected 2 images, one per camera [front, wrist]; got 1');
  });

  it('names the valid cameras when one is unknown', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), rawFrame('top')], manifest));
    expect(err.message).toBe('images[1]: unknown camera "top"; valid cameras are [front, wrist]');
  });

  it('does not echo a huge camera name back', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), rawFrame('x'.repeat(10_000))], manifest));
    expect(err.message.length).toBeLessThan(200);
  });

  it('rejects a duplicated camera', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), rawFrame('front')], manifest));
    expect(err.message).toBe('images[1]: camera "front" appears twice; send one image per camera [front, wrist]');
  });

  it('rejects an UNSPECIFIED encoding', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'UNSPECIFIED', solid(RED), W, H)], manifest));
    expect(err.message).toBe('images[wrist]: encoding is UNSPECIFIED; set it to RAW_RGB8, JPEG or PNG');
  });

  it('needs width and height for RAW_RGB8', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'RAW_RGB8', solid(RED), 0, H)], manifest));
    expect(err.message).toMatch(/^images\[wrist\]: RAW_RGB8 needs the frame's width and height, got 0x32/);
  });

  it('checks the RAW_RGB8 byte count', async () => {
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'RAW_RGB8', new Uint8Array(100), 64, 64)], manifest));
    expect(err.message).toBe('images[wrist]: RAW_RGB8 data has 100 bytes, expected width*height*3 = 12288');
  });

  it('checks declared width/height of encoded images when set', async () => {
    const data = await png(solid(RED), W, H);
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'PNG', data, 640, 480)], manifest));
    expect(err.message).toBe('images[wrist]: width/height say 640x480 but the PNG is 48x32; set them to the image size, or to 0');
    // Only the height set, and right: accepted.
    await decodeViews([rawFrame('front'), image('wrist', 'PNG', data, 0, H)], manifest);
  });

  it('rejects a truncated JPEG and a truncated PNG', async () => {
    const j = await jpeg(quadrants(W, H), W, H);
    const p = await png(quadrants(W, H), W, H);
    const errJ = await rejection(decodeViews([rawFrame('front'), image('wrist', 'JPEG', j.subarray(0, Math.floor(j.length * 0.8)))], manifest));
    expect(errJ.message).toMatch(/^images\[wrist\]: JPEG data could not be decoded \(.+\); send a complete, valid JPEG$/);
    expect(errJ.cause).toBeInstanceOf(Error);
    const errP = await rejection(decodeViews([image('front', 'PNG', p.subarray(0, Math.floor(p.length / 2))), rawFrame('wrist')], manifest));
    expect(errP.message).toMatch(/^images\[front\]: PNG data could not be decoded/);
  });

  it('rejects bytes that are not the declared format', async () => {
    const p = await png(solid(RED), W, H);
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'JPEG', p)], manifest));
    expect(err.message).toBe('images[wrist]: data is not a JPEG image (wrong signature); it looks like PNG; set encoding accordingly');
    const garbage = await rejection(decodeViews([rawFrame('front'), image('wrist', 'PNG', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))], manifest));
    expect(garbage.message).toMatch(/^images\[wrist\]: data is not a PNG image/);
    const empty = await rejection(decodeViews([rawFrame('front'), image('wrist', 'JPEG', new Uint8Array())], manifest));
    expect(empty.message).toBe('images[wrist]: JPEG data is empty');
  });

  it('rejects images over the pixel limit, RAW and encoded', async () => {
    const big = quadrants(100, 100);
    const errRaw = await rejection(decodeViews([rawFrame('front'), image('wrist', 'RAW_RGB8', big, 100, 100)], manifest, { maxPixels: 5000 }));
    expect(errRaw.message).toMatch(/^images\[wrist\]: 100x100 = 10000 pixels exceeds the limit of 5000; downscale/);
    const errPng = await rejection(decodeViews([rawFrame('front'), image('wrist', 'PNG', await png(big, 100, 100))], manifest, { maxPixels: 5000 }));
    expect(errPng.message).toMatch(/exceeds the limit of 5000/);
  });

  it('refuses a decompression bomb from its header, under the default limit', async () => {
    // 4100x4100 black PNG: a few kB on the wire, 50 MB decoded.
    const bomb = await sharp({ create: { width: 4100, height: 4100, channels: 3, background: '#000' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(bomb.length).toBeLessThan(200_000);
    const err = await rejection(decodeViews([rawFrame('front'), image('wrist', 'PNG', bomb)], manifest));
    expect(err.message).toMatch(/^images\[wrist\]: 4100x4100 = 16810000 pixels exceeds the limit of 16777216/);
  });

  it('reports the first bad view in camera order, whatever the request order', async () => {
    const bad = new Uint8Array([0xff, 0xd8, 0xff, 0, 0, 0]);
    const err = await rejection(decodeViews([image('wrist', 'UNSPECIFIED', bad), image('front', 'JPEG', bad)], manifest));
    expect(err.message).toMatch(/^images\[front\]: JPEG data could not be decoded/);
  });
});
