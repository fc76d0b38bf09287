/**
 * The scheduler owns batching for one model version (one executor). Two stages share the executor:
 *
 * - VLM stage: dynamic batching across robots (up to maxVlmBatch, waiting at most maxQueueDelayMs for a
 *   batch to fill). The VLM runs once per request (sampling.md).
 * - Denoiser stage, iteration-level: every denoiser call packs the active rows, each at its own step i with
 *   its own N_A and q (per-row tau_a, tau_o; sampling.md "Requests at different i ... may share one
 *   denoiser call"). A row joins as soon as its VLM output is ready and leaves as soon as it finishes, like
 *   continuous batching in LLM serving.
 *
 * Admission is bounded (RESOURCE_EXHAUSTED at once when the queue is full); deadlines and cancellations are
 * checked before every call, so an expired or cancelled row leaves at the next step. With a latency budget,
 * N_o is chosen when the row joins the denoiser stage, from the online cost model.
 */
import {
  CancelledError,
  DeadlineExceededError,
  InferenceError,
  OverloadedError,
  UnavailableError,
} from '../errors/index.js';
import { stepPlan, type StepCounts } from '../sampling/index.js';
import type { BatchObserver, BatchStage } from './batch-report.js';
import { chooseVisionSteps, type BudgetedRow } from './budget.js';
import type { Clock } from './clock.js';
import { CostModel } from './cost-model.js';
import { ExecutorLostError, type Executor } from './executor.js';
import { priorityPick } from './fair-pick.js';
import type { JobInput, JobResult } from './job.js';
import { SlotTable } from './slot-table.js';

export type BatchingMode = 'step' | 'request';

export interface SchedulerOptions {
  /** Most requests in one VLM call. @default 32 */
  readonly maxVlmBatch: number;
  /** Most rows in one denoiser call. @default 64 */
  readonly maxDenoiseBatch: number;
  /** Longest a request waits for its VLM batch to fill while the executor is idle. @default 2 */
  readonly maxQueueDelayMs: number;
  /** Requests waiting for the VLM stage beyond which new ones are refused with RESOURCE_EXHAUSTED. @default 256 */
  readonly maxQueue: number;
  /**
   * 'step': rows join and leave the denoiser batch at every step (the product). 'request': a batch of
   * whole requests runs until all of them finish before new ones join (the baseline the benchmark compares
   * against). @default 'step'
   */
  readonly batching: BatchingMode;
  /** Fraction of a latency budget that N_o is planned to fill, headroom for noise. @default 0.8 */
  readonly budgetSafety: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = Object.freeze({
  maxVlmBatch: 32,
  maxDenoiseBatch: 64,
  maxQueueDelayMs: 2,
  maxQueue: 256,
  batching: 'step',
  budgetSafety: 0.8,
});

/** Window over which the share of executor time spent in VLM calls is measured. */
export const DEFAULT_LOAD_WINDOW_MS = 1000;

interface Waiting {
  readonly input: JobInput;
  readonly robotId: string;
  readonly seq: number;
  readonly resolve: (r: JobResult) => void;
  readonly reject: (e: unknown) => void;
  readonly detach: () => void;
  /** When it entered the scheduler (receivedAt also counts preprocessing). */
  readonly queuedAt: number;
  cancelled: boolean;
}

interface Row extends Waiting {
  /** Set once the row's VLM output is in the arena. */
  joined: boolean;
  counts: StepCounts;
  i: number;
  budgetMet: boolean | undefined;
  vlmStart: number;
  vlmEnd: number;
  vlmBatch: number;
  obsEmbedding: Float32Array;
  batchSum: number;
}

export interface SchedulerStats {
  readonly waiting: number;
  readonly active: number;
  readonly vlmCalls: number;
  readonly stepCalls: number;
  readonly meanVlmBatch: number;
  readonly meanStepBatch: number;
  /** Mean worker time per step outside ONNX Runtime (packing, Euler updates, moves). */
  readonly meanStepHostMs: number;
  readonly completed: number;
}

export class Scheduler {
  readonly options: SchedulerOptions;
  readonly costModel = new CostModel();
  private waiting: Waiting[] = [];
  private readonly table: SlotTable<Row>;
  private busy = false;
  private lastOp: 'vlm' | 'step' | undefined;
  private draining = false;
  private closed = false;
  private timer: { cancel(): void } | undefined;
  private seq = 0;
  private drainWaiters: Array<() => void> = [];
  /** (end time, duration) of recent VLM calls, for the VLM share of executor time. */
  private recentVlm: Array<[number, number]> = [];
  private counters = { vlmCalls: 0, vlmRows: 0, stepCalls: 0, stepRows: 0, hostMs: 0, completed: 0 };

  constructor(
    private readonly executor: Executor,
    private readonly clock: Clock,
    options: Partial<SchedulerOptions> = {},
    /** Told about every executor call (telemetry). */
    private readonly onBatch?: BatchObserver,
  ) {
    this.options = Object.freeze({ ...DEFAULT_SCHEDULER_OPTIONS, ...options });
    this.table = new SlotTable<Row>(executor.capacity);
  }

  /** Queues a request; resolves with its result or rejects with a domain error. */
  submit(input: JobInput): Promise<JobResult> {
    if (this.draining) {
      return Promise.reject(new UnavailableError('the server is draining and accepts no new work; retry on another replica'));
    }
    if (input.priority === 'shadow' && this.waiting.some((w) => w.input.priority !== 'shadow')) {
      return Promise.reject(new OverloadedError('shadow request shed: primary requests are waiting', 'shadow_shed'));
    }
    if (this.waiting.length >= this.options.maxQueue && input.priority !== 'shadow') this.evictShadow();
    if (this.waiting.length >= this.options.maxQueue) {
      return Promise.reject(
        new OverloadedError(
          `the model's queue is full (${this.options.maxQueue} requests waiting); retry with backoff or lower the request rate`,
          'queue_full',
        ),
      );
    }
    const now = this.clock.now();
    if (input.deadline <= now) {
      return Promise.reject(new DeadlineExceededError('the request deadline had already passed when it reached the scheduler'));
    }
    const earliest = this.predictEarliestFinish(input, now);
    if (earliest > input.deadline) {
      return Promise.reject(
        new DeadlineExceededError(
          `the deadline cannot be met: about ${Math.ceil(earliest - input.receivedAt)} ms are needed under the current load, ` +
            `the deadline allows ${Math.floor(input.deadline - input.receivedAt)} ms; raise the deadline or lower action_steps`,
        ),
      );
    }
    if (input.signal?.aborted) return Promise.reject(new CancelledError());
    return new Promise<JobResult>((resolve, reject) => {
      const onAbort = () => this.cancel(entry);
      input.signal?.addEventListener('abort', onAbort, { once: true });
      const entry: Waiting = {
        input,
        robotId: input.robotId,
        seq: this.seq++,
        resolve,
        reject,
        detach: () => input.signal?.removeEventListener('abort', onAbort),
        queuedAt: now,
        cancelled: false,
      };
      this.waiting.push(entry);
      this.pump();
    });
  }

  /** Stops admitting; resolves when every admitted request has finished. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Fails whatever is still queued or running (after a drain's grace period) and closes the executor. */
  async close(): Promise<void> {
    this.draining = true;
    this.closed = true;
    this.timer?.cancel();
    const err = new UnavailableError('the model was unloaded or the server shut down before the request finished');
    for (const w of this.waiting.splice(0)) this.fail(w, err);
    for (const row of [...this.table.values()]) {
      this.table.remove(row);
      this.fail(row, err);
    }
    this.notifyDrained();
    await this.executor.close();
  }

  stats(): SchedulerStats {
    const c = this.counters;
    return {
      waiting: this.waiting.length,
      active: this.table.size,
      vlmCalls: c.vlmCalls,
      stepCalls: c.stepCalls,
      meanVlmBatch: c.vlmCalls ? c.vlmRows / c.vlmCalls : 0,
      meanStepBatch: c.stepCalls ? c.stepRows / c.stepCalls : 0,
      meanStepHostMs: c.stepCalls ? c.hostMs / c.stepCalls : 0,
      completed: c.completed,
    };
  }

  /**
   * Predicted wall time between two consecutive steps of one row when `rows` rows are active: a step at
   * the batch size they get, times the rounds needed when more rows are active than fit in one call,
   * stretched by the share of executor time that VLM calls take.
   */
  stepPeriodMs(rows: number): number {
    const max = this.options.maxDenoiseBatch;
    const n = Math.max(1, rows);
    const perCall = this.costModel.predict('step', Math.min(n, max));
    return (perCall * Math.ceil(n / max)) / Math.max(0.05, 1 - this.vlmShare());
  }

  /** Fraction of the last DEFAULT_LOAD_WINDOW_MS the executor spent in VLM calls. */
  private vlmShare(): number {
    const since = this.clock.now() - DEFAULT_LOAD_WINDOW_MS;
    while (this.recentVlm.length > 0 && this.recentVlm[0][0] < since) this.recentVlm.shift();
    return this.recentVlm.reduce((sum, [, ms]) => sum + ms, 0) / DEFAULT_LOAD_WINDOW_MS;
  }

  // ---- internals -------------------------------------------------------------------------------------

  private predictEarliestFinish(input: JobInput, now: number): number {
    if (!this.costModel.isWarm('step')) return now;
    const rows = this.table.size + this.waiting.length + 1;
    const vlm = this.costModel.predict('vlm', Math.min(this.waiting.length + 1, this.options.maxVlmBatch));
    return now + vlm + input.actionSteps * this.stepPeriodMs(Math.min(rows, this.table.capacity));
  }

  /** A full queue sheds its newest waiting shadow request to admit a primary one. */
  private evictShadow(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i].input.priority !== 'shadow') continue;
      const [shed] = this.waiting.splice(i, 1);
      this.fail(shed, new OverloadedError('shadow request shed to admit a primary request', 'shadow_shed'));
      return;
    }
  }

  private cancel(entry: Waiting): void {
    if (entry.cancelled) return;
    entry.cancelled = true;
    const idx = this.waiting.indexOf(entry);
    if (idx >= 0) {
      // Not yet in the arena: leave at once.
      this.waiting.splice(idx, 1);
      this.fail(entry, new CancelledError());
      this.notifyDrained();
    }
    // A row in the denoiser stage leaves at the next pump (it may be inside a running call right now).
    if (!this.busy) this.pump();
  }

  private fail(entry: Waiting, err: unknown): void {
    entry.detach();
    entry.reject(err);
  }

  private idle(): boolean {
    return this.waiting.length === 0 && this.table.size === 0 && !this.busy;
  }

  private notifyDrained(): void {
    if (this.draining && this.idle()) for (const r of this.drainWaiters.splice(0)) r();
  }

  /** Removes cancelled and expired work from both stages. */
  private expire(now: number): void {
    this.waiting = this.waiting.filter((w) => {
      if (w.input.deadline > now) return true;
      this.fail(w, new DeadlineExceededError('the deadline passed while the request waited for the VLM stage'));
      return false;
    });
    for (const row of [...this.table.values()]) {
      if (row.cancelled) {
        this.table.remove(row);
        this.fail(row, new CancelledError());
      } else if (row.input.deadline <= now) {
        this.table.remove(row);
        this.fail(row, new DeadlineExceededError(`the deadline passed after ${row.i} of ${row.counts.visionSteps} denoiser steps`));
      }
    }
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const now = this.clock.now();
    this.expire(now);
    this.timer?.cancel();
    this.timer = undefined;
    const canJoin =
      this.table.free > 0 && (this.options.batching === 'step' || this.table.size === 0);
    if (this.waiting.length > 0 && canJoin) {
      const fill = Math.min(this.options.maxVlmBatch, this.table.free);
      const queuedFor = now - this.waiting[0].queuedAt;
      // With rows in flight, VLM and denoiser calls alternate: the batch filled during the last step, and
      // arrivals can neither starve the rows already denoising nor wait behind them for long.
      const stepsOwed = this.table.size > 0 && this.lastOp === 'vlm';
      if (!stepsOwed && (this.waiting.length >= fill || queuedFor >= this.options.maxQueueDelayMs || this.table.size > 0)) {
        void this.runVlm(fill);
        return;
      }
      if (this.table.size === 0) {
        this.timer = this.clock.setTimeout(() => this.pump(), this.options.maxQueueDelayMs - queuedFor);
        return;
      }
    }
    if (this.table.size > 0) {
      void this.runStep();
      return;
    }
    this.notifyDrained();
  }

  private async runVlm(fill: number): Promise<void> {
    const picked = priorityPick(this.waiting, fill);
    const pickedSet = new Set(picked);
    this.waiting = this.waiting.filter((w) => !pickedSet.has(w));
    const start = this.clock.now();
    const rows = picked.map((w) => {
      const row: Row = Object.assign(w, {
        joined: false,
        counts: { actionSteps: w.input.actionSteps, visionSteps: w.input.visionSteps },
        i: 0,
        budgetMet: undefined,
        vlmStart: start,
        vlmEnd: start,
        vlmBatch: picked.length,
        obsEmbedding: new Float32Array(0),
        batchSum: 0,
      });
      return row;
    });
    const slots = Int32Array.from(rows.map((r) => this.table.add(r)));
    const s = this.executor.shapes;
    const B = rows.length;
    const pixelLen = s.views * 3 * s.imageHeight * s.imageWidth;
    const batch = {
      moves: this.table.takeMoves(),
      slots,
      pixelValues: new Float32Array(B * pixelLen),
      inputIds: new BigInt64Array(B * s.textTokens),
      attentionMask: new BigInt64Array(B * s.textTokens),
      state: new Float32Array(B * s.stateDim),
      embodimentIds: BigInt64Array.from(rows.map((r) => BigInt(r.input.embodimentId))),
      actions0: new Float32Array(B * s.horizon * s.actionDim),
      future0: new Float32Array(B * s.futureTokens * s.futureDim),
    };
    rows.forEach((r, b) => {
      batch.pixelValues.set(r.input.pixelValues, b * pixelLen);
      batch.inputIds.set(r.input.inputIds, b * s.textTokens);
      batch.attentionMask.set(r.input.attentionMask, b * s.textTokens);
      batch.state.set(r.input.state, b * s.stateDim);
      batch.actions0.set(r.input.noise.actions, b * s.horizon * s.actionDim);
      batch.future0.set(r.input.noise.future, b * s.futureTokens * s.futureDim);
    });
    this.busy = true;
    this.lastOp = 'vlm';
    try {
      const result = await this.executor.runVlm(batch);
      const end = this.clock.now();
      this.report('vlm', start, end, rows);
      this.costModel.observe('vlm', B, result.runMs);
      this.recentVlm.push([end, end - start]);
      this.counters.vlmCalls++;
      this.counters.vlmRows += B;
      const obsLen = s.futureTokens * s.futureDim;
      rows.forEach((row, b) => {
        row.vlmEnd = end;
        row.obsEmbedding = result.obsEmbedding.slice(b * obsLen, (b + 1) * obsLen);
      });
      for (const row of rows) this.join(row, end);
    } catch (err) {
      this.report('vlm', start, this.clock.now(), rows, err);
      this.failBatch(rows, new InferenceError(`the VLM stage failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  /** The row enters the denoiser stage; with a budget, N_o is chosen now from the cost model. */
  private join(row: Row, now: number): void {
    row.joined = true;
    const { budgetMs, receivedAt, actionSteps, visionSteps } = row.input;
    if (budgetMs <= 0) return;
    const active = this.table.values().filter((r) => r.joined && r !== row);
    const others: BudgetedRow[] = active
      .filter((r) => r.input.budgetMs > 0)
      .map((r) => ({
        remainingSteps: r.counts.visionSteps - r.i,
        remainingBudgetMs: r.input.receivedAt + r.input.budgetMs - now,
      }));
    const choice = chooseVisionSteps({
      actionSteps,
      maxVisionSteps: visionSteps,
      remainingMs: receivedAt + budgetMs - now,
      activeRows: active.length,
      stepPeriodMs: (n) => this.stepPeriodMs(n),
      others,
      safety: this.options.budgetSafety,
    });
    row.counts = { actionSteps, visionSteps: choice.visionSteps };
  }

  private async runStep(): Promise<void> {
    const ready = this.table.values().filter((r) => r.joined);
    if (ready.length === 0) return;
    const picked = priorityPick(ready, this.options.maxDenoiseBatch);
    const slotted = picked.map((r) => ({ r, slot: this.table.slotOf(r) })).sort((a, b) => a.slot - b.slot);
    const B = slotted.length;
    const batch = {
      moves: this.table.takeMoves(),
      slots: new Int32Array(B),
      tauA: new Float32Array(B),
      tauO: new Float32Array(B),
      dtA: new Float32Array(B),
      dtO: new Float32Array(B),
      finishing: new Int32Array(slotted.filter(({ r }) => r.i + 1 === r.counts.visionSteps).map(({ slot }) => slot)),
    };
    slotted.forEach(({ r, slot }, b) => {
      const plan = stepPlan(r.i, r.counts);
      batch.slots[b] = slot;
      batch.tauA[b] = plan.tauA;
      batch.tauO[b] = plan.tauO;
      batch.dtA[b] = plan.dtA;
      batch.dtO[b] = plan.dtO;
    });
    const finishing = slotted.filter(({ r }) => r.i + 1 === r.counts.visionSteps).map(({ r }) => r);
    const start = this.clock.now();
    this.busy = true;
    this.lastOp = 'step';
    try {
      const result = await this.executor.step(batch);
      const end = this.clock.now();
      this.report('denoise', start, end, picked);
      this.costModel.observe('step', B, result.runMs + result.hostMs);
      this.counters.stepCalls++;
      this.counters.stepRows += B;
      this.counters.hostMs += result.hostMs;
      for (const { r } of slotted) {
        r.i++;
        r.batchSum += B;
      }
      const s = this.executor.shapes;
      const aLen = s.horizon * s.actionDim;
      const oLen = s.futureTokens * s.futureDim;
      finishing.forEach((row, f) => {
        this.table.remove(row);
        if (row.cancelled) {
          this.fail(row, new CancelledError());
          return;
        }
        this.complete(row, end, result.actions.slice(f * aLen, (f + 1) * aLen), result.future.slice(f * oLen, (f + 1) * oLen));
      });
    } catch (err) {
      this.report('denoise', start, this.clock.now(), picked, err);
      this.failBatch(slotted.map(({ r }) => r), new InferenceError(`a denoiser step failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  /** Rows are reported at the step they ran (before it is counted). */
  private report(stage: BatchStage, start: number, end: number, rows: readonly Row[], err?: unknown): void {
    if (!this.onBatch) return;
    this.onBatch({
      stage,
      start,
      end,
      rows: rows.map((r) => ({ job: r.input, step: r.i })),
      error: err === undefined ? undefined : ((err as Error)?.message ?? String(err)),
    });
  }

  /**
   * A failed call poisons the arena rows it touched: fail them and keep serving the rest. When the executor
   * itself was lost, every row in its arena is gone.
   */
  private failBatch(rows: readonly Row[], err: InferenceError): void {
    const lost = err.cause instanceof ExecutorLostError;
    for (const row of lost ? [...this.table.values()] : rows) {
      this.table.remove(row);
      this.fail(row, err);
    }
  }

  private complete(row: Row, end: number, actions: Float32Array, future: Float32Array): void {
    this.counters.completed++;
    const { input } = row;
    const totalMs = end - input.receivedAt;
    row.detach();
    row.resolve({
      actions,
      future,
      obsEmbedding: row.obsEmbedding,
      actionSteps: row.counts.actionSteps,
      visionSteps: row.counts.visionSteps,
      budgetMet: input.budgetMs > 0 ? totalMs <= input.budgetMs : undefined,
      timing: {
        queueMs: row.vlmStart - input.receivedAt,
        vlmMs: row.vlmEnd - row.vlmStart,
        denoiseMs: end - row.vlmEnd,
        totalMs,
        vlmBatchSize: row.vlmBatch,
        meanDenoiseBatch: row.i > 0 ? row.batchSum / row.i : 0,
      },
    });
  }
}
