/**
 * DustClient: the typed client of PolicyService (and the server's grpc.health.v1 Health), for programs
 * that drive robots or operate a fleet. One channel per client; every method resolves with decoded,
 * camelCase results and rejects with a DustClientError.
 *
 * The channel balances over every address the target resolves to and retries what a draining, dying or
 * overloaded replica answers (service-config.ts); a StreamPredict session re-opens on another replica
 * (predict-stream.ts). So one client pointed at N replicas, or at a load balancer in front of them, loses no
 * request when one of them goes away.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  fromExperiment,
  fromModelStatus,
  fromTrafficSplit,
  toSetTrafficSplitRequest,
  type ExperimentResult,
  type ModelStatusResult,
  type SplitInit,
  type TrafficSplitResult,
} from './admin.js';
import { brokenInTransit, DustClientError } from './errors.js';
import { fromListModelsResponse, fromReportOutcomeResponse, toReportOutcomeRequest, type ModelList, type OutcomeInit, type OutcomeResult } from './models.js';
import { PredictStream, type StreamCall } from './predict-stream.js';
import { clientProtos, type ClientProtos } from './protos.js';
import { toPredictRequest, type PredictRequestInit } from './request.js';
import { fromPredictResponse, type PredictResult } from './response.js';
import {
  compileRetryPolicy,
  DEFAULT_LOAD_BALANCING,
  retryDelayMs,
  serviceConfig,
  type LoadBalancingPolicy,
  type RetryPolicy,
  type RetryPolicyInit,
} from './service-config.js';

export interface DustClientOptions {
  /** @default grpc.credentials.createInsecure() */
  credentials?: grpc.ChannelCredentials;
  /** Deadline of unary calls that pass none; streams only get an explicit one. @default none */
  defaultDeadlineMs?: number;
  /**
   * Retries of PolicyService calls on UNAVAILABLE and RESOURCE_EXHAUSTED, and re-opening of a broken
   * StreamPredict session; false turns both off. @default DEFAULT_RETRY_POLICY (5 attempts, 50 ms doubling to 1 s)
   */
  retry?: RetryPolicyInit | false;
  /** How calls spread over the addresses the target resolves to. @default 'round_robin' */
  loadBalancing?: LoadBalancingPolicy;
  /**
   * grpc-js channel options, e.g. keepalive. A 'grpc.service_config' here replaces the one built from `retry`
   * and `loadBalancing` (streams still re-open per `retry`). @default {}
   */
  channelOptions?: grpc.ChannelOptions;
  /** Sent as `authorization: Bearer <token>` on every call, for servers started with a tokens file. @default none */
  token?: string;
}

export interface CallOptions {
  /** Milliseconds from now until the call fails with DEADLINE_EXCEEDED. @default the client's defaultDeadlineMs */
  deadlineMs?: number;
  /** Aborting cancels the call; it then rejects with CANCELLED. */
  signal?: AbortSignal;
  /** Request metadata, e.g. credentials a server interceptor checks. */
  metadata?: grpc.Metadata;
}

/** Stream calls ignore defaultDeadlineMs: a control session outlives any per-request deadline. */
export type StreamOptions = CallOptions;

/** grpc.health.v1 ServingStatus. SERVICE_UNKNOWN is only used by Watch; Check answers NOT_FOUND instead. */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export class DustClient {
  private readonly client: grpc.Client;
  private readonly protos: ClientProtos;
  private readonly defaultDeadlineMs: number | undefined;
  private readonly retry: RetryPolicy | false;
  private readonly token: string | undefined;
  private closed = false;

  constructor(
    readonly address: string,
    options: DustClientOptions = {},
  ) {
    const { defaultDeadlineMs } = options;
    if (defaultDeadlineMs !== undefined && !(defaultDeadlineMs > 0 && Number.isFinite(defaultDeadlineMs))) {
      throw new RangeError(`defaultDeadlineMs must be a positive number of milliseconds, got ${defaultDeadlineMs}`);
    }
    this.defaultDeadlineMs = defaultDeadlineMs;
    this.retry = options.retry === false ? false : compileRetryPolicy(options.retry);
    this.token = options.token;
    this.protos = clientProtos();
    const channelOptions: grpc.ChannelOptions = {
      'grpc.service_config': JSON.stringify(serviceConfig(options.loadBalancing ?? DEFAULT_LOAD_BALANCING, this.retry)),
      ...options.channelOptions,
    };
    this.client = new grpc.Client(address, options.credentials ?? grpc.credentials.createInsecure(), channelOptions);
  }

  /** One observation in, one action chunk out. */
  async predict(init: PredictRequestInit, opts: CallOptions = {}): Promise<PredictResult> {
    const request = encode(() => toPredictRequest(init));
    const response = await this.policyUnary(this.protos.policy.Predict, request, opts);
    return decode('PredictResponse', () => fromPredictResponse(response));
  }

  /**
   * Opens a StreamPredict control session, re-opened on another replica after a retryable failure (see
   * `retry`). Throws a DustClientError (FAILED_PRECONDITION) on a closed client.
   */
  stream(opts: StreamOptions = {}): PredictStream {
    this.assertOpen();
    const method = this.protos.policy.StreamPredict;
    // One deadline for the session, whichever call carries it.
    const options = callOptions(opts.deadlineMs);
    const open = (): StreamCall => {
      this.assertOpen();
      return this.client.makeBidiStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        // Each call gets its own copy (grpc-js may add to the metadata it sends), with the bearer token.
        this.metadata(opts.metadata),
        options,
      );
    };
    return new PredictStream({ open, resume: this.retry, signal: opts.signal });
  }

  /** Loaded models and versions with their state, shapes and traffic weights. */
  async listModels(opts: CallOptions = {}): Promise<ModelList> {
    const response = await this.policyUnary(this.protos.policy.ListModels, {}, opts);
    return fromListModelsResponse(response);
  }

  /** Reports an episode's result; the server credits the version that served the episode. */
  async reportOutcome(init: OutcomeInit, opts: CallOptions = {}): Promise<OutcomeResult> {
    const response = await this.policyUnary(this.protos.policy.ReportOutcome, toReportOutcomeRequest(init), opts);
    return fromReportOutcomeResponse(response);
  }

  /**
   * grpc.health.v1 Check. `service` is "" (the server), "dust.serving.v1.PolicyService", "<model>" or
   * "<model>@<version>"; a name the server does not track rejects with NOT_FOUND.
   */
  async health(service = '', opts: CallOptions = {}): Promise<ServingStatus> {
    const response = await this.unary(this.protos.health.Check, { service }, opts);
    const known = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
    return (known.includes(String(response.status)) ? response.status : 'UNKNOWN') as ServingStatus;
  }

  /** AdminService LoadModel: (re)loads a version from the server's repository (0 = the newest there). */
  async loadModel(name: string, version = 0, opts: CallOptions = {}): Promise<ModelStatusResult> {
    return fromModelStatus(await this.unary(this.protos.admin.LoadModel, { name, version }, opts));
  }

  /** AdminService UnloadModel: drains the version's in-flight requests, then unloads it. */
  async unloadModel(name: string, version: number, opts: CallOptions = {}): Promise<ModelStatusResult> {
    return fromModelStatus(await this.unary(this.protos.admin.UnloadModel, { name, version }, opts));
  }

  /** AdminService SetTrafficSplit. */
  async setTrafficSplit(init: SplitInit, opts: CallOptions = {}): Promise<TrafficSplitResult> {
    return fromTrafficSplit(await this.unary(this.protos.admin.SetTrafficSplit, toSetTrafficSplitRequest(init), opts));
  }

  /** AdminService GetExperiment for a model ('' = the server's default model). */
  async getExperiment(model = '', opts: CallOptions = {}): Promise<ExperimentResult> {
    return fromExperiment(await this.unary(this.protos.admin.GetExperiment, { name: model }, opts));
  }

  /** Closes the channel; calls in flight are cancelled and later calls reject with FAILED_PRECONDITION. */
  close(): void {
    this.closed = true;
    this.client.close();
  }

  /** A call's metadata: the caller's (copied: grpc-js may add to it) plus the bearer token. */
  private metadata(given: grpc.Metadata | undefined): grpc.Metadata {
    const md = given?.clone() ?? new grpc.Metadata();
    if (this.token !== undefined) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  private assertOpen(): void {
    if (this.closed) throw new DustClientError(grpc.status.FAILED_PRECONDITION, `DustClient for ${this.address} is closed`);
  }

  /**
   * A PolicyService call, attempted again on another pick when it broke in transit (`brokenInTransit`: a proxy
   * reset it when its replica died), within the retry policy's attempts and the call's one deadline. The
   * statuses of the policy are retried by grpc-js itself (service-config.ts).
   */
  private async policyUnary<Req, Res>(method: ClientMethod<Req, Res>, request: Req, opts: CallOptions): Promise<Res> {
    const deadlineMs = opts.deadlineMs ?? this.defaultDeadlineMs;
    const deadline = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
      try {
        return await this.unary(method, request, { ...opts, deadlineMs: remaining });
      } catch (err) {
        const policy = this.retry;
        if (!policy || attempt >= policy.maxAttempts || opts.signal?.aborted || !brokenInTransit(err as DustClientError)) throw err;
        const delay = retryDelayMs(policy, attempt - 1);
        if (deadline !== undefined && Date.now() + delay >= deadline) throw err;
        await sleep(delay);
      }
    }
  }

  private unary<Req, Res>(method: ClientMethod<Req, Res>, request: Req, opts: CallOptions): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let options: grpc.CallOptions;
      try {
        this.assertOpen();
        options = callOptions(opts.deadlineMs ?? this.defaultDeadlineMs);
      } catch (err) {
        return reject(err);
      }
      const { signal } = opts;
      if (signal?.aborted) {
        return reject(new DustClientError(grpc.status.CANCELLED, `${method.path} was aborted before it started`, { cause: signal.reason }));
      }
      const onAbort = (): void => call.cancel();
      const call = this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        this.metadata(opts.metadata),
        options,
        (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) return reject(DustClientError.from(err));
          resolve(response as Res);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The client half of a proto-loader MethodDefinition. */
interface ClientMethod<Req, Res> {
  path: string;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(bytes: Buffer): Res;
}

function callOptions(deadlineMs: number | undefined): grpc.CallOptions {
  if (deadlineMs === undefined) return {};
  if (!Number.isFinite(deadlineMs)) throw new DustClientError(grpc.status.INVALID_ARGUMENT, `deadlineMs must be a finite number, got ${deadlineMs}`);
  return { deadline: new Date(Date.now() + deadlineMs) };
}

/** A request that cannot be encoded fails like the server would have failed it: INVALID_ARGUMENT. */
function encode<T>(build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new DustClientError(grpc.status.INVALID_ARGUMENT, (err as Error).message, { cause: err });
  }
}

/** A response that cannot be decoded is the server's fault: INTERNAL, as grpc-js reports undecodable messages. */
function decode<T>(what: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new DustClientError(grpc.status.INTERNAL, `malformed ${what}: ${(err as Error).message}`, { cause: err });
  }
}
