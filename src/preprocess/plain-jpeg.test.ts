import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodePlainJpeg, isPlainJpeg } from './plain-jpeg.js';

const W = 64;
const H = 48;
/** A frame with edges and colour, so that IDCT and chroma upsampling differences would show. */
const scene = () =>
  sharp({ create: { width: W, height: H, channels: 3, background: { r: 200, g: 40, b: 140 } } }).composite([
    {
      input: Buffer.from(
        `<svg width="${W}" height="${H}"><circle cx="20" cy="24" r="15" fill="yellow"/><rect x="40" y="5" width="14" height="30" fill="#0a8"/></svg>`,
      ),
      top: 0,
      left: 0,
    },
  ]);
const viaSharp = async (jpeg: Buffer) =>
  (await sharp(jpeg, { failOn: 'error', autoOrient: false }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true })).data;

describe('decodePlainJpeg', () => {
  const variants: Array<[string, (s: Sharp) => Sharp]> = [
    ['baseline 4:2:0', (s) => s.jpeg({ quality: 80 })],
    ['baseline 4:4:4', (s) => s.jpeg({ quality: 95, chromaSubsampling: '4:4:4' })],
    ['progressive', (s) => s.jpeg({ quality: 75, progressive: true })],
    ['mozjpeg (trellis, optimized tables)', (s) => s.jpeg({ quality: 50, mozjpeg: true })],
    ['greyscale', (s) => s.greyscale().jpeg()],
  ];
  for (const [name, encode] of variants) {
    it(`decodes ${name} to exactly the pixels sharp gives`, async () => {
      const jpeg = await encode(scene()).toBuffer();
      expect(isPlainJpeg(jpeg)).toBe(true);
      const fast = await decodePlainJpeg(jpeg, W, H);
      expect(fast).toBeDefined();
      expect(Buffer.compare(Buffer.from(fast!), await viaSharp(jpeg))).toBe(0);
    });
  }

  it('leaves to sharp what it would decode differently or refuse', async () => {
    const icc = await scene().withIccProfile('p3').jpeg().toBuffer();
    expect(isPlainJpeg(icc)).toBe(false); // sharp converts with the profile
    const cmyk = await scene().toColourspace('cmyk').jpeg().toBuffer();
    expect(isPlainJpeg(cmyk)).toBe(false);
    const good = await scene().jpeg().toBuffer();
    expect(isPlainJpeg(good.subarray(0, good.length - 100))).toBe(false); // truncated: sharp refuses it
    expect(await decodePlainJpeg(good, W + 1, H)).toBeUndefined(); // needs resizing
    expect(isPlainJpeg(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]))).toBe(false);
    expect(isPlainJpeg(await scene().png().toBuffer())).toBe(false);
  });
});
