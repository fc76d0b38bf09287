/**
 * What the scheduler drives: one model version's graphs behind an arena of slots. The real implementation
 * runs ONNX Runtime in the inference worker thread (onnx-executor.ts); tests use a fake. Buffers handed in are
 * transferred (the caller must not touch them afterwards).
 */
import { emptyPixelRow, type PixelDtype, type PixelRow } from '../preprocess/index.js';
import type { PrefixGuide } from '../sampling/index.js';
import type { CallTiming } from '../telemetry/index.js';
import type { SlotMove } from './slot-table.js';

/** Fixed shapes of one model version, from its manifest. */
export interface ModelShapes {
  readonly views: number;
  readonly imageHeight: number;
  readonly imageWidth: number;
  /** Element type of the VLM's pixel_values (manifest image.pixel_dtype, checked against the graph at load). */
  readonly pixelDtype: PixelDtype;
  readonly textTokens: number;
  readonly condTokens: number;
  readonly condDim: number;
  readonly stateDim: number;
  readonly horizon: number;
  readonly actionDim: number;
  /** 0 and 0 for an action-only package, whose rows carry zero-length future arrays. */
  readonly futureTokens: number;
  readonly futureDim: number;
  /**
   * The graphs have the future stream (vlm's obs_embedding; the denoiser's future, tau_o, v_future): the manifest's
   * hasFutureStream, false for an action-only package (docs/model-package.md, "Action-only packages").
   */
  readonly futureStream: boolean;
}

/** Elements of one request's pixel_values row, [V, 3, H, W]. */
export function pixelRowLength(s: ModelShapes): number {
  return s.views * 3 * s.imageHeight * s.imageWidth;
}

/** A zeroed pixel_values row of the model's type and length (warm-up requests, benchmarks). */
export function emptyModelPixelRow(s: ModelShapes): PixelRow {
  return emptyPixelRow(s.pixelDtype, pixelRowLength(s));
}

export interface VlmBatch {
  /** Moves to apply to the arena before anything else (rows left since the last call). */
  readonly moves: readonly SlotMove[];
  /** Arena slot each row's outputs and inputs go to. */
  readonly slots: Int32Array;
  /**
   * Each row's pixel_values [V, 3, H, W], as the decode pool made it, all of the model's `pixelDtype` (the batch
   * packer checks): never packed on the host, since a batch of paper-size float32 rows is tens of megabytes (30 rows:
   * 54 MB), and a fresh host array of that size costs its page faults and a copy before the device copy. The executor
   * copies the rows where its VLM reads them (a device buffer, or one host buffer it keeps).
   */
  readonly pixelRows: readonly PixelRow[];
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
  /** Normalized, padded state per row: [B, stateDim]. */
  readonly state: Float32Array;
  readonly embodimentIds: BigInt64Array;
  /** Initial action noise A_0 [B, horizon, actionDim] (a condition row's committed positions already at its prefix). */
  readonly actions0: Float32Array;
  /**
   * Each row's initial future noise O_0 [futureTokens, futureDim], the request's own array, handed on like the pixel
   * rows: a paper-size row is 295 KB, and packing a batch of them into a fresh host array cost the inference thread
   * its page faults and a copy before the executor copies each row to its arena slot anyway.
   */
  readonly futureRows: readonly Float32Array[];
}

export interface VlmResult extends CallTiming {
  /** [B, futureTokens, futureDim]: the current main-camera embedding (world-model surprise uses it). */
  readonly obsEmbedding: Float32Array;
}

export interface StepBatch {
  readonly moves: readonly SlotMove[];
  /** Slots to step, ascending. When they are exactly 0..B-1 the worker feeds arena views (no copy). */
  readonly slots: Int32Array;
  readonly tauA: Float32Array;
  readonly tauO: Float32Array;
  readonly dtA: Float32Array;
  readonly dtO: Float32Array;
  /** Slots (a subset of `slots`) whose final A and O must be returned after this step's update. */
  readonly finishing: Int32Array;
  /**
   * Per row (aligned with `slots`): the committed prefix to inpaint after this step's action update and the flow
   * time tau_A it reached, for rows with a prefix on an action step; undefined elsewhere (docs/sampling.md,
   * "Real-time chunking"). Absent when no row has one.
   */
  readonly guides?: readonly (StepGuide | undefined)[];
  /**
   * [B, horizon]: each row's flow time per action position, for a denoiser that takes them (`action_times`,
   * packages listing real-time chunking's condition method): tau_A, and 1 at a condition row's committed
   * positions. Absent when no row is on that method: such a denoiser then reads tau_A at every position.
   */
  readonly actionTimes?: Float32Array;
}

export interface StepGuide {
  readonly guide: PrefixGuide;
  /** tau_A after the update: (floor(i / q) + 1) / N_A, exactly 1 at the last action step. */
  readonly tau: number;
}

export interface StepResult extends CallTiming {
  /** Final normalized actions of the finishing rows, in `finishing` order: [F, horizon, actionDim]. */
  readonly actions: Float32Array;
  /** Final future embeddings of the finishing rows: [F, futureTokens, futureDim]. */
  readonly future: Float32Array;
}

export interface Executor {
  readonly shapes: ModelShapes;
  /** Arena rows available to the denoiser stage. */
  readonly capacity: number;
  runVlm(batch: VlmBatch): Promise<VlmResult>;
  step(batch: StepBatch): Promise<StepResult>;
  close(): Promise<void>;
}
