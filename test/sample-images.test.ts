/**
 * The sample camera images the README's examples send (examples/images, `npm run examples:images`) fit the shipped
 * models: one file per camera of each model, at its manifest's image size, so that a fresh clone's first predict
 * is a valid request.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { imageSize } from 'image-size';
import { describe, expect, it } from 'vitest';

const MANIFESTS = ['models/dust-tiny/1/manifest.json', 'models/push-repo/dust-push/1/manifest.json'];

describe('examples/images', () => {
  for (const file of MANIFESTS) {
    it(`has a PNG per camera of ${file} at its image size`, () => {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { cameras: string[]; image: { height: number; width: number } };
      for (const camera of manifest.cameras) {
        const png = readFileSync(path.join('examples/images', `${camera}.png`));
        expect(imageSize(png)).toMatchObject({ type: 'png', width: manifest.image.width, height: manifest.image.height });
      }
    });
  }
});
