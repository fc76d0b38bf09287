/**
 * The Executor over ONNX Runtime, used inside the inference worker thread (onnxruntime-node's run() blocks
 * the thread it is called on). It owns one model version's sessions and the arena of denoiser rows:
 * requests' conditioning features, state, A and O stay in the arena between steps, and each step feeds views
 * of it (no copy) when the stepped rows are the arena's prefix, which the scheduler's slot table arranges.
 * The Euler updates (docs/sampling.md) run here, next to the data.
 */
import * as ort from 'onnxruntime-node';
import type { GraphInfo } from '../model/index.js';
import { emptyPixelRow, type PixelRow } from '../preprocess/index.js';
import { applyStep, broadcastTimes, inpaintStep } from '../sampling/index.js';
import type { Executor, ModelShapes, StepBatch, StepResult, VlmBatch, VlmResult } from './executor.js';
import type { SlotMove } from './slot-table.js';
import type { Device } from './device.js';

export interface OnnxExecutorInit {
  readonly vlmPath: string;
  readonly denoiserPath: string;
  readonly device: Device;
  readonly threads: number;
  readonly capacity: number;
  readonly shapes: ModelShapes;
}

/**
 * Exactly the chosen provider: ONNX Runtime still places the few nodes a GPU provider has no kernel for (shape
 * arithmetic) on its CPU provider, but a provider that fails to load fails the session instead of leaving every
 * node on the CPU.
 */
function providers(device: Device): ort.InferenceSession.ExecutionProviderConfig[] {
  return [device];
}

/** The session options of every graph the server runs (the GPU benchmarks use them too). */
export function sessionOptions(init: Pick<OnnxExecutorInit, 'device' | 'threads'>): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers(init.device),
    intraOpNumThreads: init.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Intra-op threads sleep between calls instead of spinning: a serving process shares its cores with the
    // gRPC event loop and image decoding, which spinning threads starve (BENCHMARKS.md, "Threads" and "On the lent
    // H200 host").
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

function graphInfo(session: ort.InferenceSession): GraphInfo {
  const meta = (list: readonly ort.InferenceSession.ValueMetadata[]) =>
    list.map((m) => (m.isTensor ? { name: m.name, type: m.type as string, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }));
  return { inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) };
}

class Arena {
  readonly vl: Float32Array;
  readonly state: Float32Array;
  readonly emb: BigInt64Array;
  readonly actions: Float32Array;
  readonly future: Float32Array;
  readonly vlLen: number;
  readonly aLen: number;
  readonly oLen: number;
  private readonly staging = new Map<Float32Array | BigInt64Array, Float32Array | BigInt64Array>();

  constructor(
    readonly s: ModelShapes,
    capacity: number,
  ) {
    this.vlLen = s.condTokens * s.condDim;
    this.aLen = s.horizon * s.actionDim;
    this.oLen = s.futureTokens * s.futureDim;
    this.vl = new Float32Array(capacity * this.vlLen);
    this.state = new Float32Array(capacity * s.stateDim);
    this.emb = new BigInt64Array(capacity);
    this.actions = new Float32Array(capacity * this.aLen);
    this.future = new Float32Array(capacity * this.oLen);
  }

  move({ from, to }: SlotMove): void {
    const row = <T extends Float32Array | BigInt64Array>(a: T, len: number) => a.copyWithin(to * len, from * len, (from + 1) * len);
    row(this.vl, this.vlLen);
    row(this.state, this.s.stateDim);
    row(this.emb, 1);
    row(this.actions, this.aLen);
    row(this.future, this.oLen);
  }

  /**
   * A batch view of the given rows: the arena itself when they are its prefix 0..B-1, else a gather into a
   * staging buffer kept per field. With more active rows than fit one call the picked rows are scattered, and
   * allocating and zeroing a fresh array per step for the paper-size conditioning was the inference thread's
   * biggest host cost (BENCHMARKS.md, "CUDA on one H200", host side). ONNX Runtime reads its
   * inputs before run() returns, so the buffer is free again by the next step.
   */
  rows<T extends Float32Array | BigInt64Array>(a: T, len: number, slots: Int32Array): T {
    const B = slots.length;
    if (slots.every((slot, b) => slot === b)) return a.subarray(0, B * len) as T;
    let staging = this.staging.get(a) as T | undefined;
    if (staging === undefined || staging.length < B * len) {
      staging = new (a.constructor as { new (n: number): T })(B * len);
      this.staging.set(a, staging);
    }
    const out = staging.subarray(0, B * len) as T;
    slots.forEach((slot, b) => out.set(a.subarray(slot * len, (slot + 1) * len) as never, b * len));
    return out;
  }
}

export class OnnxExecutor implements Executor {
  readonly shapes: ModelShapes;
  readonly capacity: number;
  /** The denoiser takes per-position action times (`action_times`; packages trained with prefix conditioning). */
  private readonly positionTimes: boolean;
  /** The graphs have the future stream (ModelShapes.futureStream); an action-only package's rows hold empty futures. */
  private readonly futureStream: boolean;

  private constructor(
    private readonly vlm: ort.InferenceSession,
    private readonly denoiser: ort.InferenceSession,
    private readonly arena: Arena,
    init: OnnxExecutorInit,
  ) {
    this.shapes = init.shapes;
    this.capacity = init.capacity;
    this.positionTimes = denoiser.inputNames.includes('action_times');
    this.futureStream = init.shapes.futureStream;
  }

  static async create(init: OnnxExecutorInit): Promise<OnnxExecutor> {
    const vlm = await ort.InferenceSession.create(init.vlmPath, sessionOptions(init));
    const denoiser = await ort.InferenceSession.create(init.denoiserPath, sessionOptions(init)).catch(async (err: unknown) => {
      await vlm.release();
      throw err;
    });
    return new OnnxExecutor(vlm, denoiser, new Arena(init.shapes, init.capacity), init);
  }

  get graphs(): { vlm: GraphInfo; denoiser: GraphInfo } {
    return { vlm: graphInfo(this.vlm), denoiser: graphInfo(this.denoiser) };
  }

  /**
   * The host buffer the VLM's pixel rows are packed into, of the model's pixel type, kept and grown (a fresh one per
   * call costs page faults). The batch packer made sure every row is of that type.
   */
  private pixelBuffer: PixelRow | undefined;

  private packPixels(rows: readonly PixelRow[]): ort.Tensor {
    const s = this.shapes;
    const len = rows[0]?.length ?? 0;
    if (this.pixelBuffer === undefined || this.pixelBuffer.length < rows.length * len) this.pixelBuffer = emptyPixelRow(s.pixelDtype, rows.length * len);
    const buffer = this.pixelBuffer;
    rows.forEach((row, b) => buffer.set(row, b * len));
    const dims = [rows.length, s.views, 3, s.imageHeight, s.imageWidth];
    // A uint8 VLM normalises in its graph (docs/model-package.md, "Images"): the rows go in as the decode pool made them.
    return buffer instanceof Uint8Array
      ? new ort.Tensor('uint8', buffer.subarray(0, rows.length * len), dims)
      : new ort.Tensor('float32', buffer.subarray(0, rows.length * len), dims);
  }

  async runVlm(batch: VlmBatch): Promise<VlmResult> {
    const h0 = performance.now();
    const s = this.shapes;
    const arena = this.arena;
    const B = batch.slots.length;
    for (const m of batch.moves) arena.move(m);
    const pixels = this.packPixels(batch.pixelRows);
    const t0 = performance.now();
    const out = await this.vlm.run({
      pixel_values: pixels,
      input_ids: new ort.Tensor('int64', batch.inputIds, [B, s.textTokens]),
      attention_mask: new ort.Tensor('int64', batch.attentionMask, [B, s.textTokens]),
    });
    const runMs = performance.now() - t0;
    const vl = out.vl_embs.data as Float32Array;
    batch.slots.forEach((slot, b) => {
      arena.vl.set(vl.subarray(b * arena.vlLen, (b + 1) * arena.vlLen), slot * arena.vlLen);
      arena.state.set(batch.state.subarray(b * s.stateDim, (b + 1) * s.stateDim), slot * s.stateDim);
      arena.emb[slot] = batch.embodimentIds[b];
      arena.actions.set(batch.actions0.subarray(b * arena.aLen, (b + 1) * arena.aLen), slot * arena.aLen);
      arena.future.set(batch.futureRows[b], slot * arena.oLen);
    });
    return {
      obsEmbedding: this.futureStream ? (out.obs_embedding.data as Float32Array) : new Float32Array(0),
      runMs,
      hostMs: performance.now() - h0 - runMs,
    };
  }

  async step(batch: StepBatch): Promise<StepResult> {
    const s = this.shapes;
    const arena = this.arena;
    const h0 = performance.now();
    for (const m of batch.moves) arena.move(m);
    const { slots } = batch;
    const B = slots.length;
    const feeds = {
      vl_embs: new ort.Tensor('float32', arena.rows(arena.vl, arena.vlLen, slots), [B, s.condTokens, s.condDim]),
      state: new ort.Tensor('float32', arena.rows(arena.state, s.stateDim, slots), [B, s.stateDim]),
      actions: new ort.Tensor('float32', arena.rows(arena.actions, arena.aLen, slots), [B, s.horizon, s.actionDim]),
      tau_a: new ort.Tensor('float32', batch.tauA, [B]),
      ...(this.futureStream && {
        future: new ort.Tensor('float32', arena.rows(arena.future, arena.oLen, slots), [B, s.futureTokens, s.futureDim]),
        tau_o: new ort.Tensor('float32', batch.tauO, [B]),
      }),
      embodiment_id: new ort.Tensor('int64', arena.rows(arena.emb, 1, slots), [B]),
      ...(this.positionTimes && { action_times: new ort.Tensor('float32', batch.actionTimes ?? broadcastTimes(batch.tauA, s.horizon), [B, s.horizon]) }),
    };
    const t0 = performance.now();
    const out = await this.denoiser.run(feeds);
    const t1 = performance.now();
    const vA = out.v_actions.data as Float32Array;
    // An action-only package's rows have empty futures: the update reads no future velocity.
    const vO = this.futureStream ? (out.v_future.data as Float32Array) : new Float32Array(0);
    // Euler updates in place in the arena (docs/sampling.md), each row by its own plan: the same pure function the
    // golden vectors test, on views of the arena rows and of the velocity outputs.
    slots.forEach((slot, b) => {
      const rowActions = arena.actions.subarray(slot * arena.aLen, (slot + 1) * arena.aLen);
      applyStep(
        { dtA: batch.dtA[b], dtO: batch.dtO[b] },
        rowActions,
        arena.future.subarray(slot * arena.oLen, (slot + 1) * arena.oLen),
        vA.subarray(b * arena.aLen, (b + 1) * arena.aLen),
        vO.subarray(b * arena.oLen, (b + 1) * arena.oLen),
      );
      const g = batch.guides?.[b];
      if (g) inpaintStep(g.guide, g.tau, rowActions);
    });
    const F = batch.finishing.length;
    const actions = new Float32Array(F * arena.aLen);
    const future = new Float32Array(F * arena.oLen);
    batch.finishing.forEach((slot, f) => {
      actions.set(arena.actions.subarray(slot * arena.aLen, (slot + 1) * arena.aLen), f * arena.aLen);
      future.set(arena.future.subarray(slot * arena.oLen, (slot + 1) * arena.oLen), f * arena.oLen);
    });
    const hostMs = t0 - h0 + (performance.now() - t1);
    return { actions, future, runMs: t1 - t0, hostMs };
  }

  async close(): Promise<void> {
    await Promise.all([this.vlm.release(), this.denoiser.release()]);
  }
}
