/**
 * One Predict, top-down (docs/architecture.md, "A Predict's path"): the handlers of policy-service.ts call
 * these stages in order.
 *
 * - admit: the request is routed to a version (a pin, or the model's traffic split) and holds a lease on it;
 * - prepare: the message becomes a domain request and is checked against that version's manifest, so its
 *   refusals happen here, before the engine admits it to the version's queue (but for broken images, which only
 *   decoding finds);
 * - run: the engine decodes, schedules and denormalizes;
 * - respond: the request is credited to its experiment variant, mirrored to the shadow version when the split
 *   draws it, and converted to the response message.
 *
 * The experiment layer decides (assignment, shadow draw, statistics); this file is the only place that runs a
 * request on the engine for it.
 */
import { runRequest, validateRequest, type ModelRuntime, type PredictInput, type PredictOutput, type ValidatedRequest } from '../engine/index.js';
import type { Assignment, ExperimentBook } from '../experiment/index.js';
import type { ModelHandle } from '../model/index.js';
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

/** A prepared request: the domain input and its checked form. */
interface Prepared {
  readonly input: PredictInput;
  readonly request: ValidatedRequest;
}

/** Stage 2: the message as a domain request, checked against the version that will run it. */
function prepare(req: PredictRequest__Output, handle: ModelHandle<ModelRuntime>): Prepared {
  const input = toPredictInput(req);
  return { input, request: validateRequest(handle, input) };
}

export class PredictOrchestrator {
  constructor(
    private readonly router: Router,
    private readonly book: ExperimentBook,
    private readonly shadow: ShadowMirror,
    private readonly tracer: RequestTracer,
  ) {}

  /** Stage 1: the version for a request's model field; `serve` releases the lease. */
  admit(modelField: string, robotId: string, episodeId: string): Routed {
    return this.router.route(modelField, robotId, episodeId);
  }

  /** Stage 1 for a later request of a stream: the version its first request was routed to. */
  admitAgain(assignment: Assignment): Routed {
    return this.router.again(assignment);
  }

  /** Stages 2 to 4 for an admitted request; the lease is released when it has run, however it ends. */
  async serve(req: PredictRequest__Output, routed: Routed, call: CallContext): Promise<PredictResponse> {
    const receivedAt = performance.now();
    const span = this.tracer.start({ requestId: req.request_id, robotId: req.robot_id, episodeId: req.episode_id }, receivedAt);
    const { handle } = routed.lease;
    let prepared: Prepared;
    let out: PredictOutput;
    try {
      // prepare may throw (a bad seed, an unknown embodiment): the span ends and the lease is released either way.
      prepared = prepare(req, handle);
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
   * Stage 4: credit, mirror, convert. The response waits for its count: with a shared store, a replica that dies
   * after answering has counted. The shadow runs after the primary has answered and is not waited for.
   */
  private async respond(assignment: Assignment, input: PredictInput, out: PredictOutput, latencyMs: number): Promise<PredictResponse> {
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
    return toPredictResponse(out);
  }
}
