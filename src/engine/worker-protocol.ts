/**
 * Messages between the main thread's ModelWorker proxy and the inference worker thread, which hosts one
 * model version's scheduler and ONNX Runtime executor. Times cross as epoch milliseconds
 * (performance.timeOrigin + performance.now()), since each thread's performance clock has its own origin.
 */
import type { WireError } from '../errors/index.js';
import type { GraphInfo } from '../model/index.js';
import type { WorkerLoad } from './admission.js';
import type { BatchRecording, WireBatch } from './batch-report.js';
import type { CostTableRow } from './cost-model.js';
import type { Device } from './device.js';
import type { JobInput, JobResult } from './job.js';
import type { ExecutorKind } from './executor-selection.js';
import type { ExecutorNote, NativeExecutorInit } from './native-executor.js';
import type { SchedulerOptions, SchedulerStats } from './scheduler.js';

/** What the worker builds its executor from; onnxruntime-node's ignores the native executor's fields. */
export interface WorkerExecutorInit extends NativeExecutorInit {
  readonly kind: ExecutorKind;
}

export interface WorkerInit {
  readonly executor: WorkerExecutorInit;
  readonly scheduler: SchedulerOptions;
  /** Batch reports for telemetry. @default 'off' */
  readonly batchRecording?: BatchRecording;
  /** Nice value the inference thread lowers itself to before ONNX Runtime starts its threads (Linux); 0 = leave it. */
  readonly niceness: number;
}

/** A job without its AbortSignal, with absolute times as epoch milliseconds. */
export type WireJob = Omit<JobInput, 'signal' | 'receivedAt' | 'deadline' | 'traceTag'> & {
  readonly receivedAtEpoch: number;
  readonly deadlineEpoch: number;
};

export interface WorkerStats extends SchedulerStats {
  readonly cost: { readonly vlm: CostTableRow[]; readonly step: CostTableRow[] };
}

export type ToWorker =
  /** responsePathMs: the main thread's latest measure of a result's way to a response (the planner counts it). */
  | {
      readonly kind: 'submit';
      readonly id: number;
      readonly job: WireJob;
      readonly responsePathMs: number | undefined;
      /** Other admitted requests of this version were still decoding when this one was sent (Scheduler.submit). */
      readonly moreComing: boolean;
    }
  | { readonly kind: 'cancel'; readonly id: number }
  /** A queued shadow job gives its place to a primary one (admission.ts): it fails with shadow_shed unless it started. */
  | { readonly kind: 'shed'; readonly id: number }
  | { readonly kind: 'stats'; readonly id: number }
  | { readonly kind: 'drain'; readonly id: number }
  | { readonly kind: 'close'; readonly id: number }
  /** Fault injection: the thread dies of an uncaught exception between two executor calls. */
  | { readonly kind: 'crash'; readonly reason: string }
  /** Fault injection: the executor's next ONNX Runtime call fails as a lost device does (native executor only). */
  | { readonly kind: 'fault'; readonly fault: 'device-lost' };

export type FromWorker =
  /** notes: what the executor wants logged (CUDA graph captures, degraded buckets). */
  | { readonly kind: 'ready'; readonly graphs: { readonly vlm: GraphInfo; readonly denoiser: GraphInfo }; readonly notes: readonly ExecutorNote[] }
  | { readonly kind: 'init-failed'; readonly error: WireError }
  /** These jobs left the queue for a VLM call; the load is for the main thread's admission. */
  | { readonly kind: 'started'; readonly ids: readonly number[]; readonly load: WorkerLoad }
  /**
   * batches: the reports of executor calls since the last result or failure (telemetry). load: as after this job
   * left, so that admission sees the stage empty out even when nothing starts (it refuses on the last load seen).
   */
  | { readonly kind: 'result'; readonly id: number; readonly result: JobResult; readonly batches?: WireBatch[]; readonly load?: WorkerLoad }
  | { readonly kind: 'failed'; readonly id: number; readonly error: WireError; readonly batches?: WireBatch[]; readonly load?: WorkerLoad }
  | { readonly kind: 'stats'; readonly id: number; readonly stats: WorkerStats }
  | { readonly kind: 'done'; readonly id: number }
  /** The device failed (native-executor.ts DeviceLostError): the thread exits next, and the version cannot recover on it. */
  | { readonly kind: 'fatal'; readonly reason: string };
