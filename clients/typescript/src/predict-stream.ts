/**
 * A robot's control session over StreamPredict: the server answers every request with one response, in
 * order, and keeps the model version fixed for the stream's life (docs/api.md). So the
 * stream matches responses to requests by position: `send` queues a pending promise that the next
 * response settles.
 *
 * The session survives the replica behind it. When the call fails with a retryable status (UNAVAILABLE: the
 * replica drains or its connection dropped; RESOURCE_EXHAUSTED: it shed a request), the stream opens a new call
 * after a backoff, which the channel's load balancer places on a live replica, and sends again every request
 * that got no response. Those requests carry the version the session was served as a pin
 * (`model = "name@version"`), so the new replica serves the episode from the same checkpoint.
 */
import { status, type ClientDuplexStream } from '@grpc/grpc-js';
import type { PredictRequest } from './gen/dust/serving/v1/PredictRequest.js';
import type { PredictResponse__Output } from './gen/dust/serving/v1/PredictResponse.js';
import { brokenInTransit, DustClientError } from './errors.js';
import { toPredictRequest, type PredictRequestInit } from './request.js';
import { fromPredictResponse, type PredictResult } from './response.js';
import { retryDelayMs, type RetryPolicy } from './service-config.js';

export type StreamCall = ClientDuplexStream<PredictRequest, PredictResponse__Output>;

/** @internal What DustClient.stream() hands a PredictStream. */
export interface PredictStreamInit {
  /** Opens one StreamPredict call; throws a DustClientError when the client is closed. */
  open(): StreamCall;
  /** How often and how fast a broken session is re-opened; false: a broken session fails. */
  resume: RetryPolicy | false;
  signal?: AbortSignal;
}

interface Pending {
  msg: PredictRequest;
  resolve(result: PredictResult): void;
  reject(err: DustClientError): void;
}

/**
 * The status a failure counts as for re-opening. A CANCELLED that this stream did not ask for is a reset from the
 * other side: HTTP/2 proxies (HAProxy) reset the streams of a replica that died with RST_STREAM(CANCEL), and
 * dust-serve itself answers CANCELLED only to a client that has cancelled. That is a lost replica: UNAVAILABLE.
 */
function resumeCode(err: DustClientError): string {
  return err.codeName === 'CANCELLED' || brokenInTransit(err) ? 'UNAVAILABLE' : err.codeName;
}

export class PredictStream {
  private readonly pending: Pending[] = [];
  private readonly resume: RetryPolicy | false;
  private readonly openCall: () => StreamCall;
  /** The live call; undefined while a broken session waits to be re-opened. */
  private call: StreamCall | undefined;
  private failure: DustClientError | undefined;
  private halfClosed = false;
  private cancelled = false;
  /** "name@version" of the first response: the version this session is served by. */
  private servedBy: string | undefined;
  /** Re-opens since the last response. */
  private attempts = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  private resumedCount = 0;
  private readonly detachSignal: () => void = () => undefined;

  /** @internal DustClient.stream() creates it. */
  constructor(init: PredictStreamInit) {
    this.openCall = init.open;
    this.resume = init.resume;
    this.call = this.attach(init.open());
    const { signal } = init;
    if (signal) {
      if (signal.aborted) this.cancel();
      else {
        const onAbort = (): void => this.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
        this.detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.length;
  }

  /** How many times the session was re-opened on another call after a retryable failure. */
  get resumed(): number {
    return this.resumedCount;
  }

  /**
   * Sends one observation; resolves with its action chunk. Promises resolve in the order of the sends. Rejects
   * with a DustClientError: the stream's status when it fails for good (then every unanswered send rejects with
   * it), INVALID_ARGUMENT for a request that cannot be encoded (the stream stays usable), FAILED_PRECONDITION
   * after end() or once the stream has closed.
   */
  send(init: PredictRequestInit): Promise<PredictResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.halfClosed) return Promise.reject(new DustClientError(status.FAILED_PRECONDITION, 'send() after end() on a PredictStream'));
    let msg: PredictRequest;
    try {
      msg = toPredictRequest(init);
    } catch (err) {
      return Promise.reject(new DustClientError(status.INVALID_ARGUMENT, (err as Error).message, { cause: err }));
    }
    return new Promise<PredictResult>((resolve, reject) => {
      this.pending.push({ msg, resolve, reject });
      // While the session is being re-opened, the new call sends it with the others.
      this.call?.write(this.resumedCount > 0 ? this.pinned(msg) : msg);
    });
  }

  /** Half-closes: no more sends; responses to requests already sent still arrive. */
  end(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.call?.end();
  }

  /** Abandons the stream: unanswered sends reject with CANCELLED. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.resumeTimer);
    if (this.call) this.call.cancel();
    else this.fail(new DustClientError(status.CANCELLED, 'the stream was cancelled while it was being re-opened'));
  }

  private attach(call: StreamCall): StreamCall {
    call.on('data', (msg: PredictResponse__Output) => {
      if (call === this.call) this.onResponse(msg);
    });
    call.on('error', (err: unknown) => {
      if (call === this.call) this.onError(DustClientError.from(err));
    });
    // An OK status while requests are unanswered breaks the one-response-per-request contract.
    call.on('end', () => {
      if (call !== this.call) return;
      if (this.pending.length > 0) {
        this.fail(new DustClientError(status.INTERNAL, `the server closed the stream with ${this.pending.length} request(s) unanswered`));
      } else {
        this.failure ??= new DustClientError(status.FAILED_PRECONDITION, 'the stream is closed');
        this.detachSignal();
      }
    });
    return call;
  }

  private onResponse(msg: PredictResponse__Output): void {
    const next = this.pending.shift();
    if (!next) {
      const call = this.call;
      this.fail(new DustClientError(status.INTERNAL, 'the server sent a response to no request'));
      call?.cancel();
      return;
    }
    this.attempts = 0;
    try {
      const result = fromPredictResponse(msg);
      this.servedBy ??= `${result.modelName}@${result.modelVersion}`;
      next.resolve(result);
    } catch (err) {
      next.reject(new DustClientError(status.INTERNAL, `malformed PredictResponse: ${(err as Error).message}`, { cause: err }));
    }
  }

  private onError(err: DustClientError): void {
    const policy = this.resume;
    const retryable = policy && !this.cancelled && (policy.retryableStatusCodes as readonly string[]).includes(resumeCode(err));
    const wanted = this.pending.length > 0 || !this.halfClosed;
    if (!retryable || !wanted || this.attempts + 1 >= policy.maxAttempts) {
      this.fail(err);
      return;
    }
    // The broken call's later events ('end', a late 'data') no longer count.
    this.call = undefined;
    const delay = retryDelayMs(policy, this.attempts);
    this.attempts++;
    this.resumeTimer = setTimeout(() => this.reopen(), delay);
  }

  private reopen(): void {
    this.resumeTimer = undefined;
    let call: StreamCall;
    try {
      call = this.openCall();
    } catch (err) {
      this.fail(DustClientError.from(err));
      return;
    }
    this.resumedCount++;
    this.call = this.attach(call);
    for (const p of this.pending) call.write(this.pinned(p.msg));
    if (this.halfClosed) call.end();
  }

  /** The request as a re-opened session sends it: bound to the version that served the session so far. */
  private pinned(msg: PredictRequest): PredictRequest {
    if (!this.servedBy || (msg.model ?? '').includes('@')) return msg;
    return { ...msg, model: this.servedBy };
  }

  private fail(err: DustClientError): void {
    this.failure ??= err;
    this.call = undefined;
    clearTimeout(this.resumeTimer);
    this.detachSignal();
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}
