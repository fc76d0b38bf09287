/**
 * The main thread's handle on an inference worker thread (inference-worker.ts), which runs one model
 * version's scheduler and ONNX Runtime. Each request costs the event loop one message each way; the
 * per-step loop never touches it. Request buffers cross by transfer, not by copy.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CancelledError, errorFromWire, InferenceError, UnavailableError } from '../errors/index.js';
import type { GraphInfo } from '../model/index.js';
import type { BatchListener, BatchReport, WireBatch } from './batch-report.js';
import { ExecutorLostError } from './executor.js';
import type { JobInput, JobResult } from './job.js';
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from './scheduler.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './worker-protocol.js';

/**
 * The compiled worker script. Under vitest this module runs from its .ts source, and a worker thread cannot
 * load TypeScript, so it falls back to the build output (vitest's global setup rebuilds it when stale).
 */
function workerScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, 'inference-worker.js');
  if (existsSync(sibling)) return sibling;
  const built = path.resolve(here, '../../dist/src/engine/inference-worker.js');
  if (existsSync(built)) return built;
  throw new Error(`inference worker script not found next to ${here} nor at ${built}; run \`npm run build\``);
}

const epoch = (t: number) => performance.timeOrigin + t;

type Pending = { resolve: (v: never) => void; reject: (e: Error) => void };

export class ModelWorker {
  readonly options: SchedulerOptions;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private lost: Error | undefined;
  private draining = false;
  /** traceTag of each job in flight that has one; the worker names jobs by message id. */
  private readonly tags = new Map<number, unknown>();
  private batchListener: BatchListener | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly graphs: { readonly vlm: GraphInfo; readonly denoiser: GraphInfo },
    options: Partial<SchedulerOptions>,
  ) {
    this.options = Object.freeze({ ...DEFAULT_SCHEDULER_OPTIONS, ...options });
    worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    const onLost = (err: Error) => {
      this.lost ??= new ExecutorLostError('the inference worker stopped; requests in flight on it are lost', { cause: err });
      for (const p of this.pending.values()) p.reject(new InferenceError(this.lost.message, { cause: this.lost }));
      this.pending.clear();
      this.tags.clear();
    };
    worker.on('error', onLost);
    worker.on('exit', (code) => onLost(new Error(`inference worker exited with code ${code}`)));
  }

  /** Starts the thread and loads both graphs; rejects with why they could not be loaded. */
  static async start(init: WorkerInit): Promise<ModelWorker> {
    const worker = new Worker(workerScript(), { workerData: init });
    let onMessage!: (m: FromWorker) => void;
    let onError!: (e: Error) => void;
    let onExit!: (code: number) => void;
    const first = await new Promise<FromWorker>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new Error(`inference worker exited with code ${code} while loading`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).finally(() => {
      // Only our own listeners: Worker keeps internal ones that start and stop its message port.
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    if (first.kind !== 'ready') {
      await worker.terminate();
      throw first.kind === 'init-failed' ? new InferenceError(first.error.message) : new InferenceError(`unexpected worker message ${first.kind}`);
    }
    return new ModelWorker(worker, first.graphs, init.scheduler);
  }

  /** Receives the worker's batch reports (when started with batchRecording other than 'off'). */
  observeBatches(listener: BatchListener): void {
    this.batchListener = listener;
  }

  private reportBatches(batches: readonly WireBatch[]): void {
    const listener = this.batchListener;
    if (!listener) return;
    const reports = batches.map(
      (b): BatchReport => ({
        stage: b.stage,
        startEpochMs: b.startEpoch,
        endEpochMs: b.endEpoch,
        rows: b.rows,
        members: (b.members ?? []).flatMap(([id, step]) => (this.tags.has(id) ? [{ tag: this.tags.get(id), step }] : [])),
        error: b.error,
      }),
    );
    listener(reports);
  }

  private onMessage(msg: FromWorker): void {
    if (!('id' in msg)) return;
    if ((msg.kind === 'result' || msg.kind === 'failed') && msg.batches) this.reportBatches(msg.batches);
    this.tags.delete(msg.id);
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    switch (msg.kind) {
      case 'result':
        p.resolve(msg.result as never);
        return;
      case 'failed':
        p.reject(errorFromWire(msg.error));
        return;
      case 'stats':
        p.resolve(msg.stats as never);
        return;
      default:
        p.resolve(undefined as never);
    }
  }

  private request<T>(msg: ToWorker, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.lost) return Promise.reject(new InferenceError(this.lost.message, { cause: this.lost }));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (v: never) => void, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  /** Why the worker thread is gone (crash, out of memory), or undefined while it runs. */
  get lostReason(): string | undefined {
    return this.lost?.message;
  }

  /** Queues a job on the worker's scheduler. The job's buffers are transferred: the caller must not reuse them. */
  submit(job: JobInput): Promise<JobResult> {
    if (this.draining) return Promise.reject(new UnavailableError('the server is draining and accepts no new work; retry on another replica'));
    const { signal, receivedAt, deadline, traceTag, ...rest } = job;
    if (signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    if (traceTag !== undefined && !this.lost) this.tags.set(id, traceTag);
    const onAbort = () => this.worker.postMessage({ kind: 'cancel', id } satisfies ToWorker);
    signal?.addEventListener('abort', onAbort, { once: true });
    const buffers = new Set(
      [job.pixelValues, job.inputIds, job.attentionMask, job.state, job.noise.actions, job.noise.future].map((a) => a.buffer as ArrayBuffer),
    );
    return this.request<JobResult>(
      { kind: 'submit', id, job: { ...rest, receivedAtEpoch: epoch(receivedAt), deadlineEpoch: epoch(deadline) } },
      [...buffers],
    ).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  stats(): Promise<WorkerStats> {
    return this.request({ kind: 'stats', id: this.nextId++ });
  }

  /** Stops admitting (UNAVAILABLE at once, here) and resolves when the worker has finished admitted work. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.lost) return Promise.resolve(); // a dead thread holds no work to finish
    return this.request({ kind: 'drain', id: this.nextId++ });
  }

  /** Fails what is left, releases the sessions and ends the thread. */
  async close(): Promise<void> {
    this.draining = true;
    if (!this.lost) await this.request({ kind: 'close', id: this.nextId++ }).catch(() => undefined);
    await this.worker.terminate();
  }
}
