/**
 * What telemetry observes of the engine, declared here so that telemetry stays below the engine in the layer
 * order (the engine imports the logger and these shapes; telemetry imports nothing of the engine). The engine's
 * batch reports and served requests are these shapes.
 */

export const BATCH_STAGES = ['vlm', 'denoise'] as const;
export type BatchStage = (typeof BATCH_STAGES)[number];

/** Where an executor call's time went, as the executor measured it. */
export interface CallTiming {
  /** Wall time inside ONNX Runtime's run calls (on a GPU: launches and the device's work, synchronised). */
  readonly runMs: number;
  /** Wall time in the executor outside them: packing, copies in and out, Euler updates, slot moves. */
  readonly hostMs: number;
}

/** A batch as main-thread listeners get it. */
export interface BatchReport {
  readonly stage: BatchStage;
  /** Epoch milliseconds. */
  readonly startEpochMs: number;
  readonly endEpochMs: number;
  readonly rows: number;
  /** The traceTag of each member job that had one, with its step index. */
  readonly members: ReadonlyArray<{ readonly tag: unknown; readonly step: number }>;
  /**
   * Of the call's wall time (end - start), the milliseconds inside ONNX Runtime's run calls (runMs) and in the
   * executor around them (hostMs); the rest went to the inference thread's other work. Absent when it failed.
   */
  readonly timing?: CallTiming;
  readonly error?: string;
}

/** The engine's report of a served request: timings in milliseconds from its receipt. */
export interface ServedRequest {
  readonly requestId: string;
  readonly timing: {
    readonly preprocessMs: number;
    readonly queueMs: number;
    readonly vlmMs: number;
    readonly totalMs: number;
    readonly vlmBatchSize: number;
    readonly meanDenoiseBatch: number;
  };
  readonly sampling: {
    readonly actionSteps: number;
    readonly visionSteps: number;
    readonly budgetMs: number;
    readonly budgetMet: boolean;
  };
}
