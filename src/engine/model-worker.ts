/**
 * The main thread's handle on one inference worker thread (inference-worker.ts), which runs one model
 * version's scheduler and ONNX Runtime. Each request costs the event loop one message each way; the per-step
 * loop never touches it. Request buffers cross by transfer, not by copy.
 *
 * Admission happens here, before a request's images are decoded: the worker reports its load with every VLM
 * batch it starts, and this proxy counts the requests it admitted that have not started yet (admission.ts).
 * Shadow requests (mirrored traffic) rank below primary ones here too: one is refused while a primary request
 * is admitted and not started, and a primary request that finds the queue full takes the place of the newest
 * shadow one that has not started. When the thread dies, the requests it held fail with UNAVAILABLE (safe to
 * retry) and `onLost` tells the runtime, which replaces the thread (model-runtime.ts), unless the thread said its
 * device failed (fatal): then no new thread on that device would fare better.
 */
import { Worker } from 'node:worker_threads';
import { CancelledError, errorFromWire, InferenceError, OverloadedError, UnavailableError } from '../errors/index.js';
import type { GraphInfo } from '../model/index.js';
import { evictsShadow, IDLE_LOAD, refusal, type AdmissionRequest, type AdmissionState, type WorkerLoad } from './admission.js';
import type { BatchListener, BatchReport, WireBatch } from './batch-report.js';
import type { JobInput, JobResult } from './job.js';
import type { SchedulerOptions } from './scheduler.js';
import type { ExecutorNote } from './native-executor.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './worker-protocol.js';
import { workerScript } from './worker-script.js';
import { YieldingQueue } from './yielding-queue.js';

const epoch = (t: number) => performance.timeOrigin + t;

type Pending = { resolve: (v: never) => void; reject: (e: Error) => void };

export interface Admission extends AdmissionRequest {
  readonly signal?: AbortSignal;
}

/** An admitted shadow request that has not started: a primary request may take its place. */
interface ShadowTicket {
  /** The job's message id once it was sent to the worker. */
  id: number | undefined;
  shed: boolean;
}

export class ModelWorker {
  readonly options: SchedulerOptions;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Submitted jobs not yet reported started. */
  private readonly notStarted = new Set<number>();
  /** Admitted requests not yet started: preparing on this thread's side, or queued in the worker. */
  private queued = 0;
  /** The shadow requests among them, oldest first. */
  private readonly shadows: ShadowTicket[] = [];
  /** Primary requests among them per caller (admission's fair share); a caller leaves when it has none. */
  private readonly queuedBy = new Map<string, number>();
  /** The caller of each job sent and not yet started. */
  private readonly callerOfJob = new Map<number, string>();
  private load: WorkerLoad = IDLE_LOAD;
  private lastResponsePathMs: number | undefined;
  /** Admitted requests still being prepared: a drain waits for them to reach the worker. */
  private readonly preparing = new Set<Promise<unknown>>();
  private lost: Error | undefined;
  private draining = false;
  /** traceTag of each job in flight that has one; the worker names jobs by message id. */
  private readonly tags = new Map<number, unknown>();
  private batchListener: BatchListener | undefined;
  /** Why the device failed, when the thread said so before it exited. */
  private fatal: string | undefined;

  private constructor(
    private readonly thread: Worker,
    readonly graphs: { readonly vlm: GraphInfo; readonly denoiser: GraphInfo },
    /** What the executor asked to be logged when it started (CUDA graph captures, degraded buckets). */
    readonly notes: readonly ExecutorNote[],
    options: SchedulerOptions,
    private readonly onLost: (reason: string, fatal: boolean) => void,
  ) {
    this.options = Object.freeze({ ...options });
    thread.on('message', (msg: FromWorker) => this.onMessage(msg));
    const lose = (exit: string) => {
      if (this.lost) return;
      const why = this.fatal ?? exit;
      this.lost = new UnavailableError(`the inference worker stopped (${why}); requests in flight on it were lost: retry them`);
      for (const p of this.pending.values()) p.reject(this.lost);
      this.pending.clear();
      this.notStarted.clear();
      this.callerOfJob.clear();
      this.queuedBy.clear();
      this.tags.clear();
      if (!this.draining) this.onLost(why, this.fatal !== undefined);
    };
    thread.on('error', (err) => lose(err.message));
    thread.on('exit', (code) => lose(`exit code ${code}`));
  }

  /** Starts the thread and loads both graphs; rejects with why they could not be loaded. */
  static async start(init: WorkerInit, onLost: (reason: string, fatal: boolean) => void = () => undefined): Promise<ModelWorker> {
    const thread = new Worker(workerScript('inference-worker'), { workerData: init });
    let onMessage!: (m: FromWorker) => void;
    let onError!: (e: Error) => void;
    let onExit!: (code: number) => void;
    const first = await new Promise<FromWorker>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new Error(`inference worker exited with code ${code} while loading`));
      thread.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).finally(() => {
      // Only our own listeners: Worker keeps internal ones that start and stop its message port.
      thread.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    if (first.kind !== 'ready') {
      await thread.terminate();
      throw first.kind === 'init-failed' ? new InferenceError(first.error.message) : new InferenceError(`unexpected worker message ${first.kind}`);
    }
    return new ModelWorker(thread, first.graphs, first.notes, init.scheduler, onLost);
  }

  /** Receives the worker's batch reports (when started with batchRecording other than 'off'). */
  observeBatches(listener: BatchListener): void {
    this.batchListener = listener;
  }

  private reportBatches(batches: readonly WireBatch[]): void {
    const listener = this.batchListener;
    if (!listener) return;
    const reports = batches.map((b): BatchReport => ({
      stage: b.stage,
      startEpochMs: b.startEpoch,
      endEpochMs: b.endEpoch,
      rows: b.rows,
      members: (b.members ?? []).flatMap(([id, step]) => (this.tags.has(id) ? [{ tag: this.tags.get(id), step }] : [])),
      timing: b.timing,
      error: b.error,
    }));
    listener(reports);
  }

  private onMessage(msg: FromWorker): void {
    if (msg.kind === 'started') {
      this.load = msg.load;
      for (const id of msg.ids) this.started(id);
      return;
    }
    if (msg.kind === 'fatal') {
      this.fatal = msg.reason;
      return;
    }
    if (!('id' in msg)) return;
    this.started(msg.id);
    if (msg.kind === 'result' || msg.kind === 'failed') {
      // Without this, a load reported while the stage was full would stand until the next VLM call, and a
      // deadline or strict budget refused on it would never let that call happen.
      if (msg.load) this.load = msg.load;
      // Reports first: they may name this job, whose tag goes when it settles.
      if (msg.batches) this.reportBatches(msg.batches);
      this.settling.push(msg);
    } else this.settle(msg);
  }

  /** The job left the queue (for a VLM call, or it ended before one). */
  private started(id: number): void {
    if (!this.notStarted.delete(id)) return;
    this.queued--;
    const caller = this.callerOfJob.get(id);
    if (caller !== undefined) {
      this.callerOfJob.delete(id);
      this.release(caller);
    }
    const shadow = this.shadows.findIndex((t) => t.id === id);
    if (shadow >= 0) this.shadows.splice(shadow, 1);
  }

  private hold(caller: string): void {
    this.queuedBy.set(caller, (this.queuedBy.get(caller) ?? 0) + 1);
  }

  private release(caller: string): void {
    const n = (this.queuedBy.get(caller) ?? 0) - 1;
    if (n > 0) this.queuedBy.set(caller, n);
    else this.queuedBy.delete(caller);
  }

  /** A primary request takes the place of the newest shadow request that has not started. */
  private evictShadow(): void {
    const ticket = this.shadows.pop();
    if (!ticket) return;
    ticket.shed = true;
    this.queued--;
    // Not sent yet: it fails when its preparation ends (submit). Queued in the worker: the scheduler fails it.
    if (ticket.id !== undefined && this.notStarted.delete(ticket.id)) this.thread.postMessage({ kind: 'shed', id: ticket.id } satisfies ToWorker);
  }

  /**
   * One step finishes many rows at once and their results arrive together; each becomes a response on this
   * thread (denormalization, serialization, the write). Settled one per event-loop turn, so that I/O waiting
   * meanwhile (a health check, new requests) is served between two responses, not after all of them.
   */
  private readonly settling = new YieldingQueue<FromWorker>((msg) => this.settle(msg));

  private settle(msg: FromWorker): void {
    if (!('id' in msg)) return;
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

  private request<T>(msg: Extract<ToWorker, { id: number }>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (v: never) => void, reject });
      this.thread.postMessage(msg, transfer);
    });
  }

  /** Why the worker thread is gone (crash, out of memory), or undefined while it runs. */
  get lostReason(): string | undefined {
    return this.lost?.message;
  }

  /**
   * Admits the request or refuses it at once (admission.ts); only then runs `prepare` (decoding, noise) and
   * queues the job it returns. The job's buffers are transferred: the caller must not reuse them.
   */
  async submit(admission: Admission, prepare: () => Promise<JobInput>): Promise<JobResult> {
    if (this.lost) throw this.lost;
    const caller = admission.priority === 'shadow' ? undefined : admission.caller;
    const callerQueued = caller === undefined ? 0 : (this.queuedBy.get(caller) ?? 0);
    const state: AdmissionState = {
      now: performance.now(),
      draining: this.draining,
      queued: this.queued,
      queuedShadows: this.shadows.length,
      load: this.load,
      limits: this.options,
      callerQueued,
      callers: this.queuedBy.size + (caller !== undefined && callerQueued === 0 ? 1 : 0),
    };
    const refused = refusal(admission, state);
    if (refused) throw refused;
    if (evictsShadow(admission, state)) this.evictShadow();
    this.queued++;
    if (caller !== undefined) this.hold(caller);
    const ticket: ShadowTicket | undefined = admission.priority === 'shadow' ? { id: undefined, shed: false } : undefined;
    if (ticket) this.shadows.push(ticket);
    const prepared = prepare();
    this.preparing.add(prepared);
    let job: JobInput;
    try {
      job = await prepared;
      if (ticket?.shed) throw new OverloadedError('shadow request shed to admit a primary request', 'shadow_shed');
      if (admission.signal?.aborted) throw new CancelledError();
      if (this.lost) throw this.lost;
    } catch (err) {
      if (!ticket?.shed) {
        this.queued--;
        const at = ticket ? this.shadows.indexOf(ticket) : -1;
        if (at >= 0) this.shadows.splice(at, 1);
      }
      if (caller !== undefined) this.release(caller);
      throw err;
    } finally {
      this.preparing.delete(prepared);
    }
    const id = this.nextId++;
    if (ticket) ticket.id = id;
    if (caller !== undefined) this.callerOfJob.set(id, caller);
    return this.send(id, job);
  }

  private send(id: number, job: JobInput): Promise<JobResult> {
    const { signal, receivedAt, deadline, traceTag, ...rest } = job;
    this.notStarted.add(id);
    if (traceTag !== undefined) this.tags.set(id, traceTag);
    const onAbort = () => this.thread.postMessage({ kind: 'cancel', id } satisfies ToWorker);
    signal?.addEventListener('abort', onAbort, { once: true });
    const buffers = new Set(
      [job.pixelValues, job.inputIds, job.attentionMask, job.state, job.noise.actions, job.noise.future].map((a) => a.buffer as ArrayBuffer),
    );
    const responsePathMs = this.lastResponsePathMs;
    this.lastResponsePathMs = undefined;
    return this.request<JobResult>(
      {
        kind: 'submit',
        id,
        job: { ...rest, receivedAtEpoch: epoch(receivedAt), deadlineEpoch: epoch(deadline) },
        responsePathMs,
        moreComing: this.preparing.size > 0,
      },
      [...buffers],
    ).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** The main thread's measure of a result's way from its last step to a ready response (the planner counts it). */
  observeResponsePath(ms: number): void {
    this.lastResponsePathMs = ms;
  }

  stats(): Promise<WorkerStats> {
    return this.request({ kind: 'stats', id: this.nextId++ });
  }

  /** Stops admitting (UNAVAILABLE at once, here) and resolves when the worker has finished admitted work. */
  async drain(): Promise<void> {
    this.draining = true;
    // Admitted requests still decoding are part of the work to finish: let them reach the worker first.
    await Promise.allSettled([...this.preparing]);
    if (this.lost) return; // a dead thread holds no work to finish
    await this.request({ kind: 'drain', id: this.nextId++ });
  }

  /**
   * Fault injection (tests, drills): the thread dies as a bug would, of an uncaught exception, between two
   * ONNX Runtime calls. (Terminating it from outside while a call is inside ONNX Runtime aborts the process.)
   */
  injectCrash(reason: string): void {
    this.thread.postMessage({ kind: 'crash', reason } satisfies ToWorker);
  }

  /** Fault injection (tests, drills): the native executor's next ONNX Runtime call fails as a lost device does. */
  injectDeviceLost(): void {
    this.thread.postMessage({ kind: 'fault', fault: 'device-lost' } satisfies ToWorker);
  }

  /** Fails what is left, releases the sessions and ends the thread. */
  async close(): Promise<void> {
    this.draining = true;
    if (!this.lost) await this.request({ kind: 'close', id: this.nextId++ }).catch(() => undefined);
    await this.thread.terminate();
  }
}
