/**
 * A robot's asynchronous chunk execution with real-time chunking on the server (docs/api.md, "Real-time
 * chunking"): the TypeScript twin of the Python client's RealtimeChunker (docs/python-client.md).
 *
 * The robot calls `action(observe)` once per control tick and applies what it returns. Every `execute` actions of
 * a chunk, the chunker asks for the next one: it calls `observe()` for the current observation, adds the committed
 * prefix (the rest of the executing chunk, from this tick's row on) and sends it on the stream without waiting.
 * The robot keeps executing the old chunk; when the answer is in and as many ticks have passed as the delay d the
 * server assumed (declared, or estimated from the stream's latency and the control period), the new chunk takes
 * over at row d, or at the row of the current tick if the answer came later. With `delayWindow` the chunker
 * declares d itself, as Black, Galliker and Levine's algorithm does: the most ticks any of the last `delayWindow`
 * answers took to arrive, which counts the network and the robot's own side of the call that the server's estimate
 * cannot see. No timer of its own: the robot's loop is the clock.
 */
import type { ChunkingMethodName, PredictRequestInit } from './request.js';
import { actionRows, type PredictResult } from './response.js';

/** What the chunker needs of a session: PredictStream's send. */
export interface ChunkerSession {
  send(init: PredictRequestInit): Promise<PredictResult>;
}

export interface RealtimeChunkerOptions {
  /** Actions of a chunk run before the next is requested (the execution horizon), >= 1. */
  readonly execute: number;
  /** d, when the robot knows it. */
  readonly delaySteps?: number;
  /** Declare d as the most ticks any of the last this many answers took to arrive. @default 0 (off) */
  readonly delayWindow?: number;
  /** The control period in ms, for the server to estimate d from the stream's latency; required without delaySteps. */
  readonly controlPeriodMs?: number;
  /** @default the server's choice */
  readonly method?: ChunkingMethodName;
}

interface Pending {
  /** The tick of the request's observation. */
  readonly tick: number;
  /** Ticks from the observation to the first tick that saw the answer. */
  arrived?: number;
  settled?: { readonly result: PredictResult } | { readonly error: unknown };
}

export class RealtimeChunker {
  private chunk: Float32Array[] | undefined;
  /** The executing chunk's row for the current tick. */
  private row = 0;
  private tick = 0;
  private pending: Pending | undefined;
  /** Ticks each of the latest answers took to arrive (the last delayWindow of them). */
  private readonly arrivals: number[] = [];
  /** The answer executing now (its chunking report and timing). */
  lastResult: PredictResult | undefined;
  /** Switches to a new chunk. */
  switches = 0;
  /** Switches that came later than the d the server assumed (the robot ran actions the new chunk did not continue). */
  lateSwitches = 0;

  constructor(
    private readonly session: ChunkerSession,
    private readonly o: RealtimeChunkerOptions,
  ) {
    if (!(Number.isInteger(o.execute) && o.execute >= 1)) throw new RangeError(`execute must be an integer >= 1, got ${o.execute}`);
    const window = o.delayWindow ?? 0;
    if (!(Number.isInteger(window) && window >= 0)) throw new RangeError(`delayWindow must be an integer >= 0, got ${o.delayWindow}`);
    if (window > 0 && o.delaySteps !== undefined) throw new RangeError('give delaySteps or delayWindow, not both: a declared d needs no measurement');
    if (o.delaySteps === undefined && window === 0 && !(o.controlPeriodMs !== undefined && o.controlPeriodMs > 0)) {
      throw new RangeError('give delaySteps, delayWindow > 0, or controlPeriodMs > 0 for the server to estimate the delay');
    }
    if (o.delaySteps !== undefined && !(Number.isInteger(o.delaySteps) && o.delaySteps >= 0)) {
      throw new RangeError(`delaySteps must be an integer >= 0, got ${o.delaySteps}`);
    }
  }

  /** A request is in flight. */
  get waiting(): boolean {
    return this.pending !== undefined;
  }

  /**
   * The action for this tick (a row of the executing chunk), or undefined while there is none (before the first
   * chunk, or when a chunk ran out before its successor could take over: hold still). `observe` is called only
   * when a new chunk is due and returns the request for the current observation, without a prefix. Throws the
   * error of a request that failed (the next call asks again).
   */
  action(observe: () => PredictRequestInit): Float32Array | undefined {
    this.takeOver();
    if (!this.pending && (!this.chunk || this.row >= this.o.execute)) this.request(observe());
    const out = this.chunk && this.row < this.chunk.length ? this.chunk[this.row] : undefined;
    this.row++;
    this.tick++;
    return out;
  }

  private takeOver(): void {
    const p = this.pending;
    if (!p?.settled) return;
    if ('error' in p.settled) {
      this.pending = undefined;
      throw p.settled.error;
    }
    const { result } = p.settled;
    const assumed = result.chunking?.delaySteps ?? 0;
    const elapsed = this.tick - p.tick;
    if (p.arrived === undefined) {
      p.arrived = elapsed;
      this.arrivals.push(elapsed);
      if (this.arrivals.length > (this.o.delayWindow ?? 0)) this.arrivals.shift();
    }
    if (elapsed < assumed) return;
    this.pending = undefined;
    if (this.chunk) {
      this.switches++;
      if (result.chunking && elapsed > assumed) this.lateSwitches++;
    }
    // Row i of the new chunk is for the tick i after its observation.
    this.chunk = actionRows(result);
    this.row = elapsed;
    this.lastResult = result;
  }

  private request(init: PredictRequestInit): void {
    if (init.prefix) throw new RangeError('observe() must return a request without a prefix: the chunker commits the executing chunk');
    const chunk = this.chunk;
    const rest = chunk && this.row < chunk.length ? chunk.slice(this.row) : undefined;
    // A chunk exists only after an answer, so a measuring chunker always has an arrival here.
    const delay = this.o.delayWindow ? Math.max(...this.arrivals) : this.o.delaySteps;
    const req: PredictRequestInit = rest
      ? {
          ...init,
          prefix: {
            actions: rest,
            delaySteps: delay === undefined ? undefined : Math.min(delay, rest.length),
            controlPeriodMs: this.o.controlPeriodMs,
            method: this.o.method,
          },
        }
      : init;
    const p: Pending = { tick: this.tick };
    this.pending = p;
    this.session.send(req).then(
      (result) => (p.settled = { result }),
      (error: unknown) => (p.settled = { error }),
    );
  }
}
