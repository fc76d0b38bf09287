/**
 * The Executor over the native addon (native-ort.ts), with the arena on the model's device: the conditioning
 * (vl_embs), state, embodiment id, A and O (none in an action-only package) of every row stay in device memory for
 * the request's life, and only the finished action chunks and future embeddings come back to the host (BENCHMARKS.md,
 * "Per-step host-device traffic": onnxruntime-node sends the conditioning to the GPU on every step). On the CPU the
 * same code runs on host memory. Same arena semantics as onnx-executor.ts: slots, moves, finishing rows.
 *
 * - VLM: its vl_embs output is bound straight into the arena rows of the batch when their slots are contiguous
 *   (the slot table adds rows at the end of the prefix, so they are), else into a staging buffer and copied row by
 *   row; state, embodiment ids and the initial noise are copied in once.
 * - Step: the denoiser reads the arena prefix [0, bucket) when the stepped slots are 0..B-1 (the slot table keeps
 *   active rows a prefix), else rows gathered into a staging arena; B is padded to a batch-size bucket
 *   (buckets.ts) whose padding rows get tau = dt = 0. The Euler update (docs/sampling.md) runs on the device as a
 *   small graph (executor-graphs.ts) into a second buffer, from which the B real rows are copied back: padding rows
 *   never write the arena.
 * - CUDA graphs: with `cudaGraphs` on CUDA, each bucket has two graph ids (arena prefix, staging arena), since a
 *   captured graph replays fixed addresses. All are captured at creation, each capture's cost reported; a bucket
 *   whose buffers or capture run out of device memory is dropped with a warning, and larger steps run as several
 *   calls of the largest bucket left. Then every captured graph is checked: its replay must match a regular run of
 *   the same session on the same inputs (graph id -1). A capture that replays wrong values (the one GPU run before
 *   this check had one: BENCHMARKS.md, "Native executor on one H100") turns the graphs off with a warning naming
 *   the component, bucket and difference, so a bad capture costs speed, never correctness.
 */
import { InferenceError } from '../errors/index.js';
import type { GraphInfo } from '../model/index.js';
import { broadcastTimes, initialNoise, inpaintStep } from '../sampling/index.js';
import { batchBuckets, bucketFor, chunks } from './buckets.js';
import { pixelRowLength, type Executor, type ModelShapes, type StepBatch, type StepResult, type VlmBatch, type VlmResult } from './executor.js';
import { copyModel, eulerUpdateModel, gatherRowsModel } from './executor-graphs.js';
import {
  isOrtError,
  loadNativeOrt,
  onnxRuntimeLibrary,
  type DType,
  type NativeBuffer,
  type NativeDevice,
  type NativeOrt,
  type NativeSession,
  type NativeValue,
} from './native-ort.js';
import type { OnnxExecutorInit } from './onnx-executor.js';
import type { SlotMove } from './slot-table.js';

export interface NativeExecutorInit extends OnnxExecutorInit {
  /** Most rows in one denoiser call (maxDenoiseBatch): the largest batch-size bucket. */
  readonly maxBatch: number;
  /**
   * Capture a CUDA graph per bucket (CUDA only; ignored on the CPU unless a test forces it): the cudaGraphs option,
   * weighed against `graphHazards` by graphPlan.
   */
  readonly cudaGraphs: CudaGraphsOption;
  /**
   * What the package's manifest records would break a replay of its denoiser (architecture.cuda_graph_hazards, the
   * toolchain's check of the exported graph); undefined when it records nothing (packages exported before the
   * record).
   */
  readonly graphHazards?: readonly string[];
  readonly deviceId?: number;
}

/** The cudaGraphs option: `auto` captures packages that record no hazard; `true` also tries those without a record. */
export type CudaGraphsOption = boolean | 'auto';

/**
 * Whether the denoiser is captured as CUDA graphs, and what to log when it is not though it could have been asked
 * for. Pure: the option, the device and the package's record (NativeExecutorInit.graphHazards).
 */
export function graphPlan(option: CudaGraphsOption, device: string, hazards: readonly string[] | undefined): { capture: boolean; note?: ExecutorNote } {
  if (option === false || device !== 'cuda') return { capture: false };
  if (hazards !== undefined && hazards.length > 0)
    return {
      capture: false,
      note: {
        level: 'warn',
        message: `the package records ${hazards.length} nodes that a CUDA graph would replay with stale host data: serving without graphs (export it again with the current toolchain)`,
        fields: { hazards: hazards.slice(0, 5) },
      },
    };
  if (hazards === undefined && option === 'auto')
    return {
      capture: false,
      note: {
        level: 'info',
        message:
          'the package does not record whether its denoiser replays as a CUDA graph (architecture.cuda_graph_hazards): serving without graphs; --cuda-graphs true tries them',
      },
    };
  return { capture: true };
}

/** Something the main thread should log about the executor (capture costs, degraded buckets, the copy path). */
export interface ExecutorNote {
  readonly level: 'info' | 'warn';
  readonly message: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface NativeExecutorDeps {
  /** The addon; tests wrap it to inject faults. Default: loadNativeOrt(). */
  readonly ort?: NativeOrt;
  /**
   * How rows are gathered and stepped: 'graphs' (the gather and update graphs, as on a GPU) or 'host' (row copies
   * and the addon's axpyRows in place: on the CPU a graph run costs more than the work). Default: 'host' on the CPU,
   * 'graphs' on a device.
   */
  readonly rowOps?: 'graphs' | 'host';
  /** Use graph ids even on the CPU (tests of the capture path). */
  readonly forceGraphIds?: boolean;
  /** How device copies go: 'auto' tries CopyTensors first; 'identity-graphs' skips it (a drill, or a provider that misbehaves). */
  readonly copy?: 'auto' | 'identity-graphs';
  /** Told when a call fails in a way that leaves the device unusable, before the error is thrown. */
  readonly onDeviceLost?: (err: Error) => void;
  /**
   * Check each captured graph's replay against a regular run at creation (default true). Off only to reproduce
   * what an unchecked capture computes (scripts/gpu/native-check.mjs).
   */
  readonly verifyGraphs?: boolean;
}

/** Largest relative L2 difference between a replayed graph and a regular run of it on the same inputs. */
export const GRAPH_CHECK_TOLERANCE = 1e-3;

/** One captured graph's replay against a regular run (graph id -1) on the same inputs. */
export interface GraphCheck {
  readonly bucket: number;
  readonly mode: 'prefix' | 'staging';
  readonly component: 'gather' | 'denoiser' | 'update';
  /** ||replay - regular|| / ||regular|| over the component's outputs. */
  readonly relL2: number;
  readonly maxAbs: number;
  readonly ok: boolean;
}

/** ONNX Runtime's words for a device out of memory (CUDA's allocator, its BFC arena, the host's). */
export const OUT_OF_MEMORY = /out of memory|failed to allocate|cudaErrorMemoryAllocation|bad_alloc|CUBLAS_STATUS_ALLOC_FAILED/i;
/** Errors after which a CUDA context is unusable: every later call fails too. */
export const DEVICE_LOST =
  /illegal memory access|unspecified launch failure|device-side assert|cudaErrorDevicesUnavailable|cudaErrorLaunchFailure|cudaErrorIllegalAddress|cudaErrorECCUncorrectable|device lost|GPU has fallen off the bus|CUDA failure 999|unknown error.*CUDA/i;

/** The device cannot be used any more: the version fails instead of retrying on it. */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
}

/** Calls per CUDA graph id at creation: ONNX Runtime's regular run(s) before capture, the capture, a replay. */
const CAPTURE_RUNS = 3;
/** ONNX Runtime's graph id for a regular run of a session created with CUDA graphs (kCudaGraphAnnotationSkip). */
const NO_GRAPH = -1;

const isOutOfMemory = (err: unknown) => isOrtError(err) && OUT_OF_MEMORY.test(err.message);

const BYTES: Record<DType, number> = { float32: 4, int64: 8, int32: 4, float16: 2, uint8: 1 };

/** Rows of one field in one device buffer, with cached views: flat rows for copies, shaped spans for graphs. */
class Rows {
  readonly buffer: NativeBuffer;
  readonly rowBytes: number;
  private readonly flat: NativeValue[] = [];
  private readonly spans = new Map<string, NativeValue>();

  constructor(
    private readonly ort: NativeOrt,
    session: NativeSession,
    readonly rows: number,
    readonly len: number,
    readonly dtype: DType,
  ) {
    this.rowBytes = len * BYTES[dtype];
    this.buffer = new ort.Buffer(session, rows * this.rowBytes);
  }

  /** Row r as a flat tensor [len]. */
  row(r: number): NativeValue {
    return (this.flat[r] ??= new this.ort.Value(this.buffer, r * this.rowBytes, this.dtype, [this.len]));
  }

  /** Rows [start, start + n) as a tensor of the given shape per row ([] = flat [n * len]). */
  span(start: number, n: number, rowShape: readonly number[] | 'flat' | 'rows'): NativeValue {
    const k = `${start}:${n}:${Array.isArray(rowShape) ? rowShape.join('x') : rowShape}`;
    let v = this.spans.get(k);
    if (!v) {
      const shape = rowShape === 'flat' ? [n * this.len] : rowShape === 'rows' ? [n, this.len] : [n, ...rowShape];
      v = new this.ort.Value(this.buffer, start * this.rowBytes, this.dtype, shape);
      this.spans.set(k, v);
    }
    return v;
  }

  release(): void {
    for (const v of [...this.flat, ...this.spans.values()]) v?.release();
    this.buffer.release();
  }
}

type Field = 'vl' | 'state' | 'emb' | 'actions' | 'future';
const FIELDS: readonly Field[] = ['vl', 'state', 'emb', 'actions', 'future'];
const DENOISER_INPUT: Record<Field, string> = { vl: 'vl_embs', state: 'state', emb: 'embodiment_id', actions: 'actions', future: 'future' };

/**
 * The streams the denoiser integrates: its velocity output, the update graph's step-size input and output
 * (executor-graphs.ts), and the row of the parameters (tau_a, tau_o, dt_a, dt_o) holding the step size. An
 * action-only package has only `actions` (docs/model-package.md, "Action-only packages"): no future field, input,
 * velocity or update.
 */
type Stream = 'actions' | 'future';
const STREAM: Record<Stream, { readonly velocity: string; readonly dt: string; readonly dtRow: number; readonly next: string }> = {
  actions: { velocity: 'v_actions', dt: 'dt_a', dtRow: 2, next: 'actions_next' },
  future: { velocity: 'v_future', dt: 'dt_o', dtRow: 3, next: 'future_next' },
};

interface FieldSpec {
  readonly len: number;
  readonly dtype: DType;
  readonly rowShape: readonly number[];
}

function fieldSpecs(s: ModelShapes): Record<Field, FieldSpec> {
  return {
    vl: { len: s.condTokens * s.condDim, dtype: 'float32', rowShape: [s.condTokens, s.condDim] },
    state: { len: s.stateDim, dtype: 'float32', rowShape: [s.stateDim] },
    emb: { len: 1, dtype: 'int64', rowShape: [] },
    actions: { len: s.horizon * s.actionDim, dtype: 'float32', rowShape: [s.horizon, s.actionDim] },
    future: { len: s.futureTokens * s.futureDim, dtype: 'float32', rowShape: [s.futureTokens, s.futureDim] },
  };
}

type Pair = readonly [NativeValue, NativeValue];

/**
 * Copies between views. CopyTensors where the device's provider registered its data transfer with ONNX Runtime's
 * environment, else through Identity graphs on the device's session (ONNX Runtime copies a bound input to the
 * graph's device and a bound output back, whichever memory they are in). Host-to-host copies are memcpy either way.
 */
class Copier {
  private identity: Partial<Record<DType, NativeSession>> | undefined;
  readonly path: 'copy-tensors' | 'identity-graphs';

  constructor(
    private readonly ort: NativeOrt,
    device: NativeDevice,
    deviceId: number,
    mode: 'auto' | 'identity-graphs',
    probe: (copy: (pairs: readonly Pair[]) => void) => boolean,
  ) {
    if (mode === 'auto' && (device === 'cpu' || probe((pairs) => ort.copy(pairs)))) {
      this.path = 'copy-tensors';
      return;
    }
    const options = { device, threads: 1, deviceId };
    // uint8: the pixel rows of a VLM that normalises them itself.
    this.identity = {
      float32: new ort.Session(copyModel('float32'), options),
      int64: new ort.Session(copyModel('int64'), options),
      uint8: new ort.Session(copyModel('uint8'), options),
    };
    this.path = 'identity-graphs';
  }

  /** Pairs of one direction (all device-to-device, or all host-to-device, ...) of one dtype. */
  copy(pairs: readonly Pair[], dtype: DType): void {
    if (pairs.length === 0) return;
    if (!this.identity) return this.ort.copy(pairs);
    const session = this.identity[dtype];
    if (!session) throw new InferenceError(`no copy graph for ${dtype}`);
    for (const [src, dst] of pairs) session.run({ x: src }, { y: dst });
  }

  release(): void {
    for (const s of Object.values(this.identity ?? {})) s?.release();
  }
}

interface Capture {
  readonly bucket: number;
  readonly mode: 'prefix' | 'staging';
  readonly ms: number;
}

export class NativeExecutor implements Executor {
  readonly shapes: ModelShapes;
  readonly capacity: number;
  /** What the main thread should log once the executor is up. */
  readonly notes: ExecutorNote[] = [];
  /** Batch-size buckets in use (fewer than asked when device memory ran short). */
  buckets: number[];
  readonly captures: Capture[] = [];
  /** Each captured graph's check at creation (empty without graphs). */
  readonly graphChecks: GraphCheck[] = [];
  private readonly specs: Record<Field, FieldSpec>;
  /** The arena's fields and the integrated streams: without `future` for an action-only package (ModelShapes.futureStream). */
  private readonly fields: readonly Field[];
  private readonly streams: readonly Stream[];
  /** Whether runs replay the captured graphs; false after a failed check. */
  private graphIds: boolean;
  /** The sessions were created with CUDA graphs: a run without a graph must say so (NO_GRAPH), or it captures id 0. */
  private readonly graphSessions: boolean;
  private readonly hostUpdate: boolean;
  private readonly deviceId: number;
  /** The gather graph's session and its row indices (device path), or undefined (row copies). */
  private gatherRows: { session: NativeSession; idx: Rows; host: BigInt64Array; hostView: NativeValue } | undefined;
  private readonly arena = {} as Record<Field, Rows>;
  private staging = {} as Record<Field, Rows>;
  /** Per stream in `streams`: the denoiser's velocities, and the device update's results. */
  private velocity = {} as Record<Stream, Rows>;
  private next = {} as Record<Stream, Rows>;
  /** tau_a, tau_o, dt_a, dt_o of the step's rows (zero for padding), copied in once per call. */
  private params!: Rows;
  private paramsHost!: Float32Array;
  /**
   * Per-position action times [max, horizon] of the step's rows, for a denoiser that takes them (`action_times`,
   * packages trained with prefix conditioning); copied in once per call like the parameters. Undefined otherwise.
   */
  private actionTimes: Rows | undefined;
  private actionTimesHost: Float32Array | undefined;
  private vlStaging: Rows | undefined;
  /** The VLM's pixel_values rows (of the model's pixel type), on its device; grown to the largest VLM batch seen. */
  private pixelStaging: Rows | undefined;
  private readonly copier: Copier;
  /** Views made for one call (over its host arrays, or arena rows it alone touches), released when it returns. */
  private readonly scratch: NativeValue[] = [];
  private closed = false;

  private constructor(
    private readonly ort: NativeOrt,
    private readonly vlm: NativeSession,
    private readonly denoiser: NativeSession,
    private readonly update: NativeSession,
    init: NativeExecutorInit,
    private readonly deps: NativeExecutorDeps,
  ) {
    this.shapes = init.shapes;
    this.capacity = init.capacity;
    this.specs = fieldSpecs(init.shapes);
    this.fields = init.shapes.futureStream ? FIELDS : FIELDS.filter((f) => f !== 'future');
    this.streams = init.shapes.futureStream ? ['actions', 'future'] : ['actions'];
    this.graphIds = (init.cudaGraphs === true && denoiser.device === 'cuda') || deps.forceGraphIds === true;
    this.graphSessions = this.graphIds;
    this.buckets = batchBuckets(init.maxBatch);
    this.hostUpdate = denoiser.device === 'cpu' && deps.rowOps !== 'graphs';
    this.deviceId = init.deviceId ?? 0;
    this.copier = new Copier(ort, denoiser.device, init.deviceId ?? 0, deps.copy ?? 'auto', (copy) => this.copyWorks(copy));
    if (denoiser.device !== 'cpu' || this.copier.path !== 'copy-tensors')
      this.notes.push({ level: 'info', message: `native executor copies on ${denoiser.device} through ${this.copier.path}` });
  }

  static async create(init: NativeExecutorInit, deps: NativeExecutorDeps = {}): Promise<NativeExecutor> {
    await Promise.resolve();
    const ort = deps.ort ?? nativeOrt();
    if (init.device !== 'cpu' && init.device !== 'cuda') throw new InferenceError(`the native executor runs on cpu or cuda, not ${init.device}`);
    const device: NativeDevice = init.device;
    const options = { device, threads: init.threads, deviceId: init.deviceId ?? 0 };
    const opened: NativeSession[] = [];
    const open = (model: string | Uint8Array, cudaGraph: boolean, threads = init.threads, config?: Record<string, string>) => {
      const s = new ort.Session(model, { ...options, threads, cudaGraph, config });
      opened.push(s);
      return s;
    };
    const notes: ExecutorNote[] = [];
    const plan = graphPlan(init.cudaGraphs, device, init.graphHazards);
    if (plan.note) notes.push(plan.note);
    try {
      let graphs = plan.capture;
      const vlm = open(init.vlmPath, false);
      let denoiser: NativeSession;
      try {
        // A captured graph replays only the CUDA provider's kernels: a node ONNX Runtime keeps on the CPU (the shape
        // arithmetic of some exports) would feed it stale values (BENCHMARKS.md, "Second H100 run"). Refusing such a
        // session says so at load, and the executor runs without graphs.
        denoiser = open(init.denoiserPath, graphs, init.threads, graphs ? { 'session.disable_cpu_ep_fallback': '1' } : undefined);
      } catch (err) {
        if (!graphs) throw err;
        // ONNX Runtime refuses CUDA graphs for a graph with control flow, and (the option above) nodes off the CUDA provider.
        notes.push({ level: 'warn', message: 'the denoiser cannot run as a CUDA graph here: running it without', fields: { error: (err as Error).message } });
        graphs = false;
        denoiser = open(init.denoiserPath, false);
      }
      const s = init.shapes;
      // One thread: a few thousand elementwise operations cost less than waking a thread pool.
      const update = open(eulerUpdateModel(s.horizon * s.actionDim, s.futureTokens * s.futureDim), graphs, 1);
      if (device === 'cuda' && deps.copy !== 'identity-graphs') registerCudaCopies(ort);
      const executor = new NativeExecutor(ort, vlm, denoiser, update, { ...init, cudaGraphs: graphs }, deps);
      executor.notes.unshift(...notes);
      opened.length = 0;
      try {
        executor.allocate();
        if (executor.graphIds) {
          executor.captureAll();
          if (deps.verifyGraphs !== false) executor.verifyGraphs();
        }
      } catch (err) {
        await executor.close();
        throw err;
      }
      return executor;
    } catch (err) {
      for (const s of opened) s.release();
      throw err;
    }
  }

  get graphs(): { vlm: GraphInfo; denoiser: GraphInfo } {
    const info = (s: NativeSession): GraphInfo => ({
      inputs: s.inputs().map((m) => ({ ...m, shape: [...m.shape] })),
      outputs: s.outputs().map((m) => ({ ...m, shape: [...m.shape] })),
    });
    return { vlm: info(this.vlm), denoiser: info(this.denoiser) };
  }

  get device(): NativeDevice {
    return this.denoiser.device;
  }

  /** Whether steps replay captured CUDA graphs (captured, and their check passed). */
  get graphsInUse(): boolean {
    return this.graphIds;
  }

  get copyPath(): string {
    return this.copier.path;
  }

  // ---- set-up ----------------------------------------------------------------------------------------------------

  /** A host -> device -> host round trip through CopyTensors. */
  private copyWorks(copy: (pairs: readonly Pair[]) => void): boolean {
    const probe = new this.ort.Buffer(this.denoiser, 16);
    try {
      const sent = Float32Array.of(1, 2, 3, 4);
      const back = new Float32Array(4);
      const onDevice = this.temp(probe, 0, 'float32', [4]);
      copy([[this.temp(sent, 0, 'float32', [4]), onDevice]]);
      copy([[onDevice, this.temp(back, 0, 'float32', [4])]]);
      return back.every((v, i) => v === sent[i]);
    } catch {
      return false;
    } finally {
      for (const v of this.scratch.splice(0)) v.release();
      probe.release();
    }
  }

  private rows(n: number, field: FieldSpec | { len: number; dtype: DType }): Rows {
    const r = new Rows(this.ort, this.denoiser, n, field.len, field.dtype);
    if (!r.buffer.host) this.zero(r);
    return r;
  }

  /** Device memory comes uninitialised: padding rows must hold finite numbers. */
  private zero(r: Rows): void {
    const chunkRows = Math.max(1, Math.floor((1 << 22) / r.rowBytes));
    const zeros = r.dtype === 'int64' ? new BigInt64Array(chunkRows * r.len) : new Float32Array(chunkRows * r.len);
    for (let start = 0; start < r.rows; start += chunkRows) {
      const n = Math.min(chunkRows, r.rows - start);
      const from = new this.ort.Value(zeros, 0, r.dtype, [n * r.len]);
      const to = new this.ort.Value(r.buffer, start * r.rowBytes, r.dtype, [n * r.len]);
      this.copier.copy([[from, to]], r.dtype);
      from.release();
      to.release();
    }
  }

  /**
   * The arena (capacity rows, at least the largest bucket, so that a padded prefix fits) and the per-call buffers of
   * the largest bucket. Out of device memory for the per-call buffers: the largest bucket goes and the next is tried.
   */
  private allocate(): void {
    const arenaRows = Math.max(this.capacity, this.buckets[this.buckets.length - 1]);
    try {
      for (const f of this.fields) this.arena[f] = this.rows(arenaRows, this.specs[f]);
    } catch (err) {
      if (isOutOfMemory(err))
        throw new InferenceError(`the arena of ${arenaRows} rows does not fit in ${this.device} memory (maxActive): ${(err as Error).message}`, { cause: err });
      throw err;
    }
    for (;;) {
      const max = this.buckets[this.buckets.length - 1];
      try {
        this.allocateCallBuffers(max);
        return;
      } catch (err) {
        this.releaseCallBuffers();
        if (!isOutOfMemory(err) || this.buckets.length === 1) throw err;
        this.dropBuckets(this.buckets.length - 1, 'allocating its buffers', err);
      }
    }
  }

  private allocateCallBuffers(max: number): void {
    this.staging = {} as Record<Field, Rows>;
    for (const f of this.fields) this.staging[f] = this.rows(max, this.specs[f]);
    for (const st of this.streams) {
      this.velocity[st] = this.rows(max, this.specs[st]);
      this.next[st] = this.rows(max, this.specs[st]);
    }
    this.params = this.rows(4, { len: max, dtype: 'float32' });
    this.paramsHost = new Float32Array(4 * max);
    if (this.denoiser.inputs().some((i) => i.name === 'action_times')) {
      this.actionTimes = this.rows(max, { len: this.shapes.horizon, dtype: 'float32' });
      this.actionTimesHost = new Float32Array(max * this.shapes.horizon);
    }
    if (!this.hostUpdate) {
      const host = new BigInt64Array(max);
      const idx = this.rows(1, { len: max, dtype: 'int64' });
      const fields = this.fields.map((f) => ({ name: f, type: this.specs[f].dtype as 'float32' | 'int64', len: this.specs[f].len }));
      this.gatherRows = {
        session: new this.ort.Session(gatherRowsModel(fields), {
          device: this.device,
          threads: 1,
          deviceId: this.deviceId,
          cudaGraph: this.graphIds && this.device === 'cuda',
        }),
        idx,
        host,
        hostView: new this.ort.Value(host, 0, 'int64', [max]),
      };
    }
  }

  private releaseCallBuffers(): void {
    // Views over these buffers go with them.
    for (const v of this.paramViews.values()) v.release();
    this.paramViews.clear();
    this.paramsHostView?.release();
    this.paramsHostView = undefined;
    if (this.gatherRows) {
      this.gatherRows.hostView.release();
      this.gatherRows.idx.release();
      this.gatherRows.session.release();
      this.gatherRows = undefined;
    }
    for (const r of [
      ...Object.values(this.staging ?? {}),
      ...Object.values(this.velocity ?? {}),
      ...Object.values(this.next ?? {}),
      this.params,
      this.actionTimes,
    ])
      r?.release();
    this.actionTimes = undefined;
    this.staging = {} as Record<Field, Rows>;
    this.velocity = {} as Record<Stream, Rows>;
    this.next = {} as Record<Stream, Rows>;
  }

  /** Drops buckets[from..] after `err`: steps run as several calls of the largest bucket left. */
  private dropBuckets(from: number, doing: string, err: unknown): void {
    const dropped = this.buckets.slice(from);
    this.buckets = this.buckets.slice(0, from);
    this.notes.push({
      level: 'warn',
      message: `out of ${this.device} memory ${doing} for batch ${dropped[0]}: the denoiser runs batches of at most ${this.buckets[this.buckets.length - 1]} rows`,
      fields: { dropped, buckets: this.buckets, error: (err as Error).message },
    });
  }

  /**
   * Captures every bucket's graphs (arena prefix and staging arena), smallest first. ONNX Runtime runs a graph id
   * normally before it captures it, then replays it: CAPTURE_RUNS calls per id cover both, and their total is the
   * capture's cost.
   */
  private captureAll(): void {
    for (let i = 0; i < this.buckets.length; i++) {
      const bucket = this.buckets[i];
      try {
        for (const prefix of [true, false]) {
          const t0 = performance.now();
          for (let r = 0; r < CAPTURE_RUNS; r++) this.runBucket(bucket, prefix);
          this.captures.push({ bucket, mode: prefix ? 'prefix' : 'staging', ms: performance.now() - t0 });
        }
      } catch (err) {
        if (!isOutOfMemory(err) || i === 0) throw err;
        this.dropBuckets(i, 'capturing its CUDA graph', err);
        break;
      }
    }
    this.notes.push({
      level: 'info',
      message: `captured ${this.captures.length} CUDA graphs`,
      fields: { captures: this.captures.map((c) => ({ ...c, ms: Math.round(c.ms * 10) / 10 })) },
    });
  }

  // ---- calls -----------------------------------------------------------------------------------------------------

  private graphId(bucket: number, prefix: boolean): number | undefined {
    if (!this.graphIds) return this.graphSessions ? NO_GRAPH : undefined;
    return 1 + 2 * this.buckets.indexOf(bucket) + (prefix ? 0 : 1);
  }

  /**
   * One padded denoiser call and its Euler update over the arena prefix or the staging arena (gathered first by the
   * gather graph, when rows go through graphs); returns its ms.
   */
  private runBucket(bucket: number, prefix: boolean): number {
    const id = this.graphId(bucket, prefix);
    const t0 = performance.now();
    if (!prefix && this.gatherRows) this.gatherCall(bucket, id);
    this.denoiserCall(bucket, prefix, id);
    if (!this.hostUpdate) this.updateCall(bucket, prefix, id);
    return performance.now() - t0;
  }

  /** Arena rows idx[0 .. bucket) into the staging arena. */
  private gatherCall(bucket: number, id: number | undefined): void {
    const g = this.gatherRows!;
    const inputs: Record<string, NativeValue> = { idx: this.firstValues(g.idx, bucket, 'int64') };
    const outputs: Record<string, NativeValue> = {};
    for (const f of this.fields) {
      inputs[f] = this.arena[f].span(0, this.arena[f].rows, 'rows');
      outputs[`${f}_rows`] = this.staging[f].span(0, bucket, 'rows');
    }
    g.session.run(inputs, outputs, id);
  }

  /** The denoiser over rows [0, bucket) of the arena or the staging arena, into the velocity buffers. */
  private denoiserCall(bucket: number, prefix: boolean, id: number | undefined): void {
    const src = prefix ? this.arena : this.staging;
    const inputs: Record<string, NativeValue> = {};
    for (const f of this.fields) inputs[DENOISER_INPUT[f]] = src[f].span(0, bucket, this.specs[f].rowShape);
    const max = this.params.len;
    inputs.tau_a = this.paramSpan(0, max, bucket, false);
    if (this.shapes.futureStream) inputs.tau_o = this.paramSpan(1, max, bucket, false);
    if (this.actionTimes) inputs.action_times = this.actionTimes.span(0, bucket, [this.shapes.horizon]);
    const outputs: Record<string, NativeValue> = {};
    for (const st of this.streams) outputs[STREAM[st].velocity] = this.velocity[st].span(0, bucket, this.specs[st].rowShape);
    this.denoiser.run(inputs, outputs, id);
  }

  /** The Euler update of rows [0, bucket) on the device, into the next buffers (the graph of executor-graphs.ts). */
  private updateCall(bucket: number, prefix: boolean, id: number | undefined): void {
    const src = prefix ? this.arena : this.staging;
    const max = this.params.len;
    const inputs: Record<string, NativeValue> = {};
    const outputs: Record<string, NativeValue> = {};
    for (const st of this.streams) {
      inputs[st] = src[st].span(0, bucket, 'rows');
      inputs[STREAM[st].velocity] = this.velocity[st].span(0, bucket, 'rows');
      inputs[STREAM[st].dt] = this.paramSpan(STREAM[st].dtRow, max, bucket, true);
      outputs[STREAM[st].next] = this.next[st].span(0, bucket, 'rows');
    }
    this.update.run(inputs, outputs, id);
  }

  /**
   * Each captured graph against a regular run of its session on the same inputs (seeded values in the arena rows the
   * largest bucket reads, flow times and step sizes of real steps, a gather that reverses those rows into the staging
   * arena). Runs at creation, before any request: a failure turns the graphs off (runs pass NO_GRAPH) and says which
   * graph and by how much.
   */
  private verifyGraphs(): void {
    const max = this.buckets[this.buckets.length - 1];
    // Seeded standard normals (the sampler's own generator) in the rows the checks read, [0, max); embodiment 0.
    FIELDS.forEach((f, k) => {
      // k from FIELDS, not this.fields: each field's values are the same whichever fields the package has.
      if (!this.fields.includes(f)) return;
      const r = this.arena[f];
      const host = r.dtype === 'int64' ? new BigInt64Array(max * r.len) : initialNoise(BigInt(k + 1), max * r.len, 0).actions;
      this.copier.copy([[this.temp(host, 0, r.dtype, [max * r.len]), r.span(0, max, 'flat')]], r.dtype);
    });
    // Flow times spread over (0.1, 0.9) by the golden ratio, so that rows differ.
    const spread = (i: number) => 0.1 + 0.8 * ((i * 0.6180339887498949) % 1);
    const p = this.paramsHost;
    for (let b = 0; b < max; b++) {
      p[b] = spread(2 * b + 1);
      p[max + b] = spread(2 * b + 2);
      p[2 * max + b] = 0.25;
      p[3 * max + b] = 0.125;
    }
    this.copier.copy([[this.paramsHostValue(), this.params.span(0, 4, 'flat')]], 'float32');
    if (this.gatherRows) {
      const g = this.gatherRows;
      for (let b = 0; b < max; b++) g.host[b] = BigInt(max - 1 - b);
      this.copier.copy([[g.hostView, g.idx.span(0, 1, 'flat')]], 'int64');
    }
    const outputsOf = {
      gather: () => this.fields.map((f) => this.staging[f]),
      denoiser: () => this.streams.map((st) => this.velocity[st]),
      update: () => this.streams.map((st) => this.next[st]),
    };
    for (const bucket of this.buckets) {
      for (const prefix of [true, false]) {
        const id = this.graphId(bucket, prefix)!;
        const calls: [GraphCheck['component'], (id: number) => void][] = [];
        if (!prefix && this.gatherRows) calls.push(['gather', (i) => this.gatherCall(bucket, i)]);
        calls.push(['denoiser', (i) => this.denoiserCall(bucket, prefix, i)]);
        if (!this.hostUpdate) calls.push(['update', (i) => this.updateCall(bucket, prefix, i)]);
        for (const [component, call] of calls) {
          const read = () => outputsOf[component]().map((r) => this.readRows(r, bucket));
          call(id);
          const replayed = read();
          call(NO_GRAPH);
          const regular = read();
          this.scratch.splice(0).forEach((v) => v.release());
          const { relL2, maxAbs } = difference(replayed, regular);
          this.graphChecks.push({ bucket, mode: prefix ? 'prefix' : 'staging', component, relL2, maxAbs, ok: relL2 <= GRAPH_CHECK_TOLERANCE });
        }
      }
    }
    const failed = this.graphChecks.filter((c) => !c.ok);
    if (failed.length === 0) {
      this.notes.push({ level: 'info', message: `checked ${this.graphChecks.length} CUDA graph replays against regular runs` });
      return;
    }
    this.graphIds = false;
    this.notes.push({
      level: 'warn',
      message: `${failed.length} of ${this.graphChecks.length} CUDA graph replays differ from regular runs of the same graphs on the same inputs: serving without CUDA graphs`,
      fields: {
        tolerance: GRAPH_CHECK_TOLERANCE,
        failed: failed.map((c) => ({ ...c, relL2: Number(c.relL2.toPrecision(3)), maxAbs: Number(c.maxAbs.toPrecision(3)) })),
      },
    });
  }

  /** Rows [0, n) of a buffer, on the host, as float64 for comparison. */
  private readRows(r: Rows, n: number): Float64Array {
    const host = r.dtype === 'int64' ? new BigInt64Array(n * r.len) : new Float32Array(n * r.len);
    this.copier.copy([[r.span(0, n, 'flat'), this.temp(host, 0, r.dtype, [n * r.len])]], r.dtype);
    return Float64Array.from(host, Number);
  }

  private readonly paramViews = new Map<string, NativeValue>();

  /** The first `n` values of a one-row buffer, as [n]. */
  private firstValues(r: Rows, n: number, dtype: DType): NativeValue {
    const k = `first:${n}`;
    let v = this.paramViews.get(k);
    if (!v) {
      v = new this.ort.Value(r.buffer, 0, dtype, [n]);
      this.paramViews.set(k, v);
    }
    return v;
  }

  /** Row `which` of the parameters (a [4, max] buffer), its first `bucket` values as [bucket] or [bucket, 1]. */
  private paramSpan(which: number, max: number, bucket: number, column: boolean): NativeValue {
    const k = `${which}:${bucket}:${column}`;
    let v = this.paramViews.get(k);
    if (!v) {
      v = new this.ort.Value(this.params.buffer, which * max * 4, 'float32', column ? [bucket, 1] : [bucket]);
      this.paramViews.set(k, v);
    }
    return v;
  }

  private applyMoves(moves: readonly SlotMove[]): void {
    // One move at a time, in order: a later move may read the row an earlier one wrote.
    for (const { from, to } of moves) for (const f of this.fields) this.copier.copy([[this.arena[f].row(from), this.arena[f].row(to)]], this.specs[f].dtype);
  }

  /** A view for the current call only. */
  private temp(memory: NativeBuffer | ArrayBufferView, byteOffset: number, dtype: DType, shape: readonly number[]): NativeValue {
    const v = new this.ort.Value(memory, byteOffset, dtype, shape);
    this.scratch.push(v);
    return v;
  }

  private guard<T>(call: () => T): T {
    if (this.closed) throw new InferenceError('the executor was closed');
    try {
      return call();
    } catch (err) {
      if (isOrtError(err) && DEVICE_LOST.test(err.message)) {
        const lost = new DeviceLostError(`the ${this.device} device failed and cannot be used any more: ${err.message}`, { cause: err });
        this.deps.onDeviceLost?.(lost);
        throw lost;
      }
      throw err;
    } finally {
      for (const v of this.scratch.splice(0)) v.release();
    }
  }

  async runVlm(batch: VlmBatch): Promise<VlmResult> {
    await turn();
    return this.guard(() => this.vlmCall(batch));
  }

  private vlmCall(batch: VlmBatch): VlmResult {
    const h0 = performance.now();
    const s = this.shapes;
    const ort = this.ort;
    const { slots } = batch;
    const B = slots.length;
    this.applyMoves(batch.moves);
    const contiguous = slots.every((slot, b) => slot === slots[0] + b);
    const vl = this.specs.vl;
    let vlOut: NativeValue;
    if (contiguous) {
      vlOut = this.temp(this.arena.vl.buffer, slots[0] * this.arena.vl.rowBytes, 'float32', [B, ...vl.rowShape]);
    } else {
      this.vlStaging = this.vlmRows(this.vlStaging, B, vl.len, 'float32');
      vlOut = this.vlStaging.span(0, B, vl.rowShape);
    }
    // The rows' pixels straight to where the VLM reads them (one copy each; on a GPU, host to device). A uint8 package's
    // rows are the resized pixels, a quarter of the bytes, normalised by the VLM (docs/model-package.md, "Images").
    const pixelLen = pixelRowLength(s);
    this.pixelStaging = this.vlmRows(this.pixelStaging, B, pixelLen, s.pixelDtype);
    const pixels = this.pixelStaging;
    this.copier.copy(
      batch.pixelRows.map((row, b): Pair => [this.temp(row, 0, s.pixelDtype, [pixelLen]), pixels.row(b)]),
      s.pixelDtype,
    );
    const obs = new Float32Array(B * s.futureTokens * s.futureDim);
    const host = (a: Float32Array | BigInt64Array, shape: number[]) => this.temp(a, 0, a instanceof BigInt64Array ? 'int64' : 'float32', shape);
    const t0 = performance.now();
    this.vlm.run(
      {
        pixel_values: pixels.span(0, B, [s.views, 3, s.imageHeight, s.imageWidth]),
        input_ids: host(batch.inputIds, [B, s.textTokens]),
        attention_mask: host(batch.attentionMask, [B, s.textTokens]),
      },
      { vl_embs: vlOut, ...(s.futureStream && { obs_embedding: host(obs, [B, s.futureTokens, s.futureDim]) }) },
    );
    const runMs = performance.now() - t0;
    if (!contiguous)
      this.copier.copy(
        Array.from(slots, (slot, b): Pair => [this.vlStaging!.row(b), this.arena.vl.row(slot)]),
        'float32',
      );
    const inputs: Partial<Record<Field, Float32Array | BigInt64Array>> = {
      state: batch.state,
      emb: batch.embodimentIds,
      actions: batch.actions0,
    };
    for (const f of this.fields) {
      const spec = this.specs[f];
      // The future noise comes as the requests' own rows: each is copied once, straight to its slot.
      if (f === 'future') {
        this.copier.copy(
          Array.from(slots, (slot, b): Pair => [this.temp(batch.futureRows[b], 0, spec.dtype, [spec.len]), this.arena.future.row(slot)]),
          spec.dtype,
        );
        continue;
      }
      const data = inputs[f];
      // vl_embs came from the VLM call above.
      if (data === undefined) continue;
      const pairs: Pair[] = contiguous
        ? [[this.temp(data, 0, spec.dtype, [B * spec.len]), this.temp(this.arena[f].buffer, slots[0] * this.arena[f].rowBytes, spec.dtype, [B * spec.len])]]
        : Array.from(slots, (slot, b): Pair => [this.temp(data, b * spec.len * BYTES[spec.dtype], spec.dtype, [spec.len]), this.arena[f].row(slot)]);
      this.copier.copy(pairs, spec.dtype);
    }
    return { obsEmbedding: obs, runMs, hostMs: performance.now() - h0 - runMs };
  }

  /**
   * `rows` rows of `len` elements of `dtype` on the VLM session's device, reusing `current` when it is large enough. Allocated on
   * the VLM's session, never the denoiser's: memory a captured denoiser graph used for its intermediates goes back to
   * the denoiser session's arena after the capture, and every replay writes there again.
   */
  private vlmRows(current: Rows | undefined, rows: number, len: number, dtype: DType): Rows {
    if (current && current.rows >= rows) return current;
    current?.release();
    return new Rows(this.ort, this.vlm, rows, len, dtype);
  }

  async step(batch: StepBatch): Promise<StepResult> {
    await turn();
    return this.guard(() => this.stepCall(batch));
  }

  private stepCall(batch: StepBatch): StepResult {
    const h0 = performance.now();
    this.applyMoves(batch.moves);
    const max = this.buckets[this.buckets.length - 1];
    let runMs = 0;
    let offset = 0;
    for (const slots of chunks(batch.slots, max)) {
      runMs += this.stepChunk(batch, slots, offset);
      offset += slots.length;
    }
    this.inpaint(batch);
    const { finishing } = batch;
    const F = finishing.length;
    // An action-only package's future rows are empty (oLen 0) and come back as such.
    const out = { actions: new Float32Array(F * this.specs.actions.len), future: new Float32Array(F * this.specs.future.len) };
    for (const st of F > 0 ? this.streams : []) {
      const len = this.specs[st].len;
      this.copier.copy(
        Array.from(finishing, (slot, f): Pair => [this.arena[st].row(slot), this.temp(out[st], f * len * 4, 'float32', [len])]),
        'float32',
      );
    }
    return { ...out, runMs, hostMs: performance.now() - h0 - runMs };
  }

  /**
   * Guidance-free inpainting of the rows with a committed prefix (docs/sampling.md, "Real-time chunking"), after
   * the step's Euler updates have landed in the arena, on every path (host row operations, graphs, a GPU): those
   * rows' actions come to the host, take the prefix (the same function the onnxruntime-node executor applies), and
   * go back. Only rows on an action step with a prefix move; a step without any costs nothing.
   */
  private inpaint(batch: StepBatch): void {
    const { guides } = batch;
    if (!guides) return;
    const picked = guides.flatMap((g, b) => (g ? [b] : []));
    if (picked.length === 0) return;
    const aLen = this.specs.actions.len;
    const host = new Float32Array(picked.length * aLen);
    const pairs = picked.map((b, k): Pair => [this.arena.actions.row(batch.slots[b]), this.temp(host, k * aLen * 4, 'float32', [aLen])]);
    this.copier.copy(pairs, 'float32');
    picked.forEach((b, k) => {
      const g = guides[b]!;
      inpaintStep(g.guide, g.tau, host.subarray(k * aLen, (k + 1) * aLen));
    });
    this.copier.copy(
      pairs.map(([arena, staged]): Pair => [staged, arena]),
      'float32',
    );
  }

  /** Rows batch.slots[offset ..] (= `slots`) through one padded call; returns the ONNX Runtime time. */
  private stepChunk(batch: StepBatch, slots: Int32Array, offset: number): number {
    const B = slots.length;
    const bucket = bucketFor(B, this.buckets)!;
    const max = this.params.len;
    const p = this.paramsHost;
    p.fill(0);
    for (let b = 0; b < B; b++) {
      p[b] = batch.tauA[offset + b];
      p[max + b] = batch.tauO[offset + b];
      p[2 * max + b] = batch.dtA[offset + b];
      p[3 * max + b] = batch.dtO[offset + b];
    }
    this.copier.copy([[this.paramsHostValue(), this.params.span(0, 4, 'flat')]], 'float32');
    if (this.actionTimes) {
      // Padding rows read zeros; rows without committed positions read their tau_A at every position.
      const h = this.shapes.horizon;
      const t = this.actionTimesHost!;
      t.fill(0);
      if (batch.actionTimes) t.set(batch.actionTimes.subarray(offset * h, (offset + B) * h));
      else t.set(broadcastTimes(batch.tauA.subarray(offset, offset + B), h));
      this.copier.copy([[this.temp(t, 0, 'float32', [t.length]), this.actionTimes.span(0, max, 'flat')]], 'float32');
    }
    const prefix = slots.every((slot, b) => slot === b);
    if (!prefix && this.gatherRows) {
      // Padding rows gather row 0: any arena row holds finite numbers.
      const g = this.gatherRows;
      g.host.fill(0n);
      for (let b = 0; b < B; b++) g.host[b] = BigInt(slots[b]);
      this.copier.copy([[g.hostView, g.idx.span(0, 1, 'flat')]], 'int64');
    } else if (!prefix) {
      for (const f of this.fields)
        this.copier.copy(
          Array.from(slots, (slot, b): Pair => [this.arena[f].row(slot), this.staging[f].row(b)]),
          this.specs[f].dtype,
        );
    }
    const ms = this.runBucket(bucket, prefix);
    if (this.hostUpdate) {
      // In place, over the B real rows only: padding rows are never touched.
      const src = prefix ? this.arena : this.staging;
      for (const st of this.streams) {
        const x = src[st].span(0, B, 'flat');
        this.ort.axpyRows(x, this.velocity[st].span(0, B, 'flat'), this.paramSpan(STREAM[st].dtRow, max, B, false), x);
      }
      if (!prefix)
        this.copier.copy(
          Array.from(slots, (slot, b): Pair[] => this.streams.map((st): Pair => [this.staging[st].row(b), this.arena[st].row(slot)])).flat(),
          'float32',
        );
    } else if (prefix) {
      this.copier.copy(
        this.streams.map((st): Pair => [this.next[st].span(0, B, 'flat'), this.arena[st].span(0, B, 'flat')]),
        'float32',
      );
    } else {
      this.copier.copy(
        Array.from(slots, (slot, b): Pair[] => this.streams.map((st): Pair => [this.next[st].row(b), this.arena[st].row(slot)])).flat(),
        'float32',
      );
    }
    return ms;
  }

  private paramsHostView: NativeValue | undefined;
  private paramsHostValue(): NativeValue {
    return (this.paramsHostView ??= new this.ort.Value(this.paramsHost, 0, 'float32', [this.paramsHost.length]));
  }

  async close(): Promise<void> {
    await Promise.resolve();
    if (this.closed) return;
    this.closed = true;
    this.releaseCallBuffers();
    for (const f of this.fields) this.arena[f]?.release();
    this.vlStaging?.release();
    this.pixelStaging?.release();
    this.copier.release();
    for (const s of [this.vlm, this.denoiser, this.update]) s.release();
  }
}

/**
 * One event-loop turn before each call, as onnxruntime-node's run() takes (it runs from setImmediate): the worker
 * thread's messages (new requests, cancellations) are handled between two calls rather than after the whole loop.
 */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function nativeOrt(): NativeOrt {
  const load = loadNativeOrt();
  if (!load.ok) throw new InferenceError(`the native executor cannot run: missing ${load.missing}. To fix: ${load.fix}`);
  return load.ort;
}

/**
 * CopyTensors reaches a device whose provider library registered its data transfer with ONNX Runtime's environment;
 * a provider appended to a session does not. Registering the CUDA provider's library does, where the library
 * supports it; where it does not, the Copier's probe finds CopyTensors failing and copies through graphs.
 */
function registerCudaCopies(ort: NativeOrt): void {
  try {
    ort.registerProviderLibrary('dust-cuda-copies', onnxRuntimeLibrary().replace(/libonnxruntime\.so\.1$/, 'libonnxruntime_providers_cuda.so'));
  } catch {
    // Left to the probe.
  }
}

/** Relative L2 and largest absolute difference of `a` against `b` (several arrays taken as one vector). */
function difference(a: readonly Float64Array[], b: readonly Float64Array[]): { relL2: number; maxAbs: number } {
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  a.forEach((x, k) =>
    x.forEach((v, j) => {
      const d = v - b[k][j];
      num += d * d;
      den += b[k][j] * b[k][j];
      maxAbs = Math.max(maxAbs, Math.abs(d));
    }),
  );
  if (!Number.isFinite(num)) return { relL2: Infinity, maxAbs: Infinity };
  return { relL2: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxAbs };
}
