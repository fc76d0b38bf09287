/**
 * The episode files the model toolchain trains on (models/toolchain/data/push.py reads them):
 *
 *   <dir>/index.json           { format, image_size, cameras, control_dt_s, instructions, embodiments, episodes }
 *   <dir>/<episode file>.bin   per episode, back to back, little-endian, no padding:
 *                                frames of each camera in `cameras` order, uint8 [T, H, W, 3] each;
 *                                state float32 [T, state_dim]; actions float32 [T, action_dim];
 *                                labels float32 [T, label_names.length] (the simulator's ground truth)
 *
 * Format 2 added `labels` and `label_names`; format-1 datasets (no labels) stay readable by the toolchain for
 * everything except what needs the labels (vision.py refuses them).
 *
 * Each index entry names its file, embodiment, instruction, layout seed, length T, whether it was perturbed,
 * and the byte offset and shape of every array, so a reader needs no other knowledge of the layout.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CAMERAS } from './env.js';
import { LABEL_NAMES, type RecordedEpisode } from './episode.js';
import { allInstructions, COLORS, CONTROL_DT, EMBODIMENTS, EMBODIMENT_NAMES } from './scene.js';

export const DATASET_FORMAT = 'dust-push-episodes/2';

export interface ArrayRef {
  readonly dtype: 'uint8' | 'float32';
  readonly offset: number;
  readonly shape: readonly number[];
}

export interface EpisodeEntry {
  readonly file: string;
  readonly embodiment: string;
  readonly instruction: string;
  readonly seed: number;
  readonly length: number;
  readonly perturbed: boolean;
  readonly arrays: Record<string, ArrayRef>;
}

export interface DatasetIndex {
  readonly format: typeof DATASET_FORMAT;
  readonly image_size: number;
  readonly cameras: readonly string[];
  readonly control_dt_s: number;
  /** Every instruction the task gives (the tokenizer's vocabulary), whether or not an episode uses it. */
  readonly instructions: readonly string[];
  readonly embodiments: Record<string, { state_dim: number; action_dim: number; state: readonly string[]; action: readonly string[] }>;
  /** Column names of every episode's `labels` array. */
  readonly label_names: readonly string[];
  readonly episodes: EpisodeEntry[];
}

export function emptyIndex(imageSize: number): DatasetIndex {
  return {
    format: DATASET_FORMAT,
    image_size: imageSize,
    cameras: CAMERAS,
    control_dt_s: CONTROL_DT,
    instructions: allInstructions(),
    embodiments: Object.fromEntries(
      EMBODIMENT_NAMES.map((n) => {
        const e = EMBODIMENTS[n];
        return [n, { state_dim: e.stateDim, action_dim: e.actionDim, state: e.stateLayout, action: e.actionLayout }];
      }),
    ),
    label_names: LABEL_NAMES,
    episodes: [],
  };
}

/** Writes the episode's .bin next to the index and returns its index entry. */
export function writeEpisode(dir: string, ep: RecordedEpisode, imageSize: number): EpisodeEntry {
  const file = `${ep.layout.embodiment}-${ep.layout.seed}-${COLORS[ep.layout.target]}.bin`;
  const parts: Buffer[] = [];
  const arrays: Record<string, ArrayRef> = {};
  let offset = 0;
  const add = (name: string, dtype: ArrayRef['dtype'], shape: number[], chunks: ArrayBufferView[]) => {
    arrays[name] = { dtype, offset, shape };
    for (const c of chunks) {
      const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      parts.push(b);
      offset += b.length;
    }
  };
  const T = ep.length;
  for (const cam of CAMERAS) add(`frames/${cam}`, 'uint8', [T, imageSize, imageSize, 3], ep.frames[cam]);
  add('state', 'float32', [T, ep.states[0].length], ep.states);
  add('actions', 'float32', [T, ep.actions[0].length], ep.actions);
  add('labels', 'float32', [T, LABEL_NAMES.length], ep.labels);
  writeFileSync(path.join(dir, file), Buffer.concat(parts));
  return {
    file,
    embodiment: ep.layout.embodiment,
    instruction: ep.layout.instruction,
    seed: ep.layout.seed,
    length: T,
    perturbed: ep.perturbed,
    arrays,
  };
}
