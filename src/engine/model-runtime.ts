/**
 * What a READY model version runs on: its tokenizer, an inference worker holding both graphs, the scheduler
 * that batches for it, and its world-model surprise memory. The registry starts and stops runtimes through
 * the factory made here.
 */
import { randomBytes } from 'node:crypto';
import { ModelPackageError } from '../errors/index.js';
import { checkGraphs, type Manifest, type ModelPackage, type RuntimeFactory } from '../model/index.js';
import { PromptTokenizer } from '../preprocess/index.js';
import { initialNoise, randomSeed } from '../sampling/index.js';
import type { Logger } from '../telemetry/index.js';
import type { BatchRecording, BatchReport } from './batch-report.js';
import type { ModelShapes } from './executor.js';
import type { JobInput } from './job.js';
import { ModelWorker } from './model-worker.js';
import type { SchedulerOptions } from './scheduler.js';
import { SurpriseTracker } from './surprise.js';
import type { Device } from './worker-protocol.js';

export interface RuntimeOptions {
  /** The execution provider, already chosen at start-up (device-selection.ts). */
  readonly device: Device;
  readonly threads: number;
  /** Arena rows per model version. */
  readonly maxActive: number;
  readonly scheduler: Partial<SchedulerOptions>;
  readonly warmup: boolean;
  /** How long stop() lets in-flight work finish before failing it. */
  readonly drainTimeoutMs: number;
  /** What the workers report of their executor calls (telemetry). @default 'off' */
  readonly batchRecording?: BatchRecording;
  /** Receives the batch reports of each READY version (warm-up batches are not reported). */
  readonly onBatches?: (model: { readonly name: string; readonly version: number }, reports: readonly BatchReport[]) => void;
}

export interface ModelRuntime {
  readonly manifest: Manifest;
  readonly tokenizer: PromptTokenizer;
  /** The inference worker: this version's scheduler and ONNX Runtime sessions, on their own thread. */
  readonly worker: ModelWorker;
  readonly device: Device;
  readonly surprise: SurpriseTracker;
}

/** Batch sizes run at load: a single request, then a few together, to check the graphs and prime the cost model. */
export const WARMUP_BATCHES: readonly number[] = [1, 4, 16];

export function shapesOf(m: Manifest): ModelShapes {
  return {
    views: m.cameras.length,
    imageHeight: m.image.height,
    imageWidth: m.image.width,
    textTokens: m.text.max_tokens,
    condTokens: m.conditioning.tokens,
    condDim: m.conditioning.dim,
    stateDim: m.state.dim,
    horizon: m.action.horizon,
    actionDim: m.action.dim,
    futureTokens: m.future.tokens,
    futureDim: m.future.dim,
  };
}

async function startWorker(pkg: ModelPackage, options: RuntimeOptions): Promise<ModelWorker> {
  try {
    return await ModelWorker.start({
      executor: {
        vlmPath: pkg.vlmPath,
        denoiserPath: pkg.denoiserPath,
        device: options.device,
        threads: options.threads,
        capacity: options.maxActive,
        shapes: shapesOf(pkg.manifest),
      },
      scheduler: options.scheduler,
      batchRecording: options.batchRecording,
    });
  } catch (err) {
    throw new ModelPackageError(`${pkg.dir}: ONNX Runtime could not load the graphs on ${options.device}: ${(err as Error).message}`, { cause: err });
  }
}

/** Synthetic requests through the real scheduler path, so the first robot does not pay for cold caches. */
async function warmup(runtime: ModelRuntime): Promise<void> {
  const m = runtime.manifest;
  const [embodiment] = Object.values(m.embodiments);
  const s = shapesOf(m);
  const prompt = await runtime.tokenizer.encode('warm up');
  for (const size of WARMUP_BATCHES) {
    const jobs = Array.from({ length: Math.min(size, runtime.worker.options.maxDenoiseBatch) }, (_, i): JobInput => ({
      requestId: `warmup-${size}-${i}`,
      robotId: `warmup-${i}`,
      embodimentId: embodiment.id,
      pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth),
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
    await Promise.all(jobs.map((j) => runtime.worker.submit(j)));
  }
}

export function runtimeFactory(options: RuntimeOptions, log: Logger): RuntimeFactory<ModelRuntime> {
  return {
    async start(pkg) {
      const m = pkg.manifest;
      const tokenizer = await PromptTokenizer.fromFile(pkg.tokenizerPath, m.text);
      const worker = await startWorker(pkg, options);
      const { device } = options;
      try {
        checkGraphs(m, worker.graphs);
      } catch (err) {
        await worker.close();
        throw err;
      }
      const runtime: ModelRuntime = { manifest: m, tokenizer, worker, device, surprise: new SurpriseTracker() };
      if (options.warmup) {
        const t0 = performance.now();
        try {
          await warmup(runtime);
        } catch (err) {
          await worker.close();
          throw new ModelPackageError(`${pkg.dir}: the graphs failed on warm-up requests: ${(err as Error).message}`, { cause: err });
        }
        const { cost } = await worker.stats();
        log.info({ model: m.name, version: m.version, device, warmupMs: Math.round(performance.now() - t0), cost }, 'model warmed up');
      }
      const { onBatches } = options;
      if (onBatches) worker.observeBatches((reports) => onBatches({ name: m.name, version: m.version }, reports));
      return runtime;
    },
    failure(runtime) {
      return runtime.worker.lostReason;
    },
    async stop(runtime) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.drainTimeoutMs)));
      await Promise.race([runtime.worker.drain(), grace]);
      clearTimeout(timer);
      await runtime.worker.close();
    },
  };
}
