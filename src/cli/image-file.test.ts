import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImageFile } from './image-file.js';

let dir: string;
const red = { width: 5, height: 3, channels: 3 as const, background: { r: 255, g: 0, b: 0 } };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dust-cli-img-'));
  await sharp({ create: red }).jpeg().toFile(path.join(dir, 'a.jpg'));
  await sharp({ create: red }).png().toFile(path.join(dir, 'a.png'));
  await sharp({ create: { ...red, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } })
    .webp({ lossless: true })
    .toFile(path.join(dir, 'a.webp'));
  await sharp({ create: red }).greyscale().tiff().toFile(path.join(dir, 'grey.tiff'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadImageFile', () => {
  it('sends JPEG and PNG files byte for byte', async () => {
    const jpg = await loadImageFile({ camera: 'wrist', path: path.join(dir, 'a.jpg') });
    expect(jpg).toMatchObject({ camera: 'wrist', encoding: 'jpeg' });
    expect(Buffer.compare(Buffer.from(jpg.data), readFileSync(path.join(dir, 'a.jpg')))).toBe(0);
    expect((await loadImageFile({ camera: 'top', path: path.join(dir, 'a.png') })).encoding).toBe('png');
  });

  it('decodes other formats to raw RGB8 with their size, dropping alpha', async () => {
    const img = await loadImageFile({ camera: 'top', path: path.join(dir, 'a.webp') });
    expect(img).toMatchObject({ encoding: 'raw_rgb8', width: 5, height: 3 });
    expect(img.data.length).toBe(5 * 3 * 3);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([0, 0, 255]);
  });

  it('expands a grey image to three channels', async () => {
    const img = await loadImageFile({ camera: 'top', path: path.join(dir, 'grey.tiff') });
    expect(img.data.length).toBe(5 * 3 * 3);
    const [r, g, b] = img.data;
    expect(r).toBe(g);
    expect(g).toBe(b);
  });

  it('names the camera and path of a file it cannot read', async () => {
    await expect(loadImageFile({ camera: 'wrist', path: path.join(dir, 'missing.jpg') })).rejects.toThrow(/cannot read image wrist=.*missing\.jpg/);
    await expect(loadImageFile({ camera: 'wrist', path: path.join(dir, 'missing.bmp') })).rejects.toThrow(/cannot read image wrist=/);
  });
});
