/**
 * One Predict, top-down (docs/architecture.md, "A Predict, top to bottom"): the Predict handler and a
 * StreamPredict stream's session (predict-stream-session.ts) call these stages in order.
 *
 * - admit: the request is routed to a version (a pin, or the model's traffic split) and holds a lease on it;
 * - prepare: the message becomes a domain request and is checked against that version's manifest (robot_id,
 *   embodiment, step counts, state, and the images: one per camera, encoding, sizes, signatures, headers, the
 *   pixel limit), synchronously, so these refusals happen before the engine admits the request to the version's
 *   queue. Only image data that cannot be decoded is found after admission, by the decode pool;
 * - run: the engine admits, decodes, schedules and denormalizes;
 * - respond: the request is credited to its experiment variant, mirrored to the shadow version when the split
 *   draws it, and converted to the response message (the gRPC door's; the openpi door converts the output itself).
 *
 * The experiment layer decides (assignment, shadow draw, statistics); this file is the only place that runs a
 * request on the engine for it.
 */
import { runRequest, validateRequest, type PredictInput, type PredictOutput, type ValidatedRequest } from '../engine/index.js';
import type { Assignment, ExperimentBook } from '../experiment/index.js';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { RequestTracer } from '../telemetry/index.js';
import { toPredictInput, toPredictResponse } from './convert.js';
import type { Routed, Router } from './router.js';
import type { ShadowMirror } from './shadow-mirror.js';

/** What a call contributes to each of its requests. */
export interface CallContext {
  /** Absolute performance.now() time of the client's deadline; Infinity when none. */
  readonly deadline: number;
  readonly signal: AbortSignal;
  /** The key of the credential the call carries, if any (the requests' caller; the robot_id otherwise). */
  readonly credential: string | undefined;
}

/** A request routed and checked against its version (stage 2): what stage 3 runs. */
export interface PreparedPredict {
  readonly routed: Routed;
  readonly input: PredictInput;
  readonly request: ValidatedRequest;
  /** performance.now() when it was prepared: the request's receipt for the engine and its latency. */
  readonly receivedAt: number;
  readonly span: ReturnType<RequestTracer['start']>;
}

export class PredictOrchestrator {
  constructor(
    private readonly router: Router,
    private readonly book: ExperimentBook,
    private readonly shadow: ShadowMirror,
    private readonly tracer: RequestTracer,
  ) {}

  /** Stage 1: the version for a request's model field; `prepare` (on a refusal) or `run` releases the lease. */
  admit(modelField: string, robotId: string, episodeId: string): Routed {
    return this.router.route(modelField, robotId, episodeId);
  }

  /** Stage 1 for a later request of a stream: the version its first request was routed to. */
  admitAgain(assignment: Assignment): Routed {
    return this.router.again(assignment);
  }

  /**
   * Stage 2: the message as a domain request, checked against the version that will run it (the one validation
   * of Predict and StreamPredict). Synchronous, so that a caller knows of a refusal before it runs anything
   * else; a refused request has its span ended and its lease released before the refusal is thrown.
   */
  prepare(req: PredictRequest__Output, routed: Routed, streamLatencyMs?: number): PreparedPredict {
    const receivedAt = performance.now();
    const span = this.tracer.start({ requestId: req.request_id, robotId: req.robot_id, episodeId: req.episode_id }, receivedAt);
    try {
      const input = toPredictInput(req, streamLatencyMs);
      return { routed, input, request: validateRequest(routed.lease.handle, input), receivedAt, span };
    } catch (err) {
      span.failed(err);
      routed.lease.release();
      throw err;
    }
  }

  /** Stages 3 and 4 for a prepared request; the lease is released when it has run, however it ends. */
  async run(prepared: PreparedPredict, call: CallContext): Promise<PredictResponse> {
    return toPredictResponse(await this.serve(prepared, call));
  }

  /**
   * Stages 3 and 4 up to the domain output, credited and mirrored: what `run` converts to the protobuf
   * response, and the openpi door (openpi/session.ts) to its action dict.
   */
  async serve(prepared: PreparedPredict, call: CallContext): Promise<PredictOutput> {
    const { routed, span, receivedAt } = prepared;
    const { handle } = routed.lease;
    let out: PredictOutput;
    try {
      out = await runRequest(handle, prepared.request, {
        receivedAt,
        deadline: call.deadline,
        signal: call.signal,
        traceTag: span.tag,
        credential: call.credential,
      });
    } catch (err) {
      span.failed(err);
      throw err;
    } finally {
      routed.lease.release();
    }
    span.served(handle, out);
    return this.respond(routed.assignment, prepared.input, out, performance.now() - receivedAt);
  }

  /**
   * Stage 4: credit and mirror. The response waits for its count: with a shared store, a replica that dies
   * after answering has counted. The shadow runs after the primary has answered and is not waited for.
   */
  private async respond(assignment: Assignment, input: PredictInput, out: PredictOutput, latencyMs: number): Promise<PredictOutput> {
    const counted = this.book.served(assignment, {
      robotId: input.robotId,
      episodeId: input.episodeId,
      requestId: input.requestId,
      latencyMs,
      visionSteps: out.sampling.visionSteps,
      worldModelSurprise: out.worldModelSurprise,
    });
    void this.shadow.mirror(assignment, input, out);
    await counted;
    return out;
  }
}
