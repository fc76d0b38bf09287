/**
 * Deterministic stand-ins for the scheduler tests: a manual clock and an executor whose calls take a
 * configurable time on that clock. The fake executor keeps a real arena so that slot moves are exercised:
 * each row's velocity is its state[0] for both modalities, so a finished row's actions and future are all
 * exactly state[0] (the flow integrates v from tau 0 to 1) unless rows were mixed up.
 */
import { inpaintStep } from '../../sampling/index.js';
import type { Clock } from '../clock.js';
import type { Executor, ModelShapes, StepBatch, StepResult, VlmBatch, VlmResult } from '../executor.js';

export class ManualClock implements Clock {
  private t = 0;
  private timers: Array<{ at: number; fn: () => void; seq: number; live: boolean }> = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number) {
    const timer = { at: this.t + Math.max(0, ms), fn, seq: this.seq++, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Runs timers in time order until none is due before `until`, letting promise callbacks settle. */
  async advanceTo(until: number): Promise<void> {
    for (;;) {
      await flush();
      const due = this.timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      due.live = false;
      this.timers = this.timers.filter((t) => t.live);
      due.fn();
    }
    this.t = Math.max(this.t, until);
    await flush();
  }

  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.t + ms);
  }

  pendingTimers(): number {
    return this.timers.filter((t) => t.live).length;
  }
}

export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

export const TEST_SHAPES: ModelShapes = Object.freeze({
  views: 1,
  imageHeight: 2,
  imageWidth: 2,
  pixelDtype: 'float32',
  textTokens: 2,
  condTokens: 2,
  condDim: 2,
  stateDim: 2,
  horizon: 2,
  actionDim: 2,
  futureTokens: 1,
  futureDim: 2,
  futureStream: true,
});

export interface FakeCall {
  readonly kind: 'vlm' | 'step';
  readonly at: number;
  readonly batch: number;
  /** Row identities (state[0]) in the call, in slot order. */
  readonly rows: number[];
  readonly tauA: number[];
  readonly tauO: number[];
}

export class FakeExecutor implements Executor {
  readonly calls: FakeCall[] = [];
  private readonly rowId: number[];
  private readonly a: Float32Array[];
  private readonly o: Float32Array[];
  /** When set, the next step call rejects with this error. */
  failNextStep: Error | undefined;

  constructor(
    private readonly clock: ManualClock,
    readonly capacity = 64,
    /** Cost of a call in ms as a function of its batch size. */
    private readonly cost: { vlm: (b: number) => number; step: (b: number) => number } = {
      vlm: (b) => 4 + 0.5 * b,
      step: (b) => 1 + 0.1 * b,
    },
    readonly shapes: ModelShapes = TEST_SHAPES,
  ) {
    this.rowId = new Array(capacity).fill(NaN);
    this.a = Array.from({ length: capacity }, () => new Float32Array(shapes.horizon * shapes.actionDim));
    this.o = Array.from({ length: capacity }, () => new Float32Array(shapes.futureTokens * shapes.futureDim));
  }

  private after<T>(ms: number, value: () => T): Promise<T> {
    return new Promise((resolve, reject) =>
      this.clock.setTimeout(() => {
        try {
          resolve(value());
        } catch (e) {
          reject(e);
        }
      }, ms),
    );
  }

  private applyMoves(moves: VlmBatch['moves']): void {
    for (const { from, to } of moves) {
      this.rowId[to] = this.rowId[from];
      this.a[to].set(this.a[from]);
      this.o[to].set(this.o[from]);
    }
  }

  runVlm(batch: VlmBatch): Promise<VlmResult> {
    this.applyMoves(batch.moves);
    const B = batch.slots.length;
    const ids = Array.from(batch.slots, (_, b) => batch.state[b * this.shapes.stateDim]);
    this.calls.push({ kind: 'vlm', at: this.clock.now(), batch: B, rows: ids, tauA: [], tauO: [] });
    const ms = this.cost.vlm(B);
    batch.slots.forEach((slot, b) => {
      this.rowId[slot] = ids[b];
      this.a[slot].fill(0);
      this.o[slot].fill(0);
    });
    return this.after(ms, () => ({ obsEmbedding: new Float32Array(B * this.shapes.futureTokens * this.shapes.futureDim).fill(1), runMs: ms, hostMs: 0 }));
  }

  step(batch: StepBatch): Promise<StepResult> {
    this.applyMoves(batch.moves);
    const B = batch.slots.length;
    const slots = Array.from(batch.slots);
    this.calls.push({
      kind: 'step',
      at: this.clock.now(),
      batch: B,
      rows: slots.map((s) => this.rowId[s]),
      tauA: Array.from(batch.tauA),
      tauO: Array.from(batch.tauO),
    });
    const ms = this.cost.step(B);
    if (this.failNextStep) {
      const err = this.failNextStep;
      this.failNextStep = undefined;
      return this.after(ms, () => {
        throw err;
      });
    }
    slots.forEach((slot, b) => {
      const v = this.rowId[slot];
      this.o[slot].forEach((_, j, arr) => (arr[j] += batch.dtO[b] * v));
      if (batch.dtA[b] > 0) this.a[slot].forEach((_, j, arr) => (arr[j] += batch.dtA[b] * v));
      const g = batch.guides?.[b];
      if (g) inpaintStep(g.guide, g.tau, this.a[slot]);
    });
    const fin = Array.from(batch.finishing);
    const actions = new Float32Array(fin.length * this.a[0].length);
    const future = new Float32Array(fin.length * this.o[0].length);
    fin.forEach((slot, f) => {
      actions.set(this.a[slot], f * this.a[0].length);
      future.set(this.o[slot], f * this.o[0].length);
    });
    return this.after(ms, () => ({ actions, future, runMs: ms, hostMs: 0 }));
  }

  async close(): Promise<void> {}
}
