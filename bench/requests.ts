/**
 * Requests of the simulated robots, built and serialized once per robot so that the client spends its CPU
 * on sending, not on encoding: JPEG camera views (64x64, one per manifest camera), a state within the
 * embodiment's normalization range, a fixed instruction. Embodiments alternate across robots.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { Codec } from '../test/support/policy-codec.js';
import { parseManifest, scanRepository, type Manifest } from '../src/model/index.js';
import type { RequestClass } from './workload.js';

/**
 * Default side of the JPEG views robots send (the server resizes them to the manifest's size). Small, so that a run
 * measures serving rather than image work; `--view-side model` sends the model's own size instead, as openpi-style
 * clients do (they resize on the robot before sending).
 */
export const IMAGE_SIDE = 64;

/** A view side: pixels, or 'model' for the manifest's image size. */
export type ViewSide = number | 'model';
export const INSTRUCTION = 'pick up the red block and place it in the bowl';

export interface ModelLocation {
  readonly manifest: Manifest;
  readonly dir: string;
}

/** The model the server serves by default: the first model name in the repository, newest version. */
export async function findModel(repository: string, name = ''): Promise<ModelLocation> {
  const found = await scanRepository(repository);
  const wanted = name || found[0]?.name;
  const loc = found.filter((l) => l.name === wanted).at(-1);
  if (!loc) throw new Error(`no model ${wanted ? `"${wanted}" ` : ''}with a manifest.json under ${repository}`);
  const file = path.join(loc.dir, 'manifest.json');
  return { manifest: parseManifest(JSON.parse(await readFile(file, 'utf8')), file), dir: loc.dir };
}

/** A deterministic textured view (a flat colour would JPEG-compress to almost nothing). */
async function view(robot: number, camera: number, width: number, height: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      px[o] = (x * 4 + robot * 17) & 255;
      px[o + 1] = (y * 4 + camera * 61) & 255;
      px[o + 2] = ((x ^ y) * 8 + robot * 5) & 255;
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

export function buildRequest(m: Manifest, robot: number, cls: RequestClass, images: PredictRequest['images'], model: string): PredictRequest {
  const names = Object.keys(m.embodiments);
  const embodiment = names[robot % names.length];
  const e = m.embodiments[embodiment];
  const { min, max } = e.normalization.state;
  return {
    robot_id: `robot-${robot}`,
    episode_id: `robot-${robot}-episode-0`,
    model,
    embodiment,
    images,
    state: Array.from({ length: e.state_dim }, (_, i) => min[i] + ((max[i] - min[i]) * ((robot + i) % 7)) / 7),
    instruction: INSTRUCTION,
    sampling: { action_steps: cls.actionSteps, vision_steps: cls.visionSteps, latency_budget_ms: cls.budgetMs, strict_budget: cls.strictBudget === true },
  };
}

/** Robot r's request, with its camera views. */
export async function robotRequest(m: Manifest, robot: number, cls: RequestClass, model = '', side: ViewSide = IMAGE_SIDE): Promise<PredictRequest> {
  const width = side === 'model' ? m.image.width : side;
  const height = side === 'model' ? m.image.height : side;
  const images = await Promise.all(
    m.cameras.map(async (camera, c) => ({
      camera,
      encoding: 'IMAGE_ENCODING_JPEG' as const,
      width,
      height,
      data: await view(robot, c, width, height),
    })),
  );
  return buildRequest(m, robot, cls, images, model);
}

/** One serialized request per robot. */
export async function serializedRequests(
  m: Manifest,
  classes: (robot: number) => RequestClass,
  robots: number,
  codec: Codec,
  model = '',
  side: ViewSide = IMAGE_SIDE,
): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let r = 0; r < robots; r++) out.push(codec.serialize(await robotRequest(m, r, classes(r), model, side)));
  return out;
}
