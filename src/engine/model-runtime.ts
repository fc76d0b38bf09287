/**
 * What a READY model version runs on: its tokenizer, an inference worker holding both graphs, the scheduler
 * that batches for it, its world-model surprise memory, and the shared decode pool. The registry starts and
 * stops runtimes through the factory made here.
 *
 * Lifecycle: a runtime supervises its inference worker. When the thread dies (a native crash, out of
 * memory), the requests it held fail with UNAVAILABLE, the version is reported recovering (LOADING, health
 * NOT_SERVING) and a new thread is started and warmed up on the same device; the version is READY again once
 * it is in place. A version whose thread dies more than DEFAULT_MAX_RESTARTS times within
 * DEFAULT_RESTART_WINDOW_MS is FAILED instead: something in it keeps killing the thread.
 */
import { randomBytes } from 'node:crypto';
import type { OptionSlice } from '../config/index.js';
import { ModelPackageError } from '../errors/index.js';
import { checkGraphs, hasFutureStream, type Manifest, type ModelPackage, type RuntimeEvents, type RuntimeFactory } from '../model/index.js';
import { pixelDtypeOf, PromptTokenizer, type PromptTokenizerOptions } from '../preprocess/index.js';
import { initialNoise, randomSeed } from '../sampling/index.js';
import type { Logger } from '../telemetry/index.js';
import type { BatchRecording, BatchReport } from './batch-report.js';
import type { DecodePool } from './decode-pool.js';
import { emptyModelPixelRow, type ModelShapes } from './executor.js';
import type { JobInput } from './job.js';
import { ModelWorker } from './model-worker.js';
import type { SchedulerOptions } from './scheduler.js';
import { SurpriseTracker } from './surprise.js';
import type { Device } from './device.js';
import type { ExecutorKind } from './executor-selection.js';
import type { WorkerInit } from './worker-protocol.js';

/** Replacements of a dead inference thread allowed within DEFAULT_RESTART_WINDOW_MS. */
export const DEFAULT_MAX_RESTARTS = 3;
export const DEFAULT_RESTART_WINDOW_MS = 60_000;

/** The runtime's options: the rows of the option table that apply to it (src/config/option-table.ts). */
export type RuntimeSettings = OptionSlice<'runtime'>;

export interface RuntimeOptions {
  /** The execution provider, already chosen at start-up (device-selection.ts). */
  readonly device: Device;
  /** What runs the graphs, already chosen at start-up (executor-selection.ts). */
  readonly executor: ExecutorKind;
  /**
   * threads: ONNX Runtime's intra-op threads; maxActive: arena rows per model version; warmup; workerNiceness:
   * the inference threads' nice value (thread-priority.ts); shutdownGraceSeconds: how long stop() lets
   * in-flight work finish before failing it.
   */
  readonly settings: RuntimeSettings;
  readonly scheduler: SchedulerOptions;
  /** Handed to each version's prompt tokenizer. */
  readonly tokenizer: PromptTokenizerOptions;
  /** The process's decode pool, shared by every model version. */
  readonly decoder: DecodePool;
  /** What the workers report of their executor calls (telemetry). @default 'off' */
  readonly batchRecording?: BatchRecording;
  /**
   * Receives the batch reports of each READY version (warm-up batches are not reported), whichever worker
   * serves it: a replacement of a dead one reports under the same version.
   */
  readonly onBatches?: (model: { readonly name: string; readonly version: number }, reports: readonly BatchReport[]) => void;
}

export interface ModelRuntime {
  readonly manifest: Manifest;
  readonly tokenizer: PromptTokenizer;
  /** The current inference worker: this version's scheduler and ONNX Runtime sessions, on their own thread. */
  readonly worker: ModelWorker;
  readonly device: Device;
  readonly executor: ExecutorKind;
  /** The runtime's options (threads, maxActive, cudaGraphs, ...), as handed to each inference worker. */
  readonly settings: RuntimeSettings;
  readonly surprise: SurpriseTracker;
  readonly decoder: DecodePool;
}

/** Batch sizes run at load: a single request, then a few together, to check the graphs and prime the cost model. */
export const WARMUP_BATCHES: readonly number[] = [1, 4, 16];

export function shapesOf(m: Manifest): ModelShapes {
  return {
    views: m.cameras.length,
    imageHeight: m.image.height,
    imageWidth: m.image.width,
    pixelDtype: pixelDtypeOf(m),
    textTokens: m.text.max_tokens,
    condTokens: m.conditioning.tokens,
    condDim: m.conditioning.dim,
    stateDim: m.state.dim,
    horizon: m.action.horizon,
    actionDim: m.action.dim,
    futureTokens: m.future.tokens,
    futureDim: m.future.dim,
    futureStream: hasFutureStream(m),
  };
}

function workerInit(pkg: ModelPackage, options: RuntimeOptions): WorkerInit {
  return {
    executor: {
      kind: options.executor,
      vlmPath: pkg.vlmPath,
      denoiserPath: pkg.denoiserPath,
      device: options.device,
      threads: options.settings.threads,
      capacity: options.settings.maxActive,
      shapes: shapesOf(pkg.manifest),
      // The native executor's batch-size buckets go up to the scheduler's largest denoiser batch (buckets.ts).
      maxBatch: options.scheduler.maxDenoiseBatch,
      cudaGraphs: options.settings.cudaGraphs,
      graphHazards: pkg.manifest.architecture.cuda_graph_hazards,
    },
    scheduler: options.scheduler,
    batchRecording: options.batchRecording,
    niceness: options.settings.workerNiceness,
  };
}

async function startWorker(pkg: ModelPackage, options: RuntimeOptions, onLost: (reason: string, fatal: boolean) => void): Promise<ModelWorker> {
  try {
    return await ModelWorker.start(workerInit(pkg, options), onLost);
  } catch (err) {
    throw new ModelPackageError(`${pkg.dir}: ONNX Runtime could not load the graphs on ${options.device}: ${(err as Error).message}`, { cause: err });
  }
}

/** Synthetic requests through the real scheduler path, so the first robot does not pay for cold caches. */
async function warmup(worker: ModelWorker, m: Manifest, tokenizer: PromptTokenizer): Promise<void> {
  const [embodiment] = Object.values(m.embodiments);
  const s = shapesOf(m);
  const prompt = await tokenizer.encode('warm up');
  for (const size of WARMUP_BATCHES) {
    const count = Math.min(size, worker.options.maxDenoiseBatch, worker.options.maxQueue);
    const jobs = Array.from({ length: count }, (_, i): JobInput => ({
      requestId: `warmup-${size}-${i}`,
      robotId: `warmup-${i}`,
      embodimentId: embodiment.id,
      pixelValues: emptyModelPixelRow(s),
      // Each job owns its buffers: they are transferred to the worker.
      inputIds: prompt.inputIds.slice(),
      attentionMask: prompt.attentionMask.slice(),
      state: new Float32Array(s.stateDim),
      noise: initialNoise(randomSeed(randomBytes), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
      actionSteps: m.sampling.action_steps,
      visionSteps: m.sampling.vision_steps,
      budgetMs: 0,
      receivedAt: performance.now(),
      deadline: Infinity,
    }));
    await Promise.all(jobs.map((j) => worker.submit(j, async () => j)));
  }
}

/** A runtime that replaces its inference worker when the thread dies. */
class SupervisedRuntime implements ModelRuntime {
  worker!: ModelWorker;
  readonly surprise = new SurpriseTracker();
  private stopped = false;
  private readonly restarts: number[] = [];

  constructor(
    private readonly pkg: ModelPackage,
    readonly tokenizer: PromptTokenizer,
    private readonly options: RuntimeOptions,
    private readonly events: RuntimeEvents,
    private readonly log: Logger,
  ) {}

  get manifest(): Manifest {
    return this.pkg.manifest;
  }

  get decoder(): DecodePool {
    return this.options.decoder;
  }

  get device(): Device {
    return this.options.device;
  }

  get executor(): ExecutorKind {
    return this.options.executor;
  }

  get settings(): RuntimeSettings {
    return this.options.settings;
  }

  /** Starts the first worker, checks the graphs and warms up. */
  async start(): Promise<void> {
    const worker: ModelWorker = await startWorker(this.pkg, this.options, (reason, fatal) => this.lost(worker, reason, fatal));
    try {
      checkGraphs(this.manifest, worker.graphs);
      await this.warm(worker);
    } catch (err) {
      await worker.close();
      throw err;
    }
    this.serve(worker);
  }

  /** The worker takes this version's requests; its batches are reported from now on (warm-up ones were not). */
  private serve(worker: ModelWorker): void {
    const { onBatches } = this.options;
    const m = this.manifest;
    for (const note of worker.notes) this.log[note.level]({ model: m.name, version: m.version, executor: this.executor, ...note.fields }, note.message);
    if (onBatches) worker.observeBatches((reports) => onBatches({ name: m.name, version: m.version }, reports));
    this.worker = worker;
  }

  private async warm(worker: ModelWorker): Promise<void> {
    const { device } = this;
    if (!this.options.settings.warmup) return;
    const m = this.manifest;
    const t0 = performance.now();
    try {
      await warmup(worker, m, this.tokenizer);
    } catch (err) {
      throw new ModelPackageError(`${this.pkg.dir}: the graphs failed on warm-up requests: ${(err as Error).message}`, { cause: err });
    }
    const { cost } = await worker.stats();
    this.log.info(
      { model: m.name, version: m.version, device, executor: this.executor, warmupMs: Math.round(performance.now() - t0), cost },
      'model warmed up',
    );
  }

  /**
   * Only the serving worker is supervised: one that dies while starting or warming up fails that attempt. A worker
   * that died of its device (fatal: a lost GPU) is not replaced on that device: the version is FAILED at once.
   */
  private lost(worker: ModelWorker | undefined, reason: string, fatal: boolean): void {
    if (worker === undefined || worker !== this.worker || this.stopped) return;
    if (fatal) {
      const m = this.manifest;
      this.log.error({ model: m.name, version: m.version, device: this.device, reason }, 'the device failed under the inference worker: version FAILED');
      this.events.failed(`the ${this.device} device failed: ${reason}`);
      return;
    }
    void this.replace(reason);
  }

  /**
   * Replaces the dead worker, unless the registry no longer serves this runtime (a reload replaced it, or it is
   * being unloaded): then its leased requests finish as they can and it is stopped.
   */
  private async replace(reason: string): Promise<void> {
    const m = this.manifest;
    while (!this.stopped) {
      const now = performance.now();
      this.restarts.push(now);
      while (this.restarts[0] < now - DEFAULT_RESTART_WINDOW_MS) this.restarts.shift();
      if (this.restarts.length > DEFAULT_MAX_RESTARTS) {
        this.log.error({ model: m.name, version: m.version, reason }, 'inference worker keeps dying: version FAILED');
        this.events.failed(`the inference worker stopped ${this.restarts.length} times within ${DEFAULT_RESTART_WINDOW_MS / 1000} s; last: ${reason}`);
        return;
      }
      if (!this.events.recovering(`restarting the inference worker, which stopped (${reason})`)) {
        this.log.warn({ model: m.name, version: m.version, reason }, 'inference worker of a retired copy stopped: not replaced');
        return;
      }
      this.log.error({ model: m.name, version: m.version, reason }, 'inference worker stopped: starting a new one');
      let fresh: ModelWorker | undefined;
      try {
        fresh = await ModelWorker.start(workerInit(this.pkg, this.options), (r, fatal) => this.lost(fresh, r, fatal));
        await this.warm(fresh);
      } catch (err) {
        await fresh?.close();
        reason = (err as Error).message;
        continue;
      }
      if (this.stopped) {
        await fresh.close();
        return;
      }
      this.serve(fresh);
      this.events.recovered();
      this.log.info({ model: m.name, version: m.version }, 'inference worker replaced: version READY again');
      return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.settings.shutdownGraceSeconds * 1000)));
    await Promise.race([this.worker.drain(), grace]);
    clearTimeout(timer);
    await this.worker.close();
  }
}

export function runtimeFactory(options: RuntimeOptions, log: Logger): RuntimeFactory<ModelRuntime> {
  return {
    async start(pkg, events) {
      const tokenizer = await PromptTokenizer.fromJson(pkg.tokenizerJson, `${pkg.dir}: text.tokenizer`, pkg.manifest.text, options.tokenizer);
      const runtime = new SupervisedRuntime(pkg, tokenizer, options, events, log);
      await runtime.start();
      return runtime;
    },
    async stop(runtime) {
      await (runtime as SupervisedRuntime).stop();
    },
  };
}
