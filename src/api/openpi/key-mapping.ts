/**
 * Which keys of an openpi observation dict hold a model's camera images, its state and its instruction
 * (docs/openpi.md, "Key mapping"): openpi's clients name them per robot setup ("observation/image",
 * "observation/joint_position", "prompt"), dust-serve's manifests per model (cameras, embodiments). A mapping is
 * a preset (openpi's LIBERO and DROID key names, the images by camera position) or a JSON file with an entry per
 * embodiment ("*" for any other). Pure.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors/index.js';

/** A key of the observation dict, or a path of keys into nested dicts. */
export type KeyPath = readonly string[];

/** One embodiment's mapping, as written: images by camera name, or by camera position in the manifest. */
export interface MappingEntry {
  readonly images: Readonly<Record<string, KeyPath>> | readonly KeyPath[];
  /** Concatenated in this order. */
  readonly state: readonly KeyPath[];
  readonly prompt: KeyPath;
}

export interface KeyMapping {
  /** The preset's name or the file's path, for messages and the metadata frame. */
  readonly name: string;
  /** Entries by embodiment name; "*" applies to an embodiment without its own. */
  readonly entries: ReadonlyMap<string, MappingEntry>;
}

/** A mapping resolved against a model version's cameras, for one embodiment. */
export interface ResolvedMapping {
  readonly name: string;
  readonly embodiment: string;
  readonly images: ReadonlyArray<{ readonly camera: string; readonly key: KeyPath }>;
  readonly state: readonly KeyPath[];
  readonly prompt: KeyPath;
}

/**
 * openpi's example clients' keys (openpi src/openpi/policies/libero_policy.py and droid_policy.py): the first
 * image is the third-person view, the second the wrist camera, matched to the manifest's cameras in order.
 */
export const PRESETS: ReadonlyMap<string, MappingEntry> = new Map([
  [
    'libero',
    {
      images: [['observation/image'], ['observation/wrist_image']],
      state: [['observation/state']],
      prompt: ['prompt'],
    },
  ],
  [
    'droid',
    {
      images: [['observation/exterior_image_1_left'], ['observation/wrist_image_left']],
      state: [['observation/joint_position'], ['observation/gripper_position']],
      prompt: ['prompt'],
    },
  ],
]);

/** The observation key that carries real-time chunking's committed prefix (docs/openpi.md); no mapping may name it. */
export const PREFIX_KEY = 'prefix';

const keyPath = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(8)]).transform((k) => (typeof k === 'string' ? [k] : k));
const entrySchema = z
  .object({
    images: z.union([z.record(z.string().min(1), keyPath), z.array(keyPath).min(1)]),
    state: z.union([keyPath.transform((k) => [k]), z.array(keyPath).min(1)]),
    prompt: keyPath.default('prompt'),
  })
  .strict()
  .superRefine((entry, ctx) => {
    const named = [...Object.values(entry.images), ...entry.state, entry.prompt];
    if (named.some((k) => k[0] === PREFIX_KEY)) {
      ctx.addIssue({
        code: 'custom',
        message: `the observation key "${PREFIX_KEY}" is the committed prefix of real-time chunking; map images, state and prompt to other keys`,
      });
    }
  });
const fileSchema = z.record(z.string().min(1), entrySchema).refine((r) => Object.keys(r).length > 0, 'the file maps no embodiment');

/** Validates a parsed mapping file; messages name the entry and field. */
export function parseMappingFile(json: unknown, file: string): KeyMapping {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'file'}: ${i.message}`).join('; ');
    throw new InvalidArgumentError(
      `openpi key mapping ${file}: ${issues}; expected { "<embodiment>" | "*": { "images": { "<camera>": "<key>" }, "state": ["<key>", ...], "prompt": "<key>" } }`,
    );
  }
  return { name: file, entries: new Map(Object.entries(parsed.data)) };
}

/** The mapping an option names: a preset, or a JSON file read now. */
export async function loadKeyMapping(option: string): Promise<KeyMapping> {
  const preset = PRESETS.get(option);
  if (preset) return { name: option, entries: new Map([['*', preset]]) };
  let text: string;
  try {
    text = await readFile(option, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(
      `openpiMapping ${JSON.stringify(option)} is neither a preset (${[...PRESETS.keys()].join(', ')}) nor a readable file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`openpi key mapping ${option} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseMappingFile(json, option);
}

/** A key path as messages show it: "observation/image", or "images" > "cam_high". */
export function showKey(key: KeyPath): string {
  return key.map((k) => JSON.stringify(k)).join(' > ');
}

/**
 * The mapping for `embodiment` of a version with `cameras`. @throws InvalidArgumentError when the mapping has
 * no entry for it, or does not give every camera exactly one key.
 */
export function resolveMapping(mapping: KeyMapping, embodiment: string, cameras: readonly string[]): ResolvedMapping {
  const entry = mapping.entries.get(embodiment) ?? mapping.entries.get('*');
  if (!entry) {
    throw new InvalidArgumentError(
      `the openpi key mapping ${mapping.name} has no entry for embodiment ${JSON.stringify(embodiment)} (it maps ${[...mapping.entries.keys()].join(', ')})`,
    );
  }
  let images: Array<{ camera: string; key: KeyPath }>;
  if (Array.isArray(entry.images)) {
    const keys = entry.images as readonly KeyPath[];
    if (keys.length < cameras.length) {
      throw new InvalidArgumentError(
        `the openpi key mapping ${mapping.name} has ${keys.length} image key(s) for a model with ${cameras.length} cameras [${cameras.join(', ')}]; use a mapping file that names a key per camera`,
      );
    }
    images = cameras.map((camera, i) => ({ camera, key: keys[i] }));
  } else {
    const byCamera = entry.images as Readonly<Record<string, KeyPath>>;
    const unknown = Object.keys(byCamera).filter((c) => !cameras.includes(c));
    const missing = cameras.filter((c) => !Object.hasOwn(byCamera, c));
    if (unknown.length > 0 || missing.length > 0) {
      throw new InvalidArgumentError(
        `the openpi key mapping ${mapping.name} for ${JSON.stringify(embodiment)} must name a key for each camera [${cameras.join(', ')}]` +
          (missing.length ? `; missing: ${missing.join(', ')}` : '') +
          (unknown.length ? `; not cameras of the model: ${unknown.join(', ')}` : ''),
      );
    }
    images = cameras.map((camera) => ({ camera, key: byCamera[camera] }));
  }
  return { name: mapping.name, embodiment, images, state: entry.state, prompt: entry.prompt };
}
