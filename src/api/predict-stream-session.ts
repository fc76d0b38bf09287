/**
 * One StreamPredict stream (docs/api.md, "StreamPredict"): its requests run through the orchestrator's stages
 * (predict-orchestrator.ts) up to DEFAULT_STREAM_PIPELINE_DEPTH at a time, and their responses leave in request
 * order. The stream's first request routes it; the others run on the same version. The first failure ends the
 * stream with that request's status after the responses of the requests before it; requests after it are not
 * run. The handler in policy-service.ts wires a session to the call's events; nothing here knows grpc-js.
 *
 * Stages, one method each: accept (a message arrives: bind, admit, prepare, start running), respond (its turn in
 * request order: write its response or fail), endOfInput (the client half-closed), cancel (the client went away).
 */
import { InvalidArgumentError, quote } from '../errors/index.js';
import type { Assignment } from '../experiment/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { CallContext, PredictOrchestrator } from './predict-orchestrator.js';
import { nextMeasuredLatency } from './measured-latency.js';
import { RefusedMessage } from './request-limits.js';
import type { Routed } from './router.js';

/** Requests of one stream processed concurrently; responses still go out in request order. */
export const DEFAULT_STREAM_PIPELINE_DEPTH = 8;

/** The orchestrator's stages a stream runs its requests through. */
export type StreamStages = Pick<PredictOrchestrator, 'admit' | 'admitAgain' | 'prepare' | 'run'>;

/** What a session does to its call; the handler maps each onto the grpc-js stream. */
export interface StreamCall {
  /** The stream's first request was routed: the version every request of the stream runs on. */
  bound(assignment: Assignment): void;
  write(res: PredictResponse): void;
  /** Ends the stream OK: the input ended and every response is written. */
  end(): void;
  /** Ends the stream with this status: the first failure, after the responses before it. */
  fail(err: unknown, req: PredictRequest__Output | undefined): void;
  /** Stop and restart taking request messages (back-pressure at the pipeline depth). */
  pause(): void;
  resume(): void;
}

export interface StreamSessionOptions {
  /** Absolute performance.now() time of the client's deadline; Infinity when none. */
  readonly deadline: number;
  /** The key of the credential the call carries, if any. */
  readonly credential: string | undefined;
  /** @default DEFAULT_STREAM_PIPELINE_DEPTH */
  readonly depth?: number;
  /** A failure of the session's own bookkeeping (the call could not be ended): logged, never thrown. */
  readonly onBug: (err: unknown) => void;
}

/** The version a stream is bound to, and the model field its first request named. */
interface Binding {
  readonly assignment: Assignment;
  readonly modelField: string;
}

/**
 * - open: taking requests;
 * - closing: a failure is queued behind the earlier responses; no request is taken, nothing else ends the call;
 * - done: the call's status is sent, or the client went away.
 */
type Phase = 'open' | 'closing' | 'done';

export class PredictStreamSession {
  private phase: Phase = 'open';
  private binding: Binding | undefined;
  private inputEnded = false;
  private inFlight = 0;
  /** The last response's turn: each request's turn is chained behind its predecessor's, a failure's too. */
  private tail: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private readonly context: CallContext;
  private readonly depth: number;
  /**
   * The stream's measured latency (the server's total_ms, a moving average): a prefix that gives its control
   * period instead of its delay has d estimated from it (docs/api.md, "Real-time chunking").
   */
  private latencyMs: number | undefined;

  constructor(
    private readonly stages: StreamStages,
    private readonly call: StreamCall,
    private readonly options: StreamSessionOptions,
  ) {
    this.context = { deadline: options.deadline, signal: this.abort.signal, credential: options.credential };
    this.depth = options.depth ?? DEFAULT_STREAM_PIPELINE_DEPTH;
  }

  /**
   * A request message arrived (or the request limits' refusal of one). Routing and validation are synchronous,
   * so a refused request stops the stream's intake at once; its status still waits for the earlier responses.
   */
  accept(message: PredictRequest__Output | RefusedMessage): void {
    if (this.phase !== 'open') return;
    if (message instanceof RefusedMessage) {
      this.failInOrder(message.error, undefined);
      return;
    }
    let response: Promise<PredictResponse>;
    try {
      const prepared = this.stages.prepare(message, this.admit(message), this.latencyMs);
      response = this.stages.run(prepared, this.context);
    } catch (err) {
      this.failInOrder(err, message);
      return;
    }
    // Handled in its turn (respond); until then it must not count as an unhandled rejection.
    response.catch(() => undefined);
    this.inFlight++;
    if (this.inFlight >= this.depth) this.call.pause();
    this.inOrder(() => this.respond(message, response));
  }

  /** The client half-closed: the stream ends OK once every response is written. */
  endOfInput(): void {
    this.inputEnded = true;
    this.inOrder(() => this.endIfDone());
  }

  /** The client went away (or the deadline passed): nothing more is written, running requests are aborted. */
  cancel(): void {
    this.phase = 'done';
    this.abort.abort();
  }

  /**
   * Stage 1 for a stream: the first request is routed (pin or split) and binds the stream to its version; a
   * later one may repeat the model field or name the bound version, and runs on that version (docs/api.md).
   */
  private admit(req: PredictRequest__Output): Routed {
    const bound = this.binding;
    if (!bound) {
      const routed = this.stages.admit(req.model, req.robot_id, req.episode_id);
      this.binding = { assignment: routed.assignment, modelField: req.model };
      this.call.bound(routed.assignment);
      return routed;
    }
    const { model, version } = bound.assignment;
    if (req.model && req.model !== bound.modelField && req.model !== `${model}@${version}`) {
      throw new InvalidArgumentError(
        `this stream is bound to ${model}@${version}; request ${quote(req.request_id || '(no id)')} asks for ${quote(req.model)}: open a new stream to change models`,
      );
    }
    return this.stages.admitAgain(bound.assignment);
  }

  /** A request's turn in request order: its response is written, or its failure ends the stream. */
  private async respond(req: PredictRequest__Output, response: Promise<PredictResponse>): Promise<void> {
    try {
      const res = await response;
      const total = res.timing?.total_ms;
      if (typeof total === 'number') this.latencyMs = nextMeasuredLatency(this.latencyMs, total);
      if (this.phase !== 'done') this.call.write(res);
    } catch (err) {
      this.fail(err, req);
    } finally {
      this.inFlight--;
      if (this.inFlight < this.depth) this.call.resume();
      this.endIfDone();
    }
  }

  /** A failure found on arrival: no request is taken after it, and it ends the stream in its turn. */
  private failInOrder(err: unknown, req: PredictRequest__Output | undefined): void {
    if (this.phase !== 'open') return;
    this.phase = 'closing';
    this.inOrder(() => this.fail(err, req));
  }

  /** Ends the stream with a failure now; requests still running are aborted. The first end wins. */
  private fail(err: unknown, req: PredictRequest__Output | undefined): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.abort.abort();
    this.call.fail(err, req);
  }

  private endIfDone(): void {
    if (this.phase !== 'open' || !this.inputEnded || this.inFlight > 0) return;
    this.phase = 'done';
    this.call.end();
  }

  private inOrder(turn: () => Promise<void> | void): void {
    this.tail = this.tail
      .then(turn)
      .catch((err: unknown) => this.fail(err, undefined))
      .catch(this.options.onBug);
  }
}
