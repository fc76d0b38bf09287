/**
 * PolicyService handlers (docs/api.md): Predict, StreamPredict, ListModels, ReportOutcome. The Predict handlers
 * own the call (cancellation, stream order, back-pressure) and run each request through the stages of
 * predict-orchestrator.ts; outcomes are credited by the experiment book; errors go through status.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import type { ModelRuntime } from '../engine/index.js';
import { InvalidArgumentError, NotFoundError, quote } from '../errors/index.js';
import type { Assignment, ExperimentBook } from '../experiment/index.js';
import type { ListModelsResponse } from '@dust-serve/client/gen/dust/serving/v1/ListModelsResponse';
import type { ModelVersionInfo } from '@dust-serve/client/gen/dust/serving/v1/ModelVersionInfo';
import type { PolicyServiceHandlers } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { ModelRegistry } from '../model/index.js';
import { currentCallScope, type Logger } from '../telemetry/index.js';
import type { CallContext, PredictOrchestrator } from './predict-orchestrator.js';
import { RefusedMessage } from './request-limits.js';
import type { Routed } from './router.js';
import { isInternal, toServiceError } from './status.js';

/** Requests of one stream processed concurrently; responses still go out in request order. */
export const DEFAULT_STREAM_PIPELINE_DEPTH = 8;

export interface PolicyServiceDeps {
  readonly registry: ModelRegistry<ModelRuntime>;
  readonly orchestrator: PredictOrchestrator;
  readonly book: ExperimentBook;
  readonly log: Logger;
  /**
   * The key of the credential a call's metadata carries, if any: the caller of its requests for the fair share
   * of a contended queue. Without one (no tokens file) a request's caller is its robot_id.
   */
  readonly credentialOf?: (metadata: grpc.Metadata) => string | undefined;
}

/** The client's deadline on the performance.now() clock the engine uses. */
function deadlineOf(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline'>): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  if (!Number.isFinite(ms)) return Infinity;
  return performance.now() + (ms - Date.now());
}

/** What a call gives each of its requests: its deadline, its cancellation and its credential. */
function callContext(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline'>, signal: AbortSignal, credential: string | undefined): CallContext {
  return { deadline: deadlineOf(call), signal, credential };
}

export function policyService({ registry, orchestrator, book, log, credentialOf }: PolicyServiceDeps): PolicyServiceHandlers {
  const credentialKeyOf = (call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata'>): string | undefined => credentialOf?.(call.metadata);

  function logFailure(err: unknown, req: PredictRequest__Output | undefined): void {
    currentCallScope()?.failedWith(err);
    if (isInternal(err)) log.error({ err, requestId: req?.request_id, robotId: req?.robot_id }, 'request failed');
    else log.debug({ err: (err as Error).message, requestId: req?.request_id }, 'request refused');
  }

  return {
    Predict(call, callback) {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      const req = call.request;
      let result: Promise<PredictResponse>;
      try {
        const routed = orchestrator.admit(req.model, req.robot_id, req.episode_id);
        currentCallScope()?.setModel(routed.assignment.model, routed.assignment.version);
        result = orchestrator.serve(req, routed, callContext(call, abort.signal, credentialKeyOf(call)));
      } catch (err) {
        result = Promise.reject(err);
      }
      result
        .then(
          (res) => callback(null, res),
          (err) => {
            logFailure(err, req);
            callback(toServiceError(err, req.request_id));
          },
        )
        .catch((err) => log.error({ err }, 'could not answer a Predict call'));
    },

    StreamPredict(call) {
      const abort = new AbortController();
      const credential = credentialKeyOf(call);
      let assignment: Assignment | undefined;
      let streamModel: string | undefined;
      // closing: a failure is queued, so no further request is taken and nothing else may end the stream.
      // done: the stream's status is sent (or the client went away).
      let closing = false;
      let done = false;
      let inputEnded = false;
      // Responses leave in request order: each request's step is chained behind its predecessor's; so is a
      // failure, so the responses of the requests before a bad one still go out (test/hostile-input.test.ts).
      let tail: Promise<void> = Promise.resolve();
      let inFlight = 0;

      const sendError = (err: unknown, req?: PredictRequest__Output) => {
        if (done) return;
        done = true;
        closing = true;
        abort.abort();
        logFailure(err, req);
        call.emit('error', toServiceError(err, req?.request_id));
      };
      const inOrder = (step: () => Promise<void> | void) => {
        tail = tail
          .then(step)
          .catch((err) => sendError(err))
          .catch((err) => log.error({ err }, 'could not end a StreamPredict call'));
      };
      const failAfterEarlier = (err: unknown, req?: PredictRequest__Output) => {
        if (closing) return;
        closing = true;
        inOrder(() => sendError(err, req));
      };
      const maybeEnd = () => {
        if (inputEnded && inFlight === 0 && !closing && !done) {
          done = true;
          call.end();
        }
      };

      call.on('cancelled', () => {
        done = true;
        closing = true;
        abort.abort();
      });
      call.on('data', (message: PredictRequest__Output | RefusedMessage) => {
        if (closing) return;
        if (message instanceof RefusedMessage) {
          failAfterEarlier(message.error);
          return;
        }
        const req = message;
        let result: Promise<PredictResponse>;
        try {
          // The model version is fixed for the stream's life (docs/api.md): the first request is routed
          // (pin or split), the others run on the same version.
          let routed: Routed;
          if (!assignment) {
            routed = orchestrator.admit(req.model, req.robot_id, req.episode_id);
            assignment = routed.assignment;
            streamModel = req.model;
            currentCallScope()?.setModel(assignment.model, assignment.version);
          } else if (req.model && req.model !== streamModel && req.model !== `${assignment.model}@${assignment.version}`) {
            throw new InvalidArgumentError(
              `this stream is bound to ${assignment.model}@${assignment.version}; request ${quote(req.request_id || '(no id)')} asks for ${quote(req.model)}: open a new stream to change models`,
            );
          } else {
            routed = orchestrator.admitAgain(assignment);
          }
          result = orchestrator.serve(req, routed, callContext(call, abort.signal, credential));
        } catch (err) {
          failAfterEarlier(err, req);
          return;
        }
        result.catch(() => undefined);
        inFlight++;
        if (inFlight >= DEFAULT_STREAM_PIPELINE_DEPTH) call.pause();
        inOrder(async () => {
          try {
            const res = await result;
            if (!done) call.write(res);
          } catch (err) {
            sendError(err, req);
          } finally {
            inFlight--;
            if (inFlight < DEFAULT_STREAM_PIPELINE_DEPTH) call.resume();
            maybeEnd();
          }
        });
      });
      call.on('end', () => {
        inputEnded = true;
        inOrder(maybeEnd);
      });
    },

    ListModels(_call, callback) {
      const models: ModelVersionInfo[] = registry.list().map((e) => {
        const m = e.manifest;
        return {
          name: e.name,
          version: e.version,
          state: `MODEL_STATE_${e.state}`,
          reason: e.reason ?? '',
          embodiments: m
            ? Object.entries(m.embodiments).map(([name, emb]) => ({ name, id: emb.id, state_dim: emb.state_dim, action_dim: emb.action_dim }))
            : [],
          cameras: m ? [...m.cameras] : [],
          image_height: m?.image.height ?? 0,
          image_width: m?.image.width ?? 0,
          action_horizon: m?.action.horizon ?? 0,
          future_tokens: m?.future.tokens ?? 0,
          future_dim: m?.future.dim ?? 0,
          default_action_steps: m?.sampling.action_steps ?? 0,
          default_vision_steps: m?.sampling.vision_steps ?? 0,
          max_vision_steps: m?.sampling.max_vision_steps ?? 0,
          // The share of unpinned traffic the split gives it now, among the model's READY versions.
          traffic_weight: e.state === 'READY' ? book.trafficWeight(e.name, e.version, registry.readyVersions(e.name)) : 0,
          device: e.runtime?.device ?? '',
          last_load_error: e.lastLoadError ?? '',
        };
      });
      const res: ListModelsResponse = { models, default_model: registry.defaultModelName() ?? '' };
      callback(null, res);
    },

    ReportOutcome(call, callback) {
      const { robot_id, episode_id, success } = call.request;
      if (!robot_id || !episode_id) {
        callback(toServiceError(new InvalidArgumentError('robot_id and episode_id are required to credit an outcome')));
        return;
      }
      book
        .outcome(robot_id, episode_id, success)
        .then((credit) => {
          if (credit) return credit;
          throw new NotFoundError(
            `no request of episode ${quote(episode_id)} from robot ${quote(robot_id)} was served; report outcomes with the episode_id sent in PredictRequest`,
          );
        })
        .then(
          (credit) => {
            log.debug(
              { robotId: robot_id, episodeId: episode_id, success, model: credit.model, version: credit.version, counted: credit.counted },
              'outcome credited',
            );
            callback(null, { model_name: credit.model, model_version: credit.version, counted: credit.counted });
          },
          (err: unknown) => {
            if (isInternal(err)) log.error({ err, robotId: robot_id, episodeId: episode_id }, 'could not credit an outcome');
            callback(toServiceError(err));
          },
        );
    },
  };
}
