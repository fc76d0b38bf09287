/** The friendly PredictRequest a program writes -> the proto message on the wire (pure, but for the request id it draws). */
import { randomUUID } from 'node:crypto';
import type { PredictRequest } from './gen/dust/serving/v1/PredictRequest.js';
import type { Image } from './gen/dust/serving/v1/Image.js';
import type { SamplingOptions } from './gen/dust/serving/v1/SamplingOptions.js';
import type { CommittedPrefix } from './gen/dust/serving/v1/CommittedPrefix.js';
import { encodeTensor } from './tensor.js';

export type ImageEncodingName = 'jpeg' | 'png' | 'raw_rgb8';

export interface ImageInit {
  /** A camera of the model's manifest (ListModels shows them). */
  camera: string;
  encoding: ImageEncodingName;
  /** The encoded file for jpeg/png; height*width*3 bytes, row-major RGB, for raw_rgb8. */
  data: Uint8Array;
  /** Required for raw_rgb8; for jpeg/png the server checks it against the decoded size when set. */
  width?: number;
  height?: number;
}

export interface SamplingInit {
  /** N_A, the denoising steps of the action chunk. @default the manifest's default */
  actionSteps?: number;
  /** N_o, a multiple of N_A and at most the model's max_vision_steps. @default the manifest's default */
  visionSteps?: number;
  /** Makes the noise reproducible; an unsigned 64-bit integer (numbers above 2^53-1 must be bigints). @default drawn by the server */
  seed?: bigint | number;
  /** The server picks N_o (<= visionSteps) to finish within this many milliseconds. @default no budget */
  latencyBudgetMs?: number;
  /**
   * The budget is also the request's deadline: the server answers DEADLINE_EXCEEDED rather than a chunk after
   * the budget (the robot keeps executing its current chunk). Needs latencyBudgetMs. @default false
   */
  strictBudget?: boolean;
}

/** Real-time chunking's methods (docs/api.md, "Real-time chunking"). */
export type ChunkingMethodName = 'condition' | 'inpaint' | 'naive' | 'ensemble';

/**
 * The actions the robot has committed to while this request's chunk is computed (real-time chunking): the
 * remaining actions of the chunk it is executing, from the control step of this request's observation on.
 */
export interface PrefixInit {
  /** [L][action_dim] in the robot's action units, 1 <= L <= the action horizon. */
  actions: ReadonlyArray<ArrayLike<number>>;
  /** d: how many of them run before the new chunk takes over (0 <= d <= L). @default estimated from controlPeriodMs */
  delaySteps?: number;
  /** The control period in ms, for the server to estimate d from the stream's latency; required without delaySteps. */
  controlPeriodMs?: number;
  /** @default the server's choice (inpaint where the model supports it) */
  method?: ChunkingMethodName;
}

export interface PredictRequestInit {
  /** Required: the robot asking; traffic splits are sticky per robot. */
  robotId: string;
  /** Required: a key of the manifest's embodiments. */
  embodiment: string;
  /** One per manifest camera. */
  images?: readonly ImageInit[];
  /** Exactly the embodiment's state_dim finite values. */
  state?: ArrayLike<number>;
  instruction?: string;
  sampling?: SamplingInit;
  /** Ask for the world model's predicted future embedding. @default false */
  returnFutureEmbedding?: boolean;
  /** "" (the default model; the traffic split applies), "name", or "name@version" (pinned). @default "" */
  model?: string;
  /** A/B credit and world-model surprise are tracked per episode. */
  episodeId?: string;
  /**
   * Echoed in the result. A retried request carries the same id, so a fleet with a shared experiment store
   * counts it once however many replicas it reached. @default a random UUID
   */
  requestId?: string;
  /** How many actions of this episode's previous chunk the robot executed. @default 0 (unknown) */
  stepsExecuted?: number;
  /** Real-time chunking: the committed prefix. @default none */
  prefix?: PrefixInit;
}

export const MAX_SEED = (1n << 64n) - 1n;
const MAX_UINT32 = 0xffff_ffff;

const ENCODINGS: Record<ImageEncodingName, Image['encoding']> = {
  jpeg: 'IMAGE_ENCODING_JPEG',
  png: 'IMAGE_ENCODING_PNG',
  raw_rgb8: 'IMAGE_ENCODING_RAW_RGB8',
};

/**
 * A seed as the uint64 decimal string the loader writes exactly (longs travel as strings; a JS number
 * loses integers above 2^53-1, so those must come as bigints). Throws a RangeError outside [0, 2^64-1].
 */
export function seedToWire(seed: bigint | number): string {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`sampling.seed ${seed} is not a safe integer; pass seeds above ${Number.MAX_SAFE_INTEGER} as a bigint`);
    }
    seed = BigInt(seed);
  } else if (typeof seed !== 'bigint') {
    throw new TypeError(`sampling.seed must be a bigint or a number, got ${typeof seed}`);
  }
  if (seed < 0n || seed > MAX_SEED) throw new RangeError(`sampling.seed ${seed} is outside the unsigned 64-bit range [0, ${MAX_SEED}]`);
  return seed.toString();
}

/** protobufjs would silently wrap -1 or 1.5 into a different uint32; say so instead. */
function uint32(field: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT32) {
    throw new RangeError(`${field} must be an integer in [0, ${MAX_UINT32}], got ${value}`);
  }
  return value;
}

function toImage(img: ImageInit, index: number): Image {
  const encoding = ENCODINGS[img.encoding];
  if (encoding === undefined) {
    throw new TypeError(`images[${index}].encoding must be one of ${Object.keys(ENCODINGS).join(', ')}, got ${String(img.encoding)}`);
  }
  if (!(img.data instanceof Uint8Array)) throw new TypeError(`images[${index}].data must be a Uint8Array (or Buffer)`);
  return {
    camera: img.camera,
    encoding,
    width: uint32(`images[${index}].width`, img.width),
    height: uint32(`images[${index}].height`, img.height),
    data: img.data,
  };
}

const METHODS: Record<ChunkingMethodName, CommittedPrefix['method']> = {
  condition: 'CHUNKING_METHOD_CONDITION',
  inpaint: 'CHUNKING_METHOD_INPAINT',
  naive: 'CHUNKING_METHOD_NAIVE',
  ensemble: 'CHUNKING_METHOD_ENSEMBLE',
};

function toPrefix(p: PrefixInit): CommittedPrefix {
  const rows = p.actions.length;
  const cols = rows > 0 ? p.actions[0].length : 0;
  if (p.actions.some((row) => row.length !== cols)) throw new RangeError(`prefix.actions rows must all have ${cols} values`);
  const values = p.actions.flatMap((row) => Array.from(row));
  const out: CommittedPrefix = {
    actions: encodeTensor([rows, cols], values),
    control_period_ms: p.controlPeriodMs ?? 0,
    method: p.method === undefined ? 'CHUNKING_METHOD_UNSPECIFIED' : METHODS[p.method],
  };
  if (p.method !== undefined && out.method === undefined)
    throw new TypeError(`prefix.method must be one of ${Object.keys(METHODS).join(', ')}, got ${String(p.method)}`);
  // `delay_steps` is proto3 `optional`: leaving it out asks the server to estimate d.
  if (p.delaySteps !== undefined) out.delay_steps = uint32('prefix.delaySteps', p.delaySteps);
  else if (!(p.controlPeriodMs !== undefined && p.controlPeriodMs > 0))
    throw new RangeError('prefix needs delaySteps, or controlPeriodMs > 0 for the server to estimate the delay');
  return out;
}

function toSampling(s: SamplingInit | undefined): SamplingOptions {
  const out: SamplingOptions = {
    action_steps: uint32('sampling.actionSteps', s?.actionSteps),
    vision_steps: uint32('sampling.visionSteps', s?.visionSteps),
    latency_budget_ms: uint32('sampling.latencyBudgetMs', s?.latencyBudgetMs),
  };
  if (s?.strictBudget) out.strict_budget = true;
  // `seed` is proto3 `optional`: leaving it out (rather than sending 0) is what asks the server to draw one.
  if (s?.seed !== undefined) out.seed = seedToWire(s.seed);
  return out;
}

/** Throws a TypeError or RangeError naming the field when the init cannot be encoded as it was meant. */
export function toPredictRequest(init: PredictRequestInit): PredictRequest {
  return {
    request_id: init.requestId || randomUUID(),
    robot_id: init.robotId,
    episode_id: init.episodeId ?? '',
    model: init.model ?? '',
    embodiment: init.embodiment,
    images: (init.images ?? []).map(toImage),
    state: init.state ? Array.from(init.state) : [],
    instruction: init.instruction ?? '',
    sampling: toSampling(init.sampling),
    return_future_embedding: init.returnFutureEmbedding ?? false,
    steps_executed: uint32('stepsExecuted', init.stepsExecuted),
    ...(init.prefix ? { prefix: toPrefix(init.prefix) } : {}),
  };
}
