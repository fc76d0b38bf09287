/**
 * Reads an image file for `--image camera=path`. JPEG and PNG travel as the file's bytes (the server decodes
 * them); any other format sharp reads is decoded here and sent as RAW_RGB8, which the spec allows for every
 * camera.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { ImageInit } from '@dust-serve/client';
import { passthroughEncoding, type ImageSpec } from './args.js';

export async function loadImageFile(spec: ImageSpec): Promise<ImageInit> {
  try {
    const encoding = passthroughEncoding(spec.path);
    if (encoding) return { camera: spec.camera, encoding, data: await readFile(spec.path) };
    // Grey, CMYK or alpha sources become the three RGB channels the RAW_RGB8 encoding means.
    const { data, info } = await sharp(spec.path).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { camera: spec.camera, encoding: 'raw_rgb8', data, width: info.width, height: info.height };
  } catch (err) {
    throw new Error(`cannot read image ${spec.camera}=${spec.path}: ${(err as Error).message}`, { cause: err });
  }
}
