/**
 * A robot's control session over StreamPredict: the server answers every request with one response, in
 * order, and keeps the model version fixed for the stream's life (shared/spec/serving-api.md). So the
 * stream matches responses to requests by position: `send` queues a pending promise that the next
 * response settles.
 */
import { status, type ClientDuplexStream } from '@grpc/grpc-js';
import type { PredictRequest } from '../gen/dust/serving/v1/PredictRequest.js';
import type { PredictResponse__Output } from '../gen/dust/serving/v1/PredictResponse.js';
import { DustClientError } from './errors.js';
import { toPredictRequest, type PredictRequestInit } from './request.js';
import { fromPredictResponse, type PredictResult } from './response.js';

interface Pending {
  resolve(result: PredictResult): void;
  reject(err: DustClientError): void;
}

export class PredictStream {
  private readonly pending: Pending[] = [];
  private failure: DustClientError | undefined;
  private halfClosed = false;

  /** @internal DustClient.stream() opens the call. */
  constructor(private readonly call: ClientDuplexStream<PredictRequest, PredictResponse__Output>) {
    call.on('data', (msg: PredictResponse__Output) => this.onResponse(msg));
    call.on('error', (err: unknown) => this.fail(DustClientError.from(err)));
    // An OK status while requests are unanswered breaks the one-response-per-request contract.
    call.on('end', () => {
      if (this.pending.length > 0) {
        this.fail(new DustClientError(status.INTERNAL, `the server closed the stream with ${this.pending.length} request(s) unanswered`));
      } else {
        this.failure ??= new DustClientError(status.FAILED_PRECONDITION, 'the stream is closed');
      }
    });
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.length;
  }

  /**
   * Sends one observation; resolves with its action chunk. Promises resolve in the order of the sends. Rejects
   * with a DustClientError: the stream's status when it fails (then every unanswered send rejects with it),
   * INVALID_ARGUMENT for a request that cannot be encoded (the stream stays usable), FAILED_PRECONDITION after
   * end() or once the stream has closed.
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
      this.pending.push({ resolve, reject });
      this.call.write(msg);
    });
  }

  /** Half-closes: no more sends; responses to requests already sent still arrive. */
  end(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.call.end();
  }

  /** Abandons the stream: unanswered sends reject with CANCELLED. */
  cancel(): void {
    this.call.cancel();
  }

  private onResponse(msg: PredictResponse__Output): void {
    const next = this.pending.shift();
    if (!next) {
      this.fail(new DustClientError(status.INTERNAL, 'the server sent a response to no request'));
      this.call.cancel();
      return;
    }
    try {
      next.resolve(fromPredictResponse(msg));
    } catch (err) {
      next.reject(new DustClientError(status.INTERNAL, `malformed PredictResponse: ${(err as Error).message}`, { cause: err }));
    }
  }

  private fail(err: DustClientError): void {
    this.failure ??= err;
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}
