/**
 * One simulated robot: a control session on StreamPredict (or unary Predict calls) sending its pre-serialized
 * request closed-loop (the next as soon as the previous answer is back) or open-loop at a control rate
 * (fixed or Poisson inter-arrival times, whatever the answers do). Latency is what the robot sees: from
 * handing the request to grpc-js to receiving the answer.
 */
import * as grpc from '@grpc/grpc-js';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import { mulberry32 } from '@dust-serve/sim-push';
import type { Codec } from '../test/support/policy-codec.js';
import { nextGapMs, type Workload } from './workload.js';

/**
 * Wait before a closed-loop robot asks again after an error (reopening its stream, or its next unary call): a
 * robot refused a chunk keeps executing the one it has and asks at a later control tick, not in a tight loop.
 */
export const RETRY_DELAY_MS = 10;

function retryDelay(w: Workload): number {
  return w.retryDelayMs ?? RETRY_DELAY_MS;
}

export interface Completion {
  readonly classIndex: number;
  readonly latencyMs: number;
  readonly response: PredictResponse__Output;
}

/** Where robots report; the run decides what is inside the measured window. */
export interface RobotSink {
  completed(c: Completion): void;
  failed(classIndex: number, code: string): void;
}

const identity = (b: Buffer): Buffer => b;

export interface RobotOptions {
  readonly index: number;
  readonly classIndex: number;
  readonly request: Buffer;
  readonly client: grpc.Client;
  readonly codec: Codec;
  readonly workload: Workload;
  readonly sink: RobotSink;
  /** Deadline of each unary Predict call. */
  readonly unaryDeadlineMs: number;
  /** The robot's own token, sent as `authorization: Bearer <token>` with each call (servers with a tokens file). */
  readonly token?: string;
}

export class Robot {
  private running = false;

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.o.token) md.set('authorization', `Bearer ${this.o.token}`);
    return md;
  }

  private stream: grpc.ClientDuplexStream<Buffer, PredictResponse__Output> | undefined;
  /** Send times of requests written on the current stream and not yet answered, in order. */
  private sentAt: number[] = [];
  private readonly unaryCalls = new Set<grpc.ClientUnaryCall>();
  private timer: NodeJS.Timeout | undefined;
  private readonly random: () => number;
  private nextAt = 0;

  constructor(private readonly o: RobotOptions) {
    this.random = mulberry32(0x9e3779b9 ^ (o.index * 7919));
  }

  private get closedLoop(): boolean {
    return this.o.workload.rateHz <= 0;
  }

  start(): void {
    this.running = true;
    if (this.o.workload.rpc === 'stream') this.openStream();
    if (this.closedLoop) {
      this.send();
    } else {
      // Robots are not synchronized: a random phase within the first period.
      this.nextAt = performance.now() + this.random() * (1000 / this.o.workload.rateHz);
      this.tick();
    }
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
    for (const call of this.unaryCalls) call.cancel();
    this.unaryCalls.clear();
  }

  private tick(): void {
    const now = performance.now();
    this.timer = setTimeout(
      () => {
        if (!this.running) return;
        this.send();
        this.nextAt += nextGapMs(this.o.workload.rateHz, this.o.workload.arrivals, this.random());
        this.tick();
      },
      Math.max(0, this.nextAt - now),
    );
  }

  private send(): void {
    if (!this.running) return;
    if (this.o.workload.rpc === 'stream') {
      if (!this.stream) return; // reopening after an error; open-loop sends resume with the new stream
      this.sentAt.push(performance.now());
      this.stream.write(this.o.request);
      return;
    }
    const t0 = performance.now();
    const call = this.o.client.makeUnaryRequest(
      this.o.codec.unaryPath,
      identity,
      this.o.codec.deserialize,
      this.o.request,
      this.metadata(),
      { deadline: Date.now() + this.o.unaryDeadlineMs },
      (err: grpc.ServiceError | null, res?: PredictResponse__Output) => {
        this.unaryCalls.delete(call);
        if (!this.running) return;
        if (err) this.o.sink.failed(this.o.classIndex, grpc.status[err.code] ?? String(err.code));
        else this.o.sink.completed({ classIndex: this.o.classIndex, latencyMs: performance.now() - t0, response: res! });
        if (!this.closedLoop) return;
        if (err) this.timer = setTimeout(() => this.send(), retryDelay(this.o.workload));
        else this.send();
      },
    );
    this.unaryCalls.add(call);
  }

  private openStream(): void {
    const stream = this.o.client.makeBidiStreamRequest(this.o.codec.streamPath, identity, this.o.codec.deserialize, this.metadata(), {});
    this.stream = stream;
    this.sentAt = [];
    stream.on('data', (res: PredictResponse__Output) => {
      if (this.stream !== stream) return;
      const t0 = this.sentAt.shift();
      if (!this.running || t0 === undefined) return;
      this.o.sink.completed({ classIndex: this.o.classIndex, latencyMs: performance.now() - t0, response: res });
      if (this.closedLoop) this.send();
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (!this.running || this.stream !== stream) return;
      // The stream's failure fails every request still waiting on it.
      const code = grpc.status[err.code] ?? String(err.code);
      for (let n = Math.max(1, this.sentAt.length); n > 0; n--) this.o.sink.failed(this.o.classIndex, code);
      this.stream = undefined;
      setTimeout(() => {
        if (!this.running) return;
        this.openStream();
        if (this.closedLoop) this.send();
      }, retryDelay(this.o.workload));
    });
    stream.on('end', () => undefined);
  }
}
