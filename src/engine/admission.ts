/**
 * Admission: whether a request may enter a model version's queue, decided on the main thread before any of
 * its images is decoded (docs/api.md, Errors: "refused at once, before decoding, never after long
 * queueing"). The inference worker reports its load (rows in the denoiser stage, cost model, VLM share) with
 * every VLM batch it starts; the main thread counts the requests it admitted that have not started yet. Pure.
 *
 * Refusals, in order: draining (UNAVAILABLE), a shadow request while a primary one waits (RESOURCE_EXHAUSTED,
 * shadow_shed), queue full (RESOURCE_EXHAUSTED), a caller over its fair share of a contended queue
 * (RESOURCE_EXHAUSTED, queue_full), deadline passed or not reachable even at N_A under the current load
 * (DEADLINE_EXCEEDED).
 *
 * Fair share: without a rate limit, one caller sending faster than the model serves would fill the queue and
 * every other robot would be refused. Once the queue is half full (contended), a caller holding its share of
 * it, maxQueue / (callers + 1) with the callers that have requests waiting (itself included), and at least
 * MIN_CALLER_SHARE, is refused, while callers under their share still get in. The "+ 1" keeps room for a
 * caller not seen yet: a lone caller stops at half the queue. A caller is its credential when the call carries
 * one, else its robot_id (predict.ts).
 *
 * Shadow requests (mirrored traffic, docs/experiments.md) never delay primary ones: one is admitted only while no primary
 * request is admitted and not started, and the queue is never full for a primary request while a shadow one
 * waits in it: the newest waiting shadow request gives its place (evictsShadow). The scheduler picks primary
 * rows first (fair-pick.ts priorityPick).
 */
import { DeadlineExceededError, OverloadedError, UnavailableError } from '../errors/index.js';
import { stageMs, stepPeriodMs, type CostSnapshot } from './cost-model.js';
import { deadlineName, STRICT_BUDGET_ADVICE, type DeadlineSource, type JobPriority } from './job.js';

/** The inference worker's load as last reported to the main thread. */
export interface WorkerLoad {
  /** Rows in the denoiser stage. */
  readonly active: number;
  readonly cost: CostSnapshot;
  readonly vlmShare: number;
}

export const IDLE_LOAD: WorkerLoad = Object.freeze({
  active: 0,
  cost: {
    vlm: { exact: [], fit: undefined, floor: 0, single: undefined, warm: false },
    step: { exact: [], fit: undefined, floor: 0, single: undefined, warm: false },
  },
  vlmShare: 0,
});

export interface AdmissionLimits {
  readonly maxQueue: number;
  readonly maxVlmBatch: number;
  readonly maxDenoiseBatch: number;
}

export interface AdmissionRequest {
  readonly receivedAt: number;
  /** Absolute; Infinity when the client set none (requestDeadline). */
  readonly deadline: number;
  /** What set `deadline`, for the refusal's words. @default 'call' */
  readonly deadlineSource?: DeadlineSource;
  readonly actionSteps: number;
  /** @default 'primary' */
  readonly priority?: JobPriority;
  /** Who sent it, for the fair share of the queue; none: the request is not held to a share. */
  readonly caller?: string;
}

/**
 * A request's deadline: the call's (Infinity when it has none), or, for a strict latency budget (docs/api.md,
 * SamplingOptions), receipt plus the budget when that comes first. Everything that sheds late work (admission,
 * the scheduler's expiry) then treats a strict budget like a gRPC deadline, which a stream's requests cannot carry.
 */
export function requestDeadline(receivedAt: number, callDeadline: number, budgetMs: number, strictBudget: boolean): { at: number; source: DeadlineSource } {
  const budgetEnd = receivedAt + budgetMs;
  return strictBudget && budgetMs > 0 && budgetEnd < callDeadline ? { at: budgetEnd, source: 'budget' } : { at: callDeadline, source: 'call' };
}

/**
 * The caller a request counts against, for the queue's fair share and the per-caller rate limit: its credential
 * when the call carries one, else the robot_id it claims. The prefixes keep a robot_id from ever naming a
 * credential.
 */
export function callerKey(credential: string | undefined, robotId: string): string {
  return credential !== undefined ? `credential:${credential}` : `robot:${robotId}`;
}

/** Places of a contended queue any caller may hold, however many callers share it. */
export const MIN_CALLER_SHARE = 1;

/** The places of a contended queue of `maxQueue` that one of `callers` callers (itself included) may hold. */
export function callerShare(maxQueue: number, callers: number): number {
  return Math.max(MIN_CALLER_SHARE, Math.floor(maxQueue / (callers + 1)));
}

/** Whether the queue is contended: from half full on, callers are held to their share. */
export function contended(queued: number, maxQueue: number): boolean {
  return queued >= Math.ceil(maxQueue / 2);
}

export interface AdmissionState {
  readonly now: number;
  readonly draining: boolean;
  /** Admitted requests that have not started their VLM call (decoding, in flight, or queued in the worker). */
  readonly queued: number;
  /** The shadow requests among them. */
  readonly queuedShadows: number;
  readonly load: WorkerLoad;
  readonly limits: AdmissionLimits;
  /** Primary requests of the request's caller among `queued`. @default 0 */
  readonly callerQueued?: number;
  /** Callers with primary requests among `queued`, the request's caller included. @default 1 */
  readonly callers?: number;
}

/** The queue ahead of the request: a primary request does not count shadow ones (picked after it, or evicted). */
function queueAhead(req: AdmissionRequest, s: AdmissionState): number {
  return req.priority === 'shadow' ? s.queued : s.queued - s.queuedShadows;
}

/** Whether admitting this (primary) request at a full queue sheds the newest waiting shadow request. */
export function evictsShadow(req: AdmissionRequest, s: AdmissionState): boolean {
  return req.priority !== 'shadow' && s.queuedShadows > 0 && s.queued >= s.limits.maxQueue;
}

/**
 * The soonest the request could finish: its VLM call in a batch with everything queued before it (for a
 * primary request, the primary ones: shadows are picked after it), then N_A steps at the batch that the
 * active and those queued rows make. Only hopeless deadlines are refused, so this is deliberately optimistic
 * (no later arrivals, no headroom). `now` when the cost model is still cold.
 */
export function earliestFinish(req: AdmissionRequest, s: AdmissionState): number {
  const { cost, active, vlmShare } = s.load;
  if (!cost.step.warm) return s.now;
  const ahead = queueAhead(req, s);
  if (active + ahead === 0) {
    // Alone on an idle worker: the best case measured (each stage's cheapest average). The load last reported
    // and the averages of a busier time (steps measured while the host was overloaded, a VLM share) describe
    // the past, and only requests that run refresh them: refusing on them, nothing would run again.
    return s.now + cost.vlm.floor + req.actionSteps * cost.step.floor;
  }
  const vlm = stageMs(cost.vlm, Math.min(ahead + 1, s.limits.maxVlmBatch));
  return s.now + vlm + req.actionSteps * stepPeriodMs(cost.step, active + ahead + 1, s.limits.maxDenoiseBatch, vlmShare);
}

/** Why the request must be refused now, or undefined when it may enter. */
export function refusal(req: AdmissionRequest, s: AdmissionState): Error | undefined {
  if (s.draining) return new UnavailableError('the server is draining and accepts no new work; retry on another replica');
  if (req.priority === 'shadow' && s.queued > s.queuedShadows) return new OverloadedError('shadow request shed: primary requests are waiting', 'shadow_shed');
  const limit = s.limits.maxQueue;
  if (queueAhead(req, s) >= limit) {
    return new OverloadedError(`the model's queue is full (${limit} requests waiting); retry with backoff or lower the request rate`, 'queue_full');
  }
  if (req.caller !== undefined && req.priority !== 'shadow' && contended(queueAhead(req, s), limit)) {
    const callers = s.callers ?? 1;
    const share = callerShare(limit, callers);
    const held = s.callerQueued ?? 0;
    if (held >= share) {
      return new OverloadedError(
        `the model's queue is contended and this caller already has ${held} requests waiting, its share of ${limit} places among ${callers} callers; ` +
          'wait for its responses before sending more, or retry with backoff',
        'queue_full',
      );
    }
  }
  if (req.deadline <= s.now) return new DeadlineExceededError(`the request ${deadlineName(req.deadlineSource)} had already passed when it was admitted`);
  const earliest = earliestFinish(req, s);
  if (earliest > req.deadline) {
    const needed = Math.ceil(earliest - req.receivedAt);
    const allowed = Math.floor(req.deadline - req.receivedAt);
    return new DeadlineExceededError(
      req.deadlineSource === 'budget'
        ? `the strict latency budget cannot be met: about ${needed} ms are needed under the current load, the budget is ${allowed} ms; ${STRICT_BUDGET_ADVICE}`
        : `the deadline cannot be met: about ${needed} ms are needed under the current load, the deadline allows ${allowed} ms; raise the deadline or lower action_steps`,
    );
  }
  return undefined;
}
