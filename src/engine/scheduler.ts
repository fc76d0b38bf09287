/**
 * The scheduler owns batching for one model version (one executor). Two stages share the executor:
 *
 * - VLM stage: dynamic batching across robots (up to maxVlmBatch, waiting at most maxQueueDelayMs for a
 *   batch to fill). The VLM runs once per request (docs/sampling.md).
 * - Denoiser stage, iteration-level: every denoiser call packs the active rows, each at its own step i with
 *   its own N_A and q (per-row tau_a, tau_o; docs/sampling.md: "requests at different i ... may share one
 *   denoiser call"). A row joins as soon as its VLM output is ready and leaves as soon as it finishes, like
 *   continuous batching in LLM serving.
 *
 * Admission (queue limit, draining, hopeless deadlines) happens before a request gets here, on the main
 * thread (admission.ts). Deadlines and cancellations are checked before every call, so an expired or
 * cancelled row leaves at the next step. With a latency budget, N_o is planned when the row joins the
 * denoiser stage (budget.ts), from the cost model and the measured load.
 */
import type { OptionSlice } from '../config/index.js';
import { CancelledError, DeadlineExceededError, InferenceError, UnavailableError } from '../errors/index.js';
import { blendPrefix, type PrefixGuide, type StepCounts } from '../sampling/index.js';
import type { WorkerLoad } from './admission.js';
import type { BatchObserver, BatchStage } from './batch-report.js';
import { isLastStep, packStepBatch, packVlmBatch } from './batch-packer.js';
import { finishAlone, planVisionSteps, type Plan, type PlannedRow, type PlanQuery } from './budget.js';
import type { Clock } from './clock.js';
import { CostModel } from './cost-model.js';
import type { CallTiming } from '../telemetry/index.js';
import type { Executor } from './executor.js';
import { priorityPick } from './fair-pick.js';
import { deadlineName, STRICT_BUDGET_ADVICE, type JobInput, type JobResult } from './job.js';
import { LoadTracker } from './load.js';
import { SlotTable } from './slot-table.js';

/**
 * The scheduler's options: the rows of the option table that apply to it (src/config/option-table.ts, where
 * each is documented with its default). maxQueue is the admission bound its ModelWorker enforces (admission.ts);
 * batching 'request' runs whole-request batches, the baseline the benchmark compares step batching against.
 */
export type SchedulerOptions = OptionSlice<'scheduler'>;
export type BatchingMode = SchedulerOptions['batching'];

/** Told when queued requests leave the queue for a VLM call (the main thread mirrors the queue with it). */
export type StartListener = (started: readonly JobInput[]) => void;

export interface SchedulerListeners {
  readonly onStart?: StartListener;
  /** Told about every executor call (telemetry). */
  readonly onBatch?: BatchObserver;
}

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
  /** The budget plan made when the row joined (budgeted rows only). */
  plan: Plan | undefined;
  vlmStart: number;
  vlmEnd: number;
  vlmBatch: number;
  obsEmbedding: Float32Array;
  batchSum: number;
  /** The committed prefix the executor inpaints after the row's action steps (inpaint method only). */
  guide: PrefixGuide | undefined;
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
  readonly load = new LoadTracker();
  private waiting: Waiting[] = [];
  private readonly table: SlotTable<Row>;
  private busy = false;
  private lastOp: 'vlm' | 'step' | undefined;
  private draining = false;
  private closed = false;
  private timer: { cancel(): void } | undefined;
  private seq = 0;
  private drainWaiters: Array<() => void> = [];
  private counters = { vlmCalls: 0, vlmRows: 0, stepCalls: 0, stepRows: 0, hostMs: 0, completed: 0 };
  /** What the latest submit said of requests behind it (submit's moreComing). */
  private moreComing = true;

  constructor(
    private readonly executor: Executor,
    private readonly clock: Clock,
    options: SchedulerOptions,
    private readonly listeners: SchedulerListeners = {},
  ) {
    this.options = Object.freeze({ ...options });
    this.table = new SlotTable<Row>(executor.capacity);
  }

  /**
   * Queues an admitted request; resolves with its result or rejects with a domain error. `moreComing` (the main
   * thread's count of admitted requests still decoding, when it knows it) false lets an idle model start this
   * request's VLM call at once instead of waiting up to maxQueueDelayMs for a batch that nobody is about to join:
   * a lone robot does not pay the wait, a burst still fills its batch.
   */
  submit(input: JobInput, moreComing = true): Promise<JobResult> {
    this.moreComing = moreComing;
    if (this.closed) return Promise.reject(new UnavailableError('the model was unloaded or the server shut down before the request started'));
    if (input.signal?.aborted) return Promise.reject(new CancelledError());
    const now = this.clock.now();
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

  /** Resolves when every submitted request has finished (the main thread stopped admitting). */
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

  /** What the main thread's admission needs to know. */
  workerLoad(): WorkerLoad {
    return { active: this.table.size, cost: this.costModel.snapshot(), vlmShare: this.load.at(this.clock.now(), 0).vlmShare };
  }

  /**
   * Fails a job that is still queued with `err` (a shadow job giving its place to a primary one, decided by
   * the main thread's admission); a job that has started runs on.
   */
  shed(input: JobInput, err: Error): void {
    const idx = this.waiting.findIndex((w) => w.input === input);
    if (idx < 0) return;
    const [shed] = this.waiting.splice(idx, 1);
    this.fail(shed, err);
    this.notifyDrained();
  }

  // ---- internals -------------------------------------------------------------------------------------

  private guideOf(input: JobInput): PrefixGuide | undefined {
    const c = input.chunking;
    if (c?.method !== 'inpaint' && c?.method !== 'condition') return undefined;
    return { target: c.target, weights: c.weights, noise: input.noise.actions, actionDim: this.executor.shapes.actionDim, clean: c.method === 'condition' };
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
      this.fail(w, new DeadlineExceededError(`the ${deadlineName(w.input.deadlineSource)} passed while the request waited for the VLM stage`));
      return false;
    });
    for (const row of [...this.table.values()]) {
      if (row.cancelled) {
        this.table.remove(row);
        this.fail(row, new CancelledError());
      } else if (row.input.deadline <= now) {
        this.table.remove(row);
        this.fail(
          row,
          new DeadlineExceededError(`the ${deadlineName(row.input.deadlineSource)} passed after ${row.i} of ${row.counts.visionSteps} denoiser steps`),
        );
      }
    }
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const now = this.clock.now();
    this.expire(now);
    this.timer?.cancel();
    this.timer = undefined;
    const canJoin = this.table.free > 0 && (this.options.batching === 'step' || this.table.size === 0);
    if (this.waiting.length > 0 && canJoin) {
      const fill = Math.min(this.options.maxVlmBatch, this.table.free);
      const queuedFor = now - this.waiting[0].queuedAt;
      // With rows in flight, VLM and denoiser calls alternate: the batch filled during the last step, and
      // arrivals can neither starve the rows already denoising nor wait behind them for long.
      const stepsOwed = this.table.size > 0 && this.lastOp === 'vlm';
      if (!stepsOwed && (this.waiting.length >= fill || queuedFor >= this.options.maxQueueDelayMs || this.table.size > 0 || !this.moreComing)) {
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
        plan: undefined,
        vlmStart: start,
        vlmEnd: start,
        vlmBatch: picked.length,
        obsEmbedding: new Float32Array(0),
        batchSum: 0,
        guide: this.guideOf(w.input),
      });
      return row;
    });
    const slots = Int32Array.from(rows.map((r) => this.table.add(r)));
    const batch = packVlmBatch(
      rows.map((r) => r.input),
      slots,
      this.table.takeMoves(),
      this.executor.shapes,
    );
    this.listeners.onStart?.(rows.map((r) => r.input));
    const B = rows.length;
    this.busy = true;
    this.lastOp = 'vlm';
    try {
      const result = await this.executor.runVlm(batch);
      const end = this.clock.now();
      this.report('vlm', start, end, rows, { timing: result });
      this.costModel.observe('vlm', B, result.runMs);
      this.load.vlmCall(end, end - start);
      this.counters.vlmCalls++;
      this.counters.vlmRows += B;
      const s = this.executor.shapes;
      const obsLen = s.futureTokens * s.futureDim;
      rows.forEach((row, b) => {
        row.vlmEnd = end;
        row.obsEmbedding = result.obsEmbedding.slice(b * obsLen, (b + 1) * obsLen);
      });
      for (const row of rows) this.join(row, end);
    } catch (err) {
      this.report('vlm', start, this.clock.now(), rows, { err });
      this.failBatch(rows, new InferenceError(`the VLM stage failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  /**
   * The row enters the denoiser stage; with a budget, N_o is planned now. A strict budget that N_A steps miss
   * even with nothing more arriving is shed instead (budget.ts finishAlone).
   */
  private join(row: Row, now: number): void {
    row.joined = true;
    const { budgetMs, receivedAt, actionSteps, visionSteps } = row.input;
    if (budgetMs > 0) {
      const inStage = this.table.values().filter((r) => r !== row);
      const others: PlannedRow[] = inStage.filter((r) => r.joined).map((r) => ({ remainingSteps: r.counts.visionSteps - r.i, promise: r.plan?.promise }));
      // The rest of this VLM batch joins right after this row, so it counts as waiting (joining at once).
      const sameBatch = inStage.length - others.length;
      const query: PlanQuery = {
        now,
        receivedAt,
        budgetMs,
        actionSteps,
        maxVisionSteps: visionSteps,
        rows: others,
        waiting: this.waiting.length + sameBatch,
        load: this.load.at(now, actionSteps),
        step: this.costModel.snapshot().step,
        maxBatch: this.options.maxDenoiseBatch,
        safety: this.options.budgetSafety,
        headroom: this.options.budgetLoadHeadroom,
      };
      row.plan = planVisionSteps(query);
      row.counts = { actionSteps, visionSteps: row.plan.visionSteps };
      // A row alone in the stage runs: its prediction rests on costs only rows that run can correct.
      if (row.input.strictBudget && !row.plan.feasible && (others.length > 0 || query.waiting > 0)) {
        const finish = finishAlone(query);
        if (finish !== undefined && finish > receivedAt + budgetMs) {
          this.shedHopeless(row, finish);
          return;
        }
      }
    }
    // Arrivals are counted here, not at submit: the planner's arrivals are rows that enter the denoiser stage,
    // and a request that expires in the queue or is shed above never does. Counted at submit, robots asking
    // again at once after a shed would raise the predicted load and shed more, until nothing got in.
    this.load.arrived(now);
    this.load.joined(row.counts.visionSteps);
  }

  /**
   * A strict budget that N_A steps cannot meet: the row leaves before its first step, so the steps it would have
   * taken go to rows that can still make their budgets, and the robot hears at once to keep its current chunk.
   */
  private shedHopeless(row: Row, finish: number): void {
    this.table.remove(row);
    const predicted = Math.ceil(finish - row.input.receivedAt);
    this.fail(
      row,
      new DeadlineExceededError(
        `the strict latency budget of ${row.input.budgetMs} ms cannot be met under the current load: ${row.counts.actionSteps} steps would answer ` +
          `about ${predicted} ms after receipt, so the request was shed before its denoiser steps; ${STRICT_BUDGET_ADVICE}`,
      ),
    );
  }

  private async runStep(): Promise<void> {
    const ready = this.table.values().filter((r) => r.joined);
    if (ready.length === 0) return;
    const picked = priorityPick(ready, this.options.maxDenoiseBatch);
    const slotted = picked.map((r) => ({ row: r, slot: this.table.slotOf(r) })).sort((a, b) => a.slot - b.slot);
    const batch = packStepBatch(
      slotted.map(({ row, slot }) => ({ slot, i: row.i, counts: row.counts, guide: row.guide })),
      this.table.takeMoves(),
    );
    const finishing = slotted.filter(({ row }) => isLastStep(row)).map(({ row }) => row);
    const B = slotted.length;
    const start = this.clock.now();
    this.busy = true;
    this.lastOp = 'step';
    try {
      const result = await this.executor.step(batch);
      const end = this.clock.now();
      this.report('denoise', start, end, picked, { timing: result });
      this.costModel.observe('step', B, result.runMs + result.hostMs);
      this.load.stepCall(B);
      this.counters.stepCalls++;
      this.counters.stepRows += B;
      this.counters.hostMs += result.hostMs;
      for (const { row } of slotted) {
        row.i++;
        row.batchSum += B;
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
      this.report('denoise', start, this.clock.now(), picked, { err });
      this.failBatch(
        slotted.map(({ row }) => row),
        new InferenceError(`a denoiser step failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
      );
    } finally {
      this.busy = false;
      this.pump();
    }
  }

  /** Rows are reported at the step they ran (before it is counted); a finished call with its timing, a failed one with its error. */
  private report(stage: BatchStage, start: number, end: number, rows: readonly Row[], how: { timing: CallTiming } | { err: unknown }): void {
    const { onBatch } = this.listeners;
    if (!onBatch) return;
    onBatch({
      stage,
      start,
      end,
      rows: rows.map((r) => ({ job: r.input, step: r.i })),
      ...('timing' in how ? { timing: { runMs: how.timing.runMs, hostMs: how.timing.hostMs } } : { error: (how.err as Error)?.message ?? String(how.err) }),
    });
  }

  /** A failed call poisons the arena rows it touched: fail them and keep serving the rest. */
  private failBatch(rows: readonly Row[], err: InferenceError): void {
    for (const row of rows) {
      this.table.remove(row);
      this.fail(row, err);
    }
  }

  private complete(row: Row, end: number, actions: Float32Array, future: Float32Array): void {
    this.counters.completed++;
    const { input, plan } = row;
    row.detach();
    // Temporal ensembling blends the finished chunk with the prefix (docs/sampling.md, "Real-time chunking").
    if (input.chunking?.method === 'ensemble') blendPrefix({ ...input.chunking, actionDim: this.executor.shapes.actionDim }, actions);
    row.resolve({
      actions,
      future,
      obsEmbedding: row.obsEmbedding,
      actionSteps: row.counts.actionSteps,
      visionSteps: row.counts.visionSteps,
      budget: plan && { feasible: plan.feasible, plannedTotalMs: plan.finish - input.receivedAt },
      timing: {
        queueMs: row.vlmStart - input.receivedAt,
        vlmMs: row.vlmEnd - row.vlmStart,
        denoiseMs: end - row.vlmEnd,
        totalMs: end - input.receivedAt,
        vlmBatchSize: row.vlmBatch,
        meanDenoiseBatch: row.i > 0 ? row.batchSum / row.i : 0,
      },
    });
  }
}
