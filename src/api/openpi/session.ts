/**
 * One openpi WebSocket connection's conversation (docs/openpi.md): each binary frame is an observation, answered
 * with an action dict, or a control frame (episode_start, episode_end), answered with an acknowledgement. An
 * observation takes the Predict path of the gRPC door, stage by stage (predict-orchestrator.ts: admit, prepare
 * before admission, run, credit), so that it is routed, validated, batched with gRPC requests on the same engine
 * and counted in the same experiment; an episode's end credits its outcome through the ReportOutcome code
 * (outcome.ts). Any refusal is answered with a text frame holding the gRPC error's details, and the connection
 * stays usable. openpi clients are synchronous: a frame that arrives while the previous observation runs is
 * refused, so one connection cannot pile work on the engine. Transport-free: the door (door.ts) hands it frames
 * and sends what it returns.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { status as grpcStatus } from '@grpc/grpc-js';
import { callerKey, type PredictOutput } from '../../engine/index.js';
import { InvalidArgumentError, OverloadedError } from '../../errors/index.js';
import type { ExperimentBook } from '../../experiment/index.js';
import { rejectReasonOf, type Logger, type ServingMetrics } from '../../telemetry/index.js';
import { nextMeasuredLatency } from '../measured-latency.js';
import { creditOutcome } from '../outcome.js';
import type { PredictOrchestrator } from '../predict-orchestrator.js';
import { overRateLimit, type SharedRateLimit } from '../rate-limit-interceptor.js';
import type { RequestLimits } from '../request-limits.js';
import { isInternal, mapError, toServiceError } from '../status.js';
import type { ResolvedMapping } from './key-mapping.js';
import { asNpGeneric, decodeFrame, isDict, own, OutArray, packFrame, type Dict, type FrameLimits } from './msgpack-numpy.js';
import { toPredictRequest } from './observation.js';

/** The metrics' method label of the door's requests (dust_requests_total{method="openpi"}). */
export const OPENPI_METHOD = 'openpi';

/**
 * An id the server makes up (a connection's robot, an episode without one): `<prefix><uuid>`, or, where
 * maxIdBytes is too small for that, as many random hex digits as it allows, so that a generated id never fails
 * the limit it is checked against.
 */
export function generatedId(maxIdBytes: number, prefix = ''): string {
  const id = `${prefix}${randomUUID()}`;
  return id.length <= maxIdBytes
    ? id
    : randomBytes(Math.ceil(maxIdBytes / 2))
        .toString('hex')
        .slice(0, maxIdBytes);
}

export type Reply = { readonly binary: Uint8Array } | { readonly text: string };

/** The orchestrator's stages an observation takes (a fake in unit tests). */
export type OpenpiStages = Pick<PredictOrchestrator, 'admit' | 'prepare' | 'serve'>;

export interface SessionOptions {
  readonly orchestrator: OpenpiStages;
  /** Where episode outcomes are credited. */
  readonly book: Pick<ExperimentBook, 'outcome'>;
  readonly mapping: ResolvedMapping;
  readonly limits: RequestLimits;
  readonly frameLimits: FrameLimits;
  /** The connection's robot: the traffic split's key and the episodes' owner. */
  readonly robotId: string;
  /** PredictRequest.model of every observation: "", "name" or "name@version". */
  readonly model: string;
  /** The key of the connection's credential, if any: its requests' caller for the queue's fair share. */
  readonly credential: string | undefined;
  /** The credential's name, for the rate limit's refusal. */
  readonly callerName?: string;
  readonly rateLimit?: SharedRateLimit;
  readonly log: Logger;
  readonly metrics?: ServingMetrics;
}

const BUSY =
  'one frame at a time: this connection is still running its previous observation; wait for its response before sending another (openpi clients are synchronous)';
const TEXT_FRAME = 'frames must be binary msgpack (openpi_client.msgpack_numpy); this one was a text frame';

export class OpenpiSession {
  private episodeId: string;
  private busy = false;
  private readonly abort = new AbortController();
  /** Receipt to reply of the previous observation, reported as server_timing.prev_total_ms like openpi's server. */
  private prevTotalMs: number | undefined;
  /**
   * The connection's measured latency (the engine's total_ms, a moving average, as a StreamPredict stream keeps
   * it): a prefix that gives its control period instead of its delay has d estimated from it.
   */
  private latencyMs: number | undefined;

  constructor(private readonly o: SessionOptions) {
    this.episodeId = generatedId(o.limits.maxIdBytes);
  }

  /** True while an observation or control frame is being answered. */
  get running(): boolean {
    return this.busy;
  }

  /** The connection closed: its running request, if any, is stopped. */
  cancel(): void {
    this.abort.abort();
  }

  /** The reply to one frame. Never rejects: every failure becomes a text frame. */
  async handle(data: Uint8Array, isBinary: boolean): Promise<Reply> {
    if (this.busy) return this.refuse(new InvalidArgumentError(BUSY), undefined);
    if (!isBinary) return this.refuse(new InvalidArgumentError(TEXT_FRAME), undefined);
    this.busy = true;
    const receivedAt = performance.now();
    try {
      let frame: unknown;
      try {
        frame = decodeFrame(data, this.o.frameLimits);
      } catch (err) {
        this.count(err, undefined);
        return this.refuse(err, undefined);
      }
      if (isDict(frame) && own(frame, '__ctrl__') !== undefined) return await this.control(frame);
      return await this.infer(frame, receivedAt);
    } finally {
      this.busy = false;
    }
  }

  private async infer(frame: unknown, receivedAt: number): Promise<Reply> {
    const { orchestrator, mapping } = this.o;
    let requestId: string | undefined;
    let labels = { model: '', version: '' };
    this.o.metrics?.inflightChanged(OPENPI_METHOD, 1);
    try {
      this.takeRateToken();
      const req = toPredictRequest(frame, mapping, { robotId: this.o.robotId, episodeId: this.episodeId, model: this.o.model, limits: this.o.limits });
      const routed = orchestrator.admit(req.model, req.robot_id, req.episode_id);
      labels = { model: routed.assignment.model, version: String(routed.assignment.version) };
      const prepared = orchestrator.prepare(req, routed, this.latencyMs);
      requestId = prepared.request.requestId;
      const res = await orchestrator.serve(prepared, { deadline: Infinity, signal: this.abort.signal, credential: this.o.credential });
      this.latencyMs = nextMeasuredLatency(this.latencyMs, res.timing.totalMs);
      this.served(res, labels, receivedAt);
      const reply = { binary: packFrame(this.actionDict(res, receivedAt)) };
      this.prevTotalMs = performance.now() - receivedAt;
      return reply;
    } catch (err) {
      this.count(err, labels);
      return this.refuse(err, requestId);
    } finally {
      this.o.metrics?.inflightChanged(OPENPI_METHOD, -1);
    }
  }

  /** The gRPC door's rate limit, from the same buckets: one budget per caller across both doors. */
  private takeRateToken(): void {
    const limit = this.o.rateLimit;
    if (!limit) return;
    const waitMs = limit.buckets.take(callerKey(this.o.credential, this.o.robotId), performance.now());
    if (waitMs > 0) throw new OverloadedError(overRateLimit(this.o.callerName, this.o.robotId, limit, waitMs), 'rate_limited');
  }

  /** openpi's action dict (its server's `actions` and `server_timing`), with dust-serve's own fields beside them. */
  private actionDict(out: PredictOutput, receivedAt: number): Dict {
    const { sampling: s, timing: t } = out;
    return {
      actions: OutArray.ofFloats(out.actions, out.actionShape),
      server_timing: {
        infer_ms: performance.now() - receivedAt,
        ...(this.prevTotalMs !== undefined ? { prev_total_ms: this.prevTotalMs } : {}),
        queue_ms: t.queueMs,
        vlm_ms: t.vlmMs,
        denoise_ms: t.denoiseMs,
        total_ms: t.totalMs,
        vlm_batch_size: t.vlmBatchSize,
        mean_denoise_batch: t.meanDenoiseBatch,
      },
      future_embedding: out.futureEmbedding ? OutArray.ofFloats(out.futureEmbedding, out.futureShape) : undefined,
      sampling: {
        action_steps: s.actionSteps,
        vision_steps: s.visionSteps,
        seed: s.seed,
        budget_ms: s.budgetMs,
        budget_met: s.budgetMet,
        budget_feasible: s.budgetFeasible,
        planned_total_ms: s.plannedTotalMs,
      },
      world_model_surprise: out.worldModelSurprise,
      chunking: out.chunking && {
        method: out.chunking.method,
        delay_steps: out.chunking.delaySteps,
        delay_estimated: out.chunking.delayEstimated,
        prefix_length: out.chunking.prefixLength,
      },
      request_id: out.requestId,
      model_name: out.modelName,
      model_version: out.modelVersion,
      variant: out.variant,
      episode_id: this.episodeId,
    };
  }

  private async control(frame: Dict): Promise<Reply> {
    const ctrl = own(frame, '__ctrl__');
    try {
      if (ctrl === 'episode_start') return { binary: packFrame(this.episodeStart(frame)) };
      if (ctrl === 'episode_end') return { binary: packFrame(await this.episodeEnd(frame)) };
    } catch (err) {
      return this.refuse(err, undefined);
    }
    // openpi's server acknowledges control frames it does not know.
    return { binary: packFrame({ __ack__: 'ignored' }) };
  }

  /**
   * A new episode: its id is "<__experiment__>/<__episode_id__>" (or the id alone without an experiment), so
   * that evaluation runs that count their episodes from 0 again do not collide; a generated one for -1 or none.
   */
  private episodeStart(frame: Dict): Dict {
    const experiment = text(own(frame, '__experiment__'), '__experiment__');
    const task = text(own(frame, '__task__'), '__task__');
    const given = asNpGeneric(own(frame, '__episode_id__')) ?? own(frame, '__episode_id__');
    let id: string;
    if (given === undefined || given === -1 || given === '') id = generatedId(this.o.limits.maxIdBytes);
    else if ((typeof given === 'number' && Number.isSafeInteger(given) && given >= 0) || typeof given === 'string') {
      id = experiment ? `${experiment}/${String(given)}` : String(given);
    } else throw new InvalidArgumentError('__episode_id__ must be a non-negative integer, a string, or -1 for a generated id');
    const bytes = Buffer.byteLength(id, 'utf8');
    if (bytes > this.o.limits.maxIdBytes) {
      throw new InvalidArgumentError(`episode_id (__experiment__/__episode_id__) is ${bytes} bytes, above the limit of ${this.o.limits.maxIdBytes}`);
    }
    if (id.includes('\u0000'))
      throw new InvalidArgumentError('episode_id (__experiment__/__episode_id__) holds a NUL character (U+0000); strings may not contain it');
    this.episodeId = id;
    this.o.log.debug({ episodeId: id, experiment, task }, 'episode started');
    return { __ack__: 'episode_start', episode_id: id, robot_id: this.o.robotId };
  }

  /** The episode's outcome, credited as ReportOutcome credits it; the next observations start a new episode. */
  private async episodeEnd(frame: Dict): Promise<Dict> {
    const raw = own(frame, '__success__');
    const value = asNpGeneric(raw) ?? raw;
    if (value !== undefined && typeof value !== 'boolean' && value !== 0 && value !== 1) {
      throw new InvalidArgumentError('__success__ must be a boolean');
    }
    const success = value === true || value === 1;
    const episodeId = this.episodeId;
    this.episodeId = generatedId(this.o.limits.maxIdBytes);
    const credit = await creditOutcome(this.o.book, this.o.robotId, episodeId, success);
    this.o.log.debug({ episodeId, success, model: credit.model, version: credit.version, counted: credit.counted }, 'outcome credited');
    return { __ack__: 'episode_end', episode_id: episodeId, counted: credit.counted, model_name: credit.model, model_version: credit.version };
  }

  private served(out: PredictOutput, labels: { model: string; version: string }, receivedAt: number): void {
    const m = this.o.metrics;
    if (!m) return;
    m.requestFinished(OPENPI_METHOD, 'OK', labels, (performance.now() - receivedAt) / 1000);
    m.predictServed({
      ...labels,
      queueSeconds: out.timing.queueMs / 1000,
      visionSteps: out.sampling.visionSteps,
      budgetMissed: out.sampling.budgetMs > 0 && !out.sampling.budgetMet,
      surprise: out.worldModelSurprise,
    });
  }

  private count(err: unknown, labels: { model: string; version: string } | undefined): void {
    const m = this.o.metrics;
    if (!m) return;
    m.requestFinished(OPENPI_METHOD, grpcStatus[mapError(err).code], labels ?? { model: '', version: '' });
    const reason = rejectReasonOf(err);
    if (reason) m.requestRejected(reason);
  }

  /** The text frame of a refusal: the details the gRPC door would send for the same error. */
  private refuse(err: unknown, requestId: string | undefined): Reply {
    if (isInternal(err)) this.o.log.error({ err, requestId }, 'openpi request failed');
    else this.o.log.debug({ err: (err as Error).message, requestId }, 'openpi frame refused');
    return { text: toServiceError(err, requestId).details };
  }
}

function text(v: unknown, name: string): string {
  const s = asNpGeneric(v) ?? v;
  if (s === undefined) return '';
  if (typeof s !== 'string') throw new InvalidArgumentError(`${name} must be a string`);
  return s;
}
