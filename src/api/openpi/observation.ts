/**
 * An openpi observation dict as the PredictRequest the gRPC path decodes (docs/openpi.md, "Observations"): the
 * mapped images as RAW_RGB8 (HWC as sent, CHW transposed), the mapped state arrays concatenated, the prompt as
 * the instruction, and the connection's robot, episode, model and embodiment. The checks the gRPC path makes on
 * the raw bytes (request-limits.ts: string sizes, NUL, entry counts) are made here with the same limits and
 * messages; everything else (camera count and sizes, state length and range, steps) is the orchestrator's one
 * validation, shared with gRPC. Pure.
 */
import { InvalidArgumentError, quote } from '../../errors/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { RequestLimits } from '../request-limits.js';
import { PREFIX_KEY, showKey, type KeyPath, type ResolvedMapping } from './key-mapping.js';
import { CHUNKING_METHOD_NAMES } from '../convert.js';
import type { ChunkingMethod } from '../../sampling/index.js';
import type { CommittedPrefix__Output } from '@dust-serve/client/gen/dust/serving/v1/CommittedPrefix';
import { arrayNumbers, asNdArray, asNpGeneric, isDict, own, type Dict, type NdArray } from './msgpack-numpy.js';

/** What the connection contributes to each of its requests. */
export interface ObservationContext {
  readonly robotId: string;
  readonly episodeId: string;
  /** PredictRequest.model: "", "name" or "name@version". */
  readonly model: string;
  readonly limits: RequestLimits;
}

/** The value at a key path, or undefined. */
export function lookup(obs: Dict, key: KeyPath): unknown {
  let v: unknown = obs;
  for (const k of key) {
    if (!isDict(v)) return undefined;
    v = own(v, k);
  }
  return v;
}

function missing(key: KeyPath, what: string, mapping: ResolvedMapping): InvalidArgumentError {
  return new InvalidArgumentError(
    `the observation has no key ${showKey(key)} (${what}); the ${mapping.name} mapping for ${JSON.stringify(mapping.embodiment)} expects ${expectedKeys(mapping)}`,
  );
}

/** The keys a mapping reads, for messages. */
export function expectedKeys(mapping: ResolvedMapping): string {
  return [
    ...mapping.images.map(({ camera, key }) => `${showKey(key)} (camera ${camera})`),
    ...mapping.state.map((key) => `${showKey(key)} (state)`),
    `${showKey(mapping.prompt)} (prompt)`,
  ].join(', ');
}

/** An image array as RGB8 bytes, row-major HWC. */
function rgb8(a: NdArray, where: string): { width: number; height: number; data: Buffer } {
  if (a.kind !== 'u' || a.itemBytes !== 1) {
    throw new InvalidArgumentError(`${where} has dtype ${quote(a.dtype)}; images must be uint8 arrays, HWC or CHW with 3 channels (RGB)`);
  }
  const [d0, d1, d2] = a.shape;
  if (a.shape.length !== 3 || (d0 !== 3 && d2 !== 3)) {
    throw new InvalidArgumentError(`${where} has shape [${a.shape.join(', ')}]; images must be HWC [height, width, 3] or CHW [3, height, width] uint8 arrays`);
  }
  const src = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  // openpi's policies read an array whose first dimension is 3 as CHW (libero_policy.py _parse_image).
  if (d0 !== 3) return { height: d0, width: d1, data: src };
  const [height, width] = [d1, d2];
  const plane = height * width;
  const out = Buffer.allocUnsafe(plane * 3);
  for (let p = 0; p < plane; p++) {
    out[p * 3] = src[p];
    out[p * 3 + 1] = src[plane + p];
    out[p * 3 + 2] = src[2 * plane + p];
  }
  return { height, width, data: out };
}

/** State values from an array, a numpy scalar, a number or a list of numbers. */
function stateValues(v: unknown, where: string): number[] {
  const arr = asNdArray(v, where);
  if (arr) return arrayNumbers(arr);
  const scalar = asNpGeneric(v);
  const value = scalar === undefined ? v : scalar;
  if (typeof value === 'number') return [value];
  if (typeof value === 'boolean') return [value ? 1 : 0];
  if (Array.isArray(value) && value.every((x) => typeof x === 'number')) return value as number[];
  throw new InvalidArgumentError(`${where} must be a numeric array (numpy float or int), a number or a list of numbers`);
}

function checkString(name: string, value: string, maxBytes: number): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) throw new InvalidArgumentError(`${name} is ${bytes} bytes, above the limit of ${maxBytes}`);
  const nul = value.indexOf('\u0000');
  if (nul >= 0) throw new InvalidArgumentError(`${name} holds a NUL character (U+0000) at character ${nul}; strings may not contain it`);
}

/** True for a value that looks like a camera image: a 3-D uint8 array. */
function isImageLike(v: unknown): boolean {
  if (!isDict(v) || own(v, '__ndarray__') !== true) return false;
  const shape = own(v, 'shape');
  return Array.isArray(shape) && shape.length === 3 && typeof own(v, 'dtype') === 'string' && /^[|<>=]?u1$/.test(own(v, 'dtype') as string);
}

const PREFIX_FIELDS = ['actions', 'delay_steps', 'control_period_ms', 'method'] as const;
const field = (name: (typeof PREFIX_FIELDS)[number]): string => showKey([PREFIX_KEY, name]);

/** A number from a Python int or float, or a numpy scalar holding one; undefined when absent. */
function numberAt(v: unknown, where: string): number | undefined {
  if (v === undefined) return undefined;
  const value = asNpGeneric(v) ?? v;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidArgumentError(`${where} must be a finite number`);
  return value;
}

/**
 * The observation's committed prefix (real-time chunking, docs/openpi.md), as the gRPC door decodes
 * `PredictRequest.prefix`: a dict with `actions` (a numeric array [L, action_dim] in the robot's units), and
 * `delay_steps` or `control_period_ms`, and optionally `method`. The shape, the values, the delay and the method
 * are the engine's one check, shared with gRPC (engine/chunking.ts); here only what the wire can get wrong: the
 * types, and keys that would otherwise be ignored (a misspelt `delay_steps` must not silently become an estimate).
 */
function prefixOf(v: unknown): CommittedPrefix__Output | null {
  if (v === undefined) return null;
  if (!isDict(v)) throw new InvalidArgumentError(`${showKey([PREFIX_KEY])} must be a dict with ${PREFIX_FIELDS.join(', ')}`);
  const unknown = Object.keys(v).filter((k) => !(PREFIX_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`${showKey([PREFIX_KEY])} has unknown keys ${unknown.map(quote).join(', ')}; its keys are ${PREFIX_FIELDS.join(', ')}`);
  const arr = asNdArray(own(v, 'actions'), field('actions'));
  if (!arr || arr.kind === 'b') {
    throw new InvalidArgumentError(`${field('actions')} must be a numeric numpy array [L, action_dim]: the rest of the chunk the robot is executing`);
  }
  const data = Buffer.from(Float32Array.from(arrayNumbers(arr)).buffer);
  const delay = numberAt(own(v, 'delay_steps'), field('delay_steps'));
  if (delay !== undefined && !(Number.isInteger(delay) && delay >= 0 && delay <= 0xffffffff)) {
    throw new InvalidArgumentError(`${field('delay_steps')} must be a non-negative integer, got ${delay}`);
  }
  const rawMethod = own(v, 'method');
  const method = asNpGeneric(rawMethod) ?? rawMethod;
  if (method !== undefined && !(typeof method === 'string' && Object.hasOwn(CHUNKING_METHOD_NAMES, method))) {
    throw new InvalidArgumentError(`${field('method')} must be one of ${Object.keys(CHUNKING_METHOD_NAMES).join(', ')} (or absent: the model's default)`);
  }
  return {
    actions: { shape: [...arr.shape], data },
    ...(delay !== undefined ? { delay_steps: delay, _delay_steps: 'delay_steps' as const } : {}),
    control_period_ms: numberAt(own(v, 'control_period_ms'), field('control_period_ms')) ?? 0,
    method: method === undefined ? 'CHUNKING_METHOD_UNSPECIFIED' : CHUNKING_METHOD_NAMES[method as ChunkingMethod],
  };
}

/**
 * The PredictRequest of an observation. @throws InvalidArgumentError naming the key and what to send instead.
 */
export function toPredictRequest(obs: unknown, mapping: ResolvedMapping, ctx: ObservationContext): PredictRequest__Output {
  if (!isDict(obs)) throw new InvalidArgumentError('an observation must be a msgpack map of keys to values (a Python dict)');
  const mappedTopKeys = new Set([...mapping.images.map((i) => i.key[0]), ...mapping.state.map((k) => k[0]), mapping.prompt[0]]);
  for (const key of Object.keys(obs)) {
    if (!mappedTopKeys.has(key) && isImageLike(obs[key])) {
      throw new InvalidArgumentError(
        `the observation key ${quote(key)} holds an image, but the ${mapping.name} mapping names no camera for it; cameras: ${mapping.images
          .map(({ camera, key: k }) => `${camera} <- ${showKey(k)}`)
          .join(', ')}`,
      );
    }
  }
  const images = mapping.images.map(({ camera, key }) => {
    const v = lookup(obs, key);
    if (v === undefined) throw missing(key, `camera ${camera}`, mapping);
    const where = `${showKey(key)} (camera ${camera})`;
    const arr = asNdArray(v, where);
    if (!arr) throw new InvalidArgumentError(`${where} must be a numpy uint8 array (msgpack-numpy), HWC or CHW`);
    return { camera, encoding: 'IMAGE_ENCODING_RAW_RGB8' as const, ...rgb8(arr, where) };
  });
  const state: number[] = [];
  for (const key of mapping.state) {
    const v = lookup(obs, key);
    if (v === undefined) throw missing(key, 'state', mapping);
    state.push(...stateValues(v, `${showKey(key)} (state)`));
    if (state.length > ctx.limits.maxRepeated) {
      throw new InvalidArgumentError(`state has more than ${ctx.limits.maxRepeated} entries; that is this server's limit for any repeated field`);
    }
  }
  const prompt = lookup(obs, mapping.prompt);
  const text = asNpGeneric(prompt) ?? prompt;
  if (text !== undefined && typeof text !== 'string') throw new InvalidArgumentError(`${showKey(mapping.prompt)} (prompt) must be a string`);
  const instruction = text ?? '';
  checkString('instruction', instruction, ctx.limits.maxInstructionBytes);
  checkString('robot_id', ctx.robotId, ctx.limits.maxIdBytes);
  checkString('episode_id', ctx.episodeId, ctx.limits.maxIdBytes);
  return {
    request_id: '',
    robot_id: ctx.robotId,
    episode_id: ctx.episodeId,
    model: ctx.model,
    embodiment: mapping.embodiment,
    images,
    state,
    instruction,
    sampling: null,
    return_future_embedding: true,
    steps_executed: 0,
    prefix: prefixOf(own(obs, PREFIX_KEY)),
  };
}
