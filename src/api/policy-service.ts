/**
 * PolicyService handlers (docs/api.md): Predict, StreamPredict, ListModels, ReportOutcome. Predict runs its
 * request through the stages of predict-orchestrator.ts; StreamPredict wires the call's events to a
 * predict-stream-session.ts session, which owns the stream's order, back-pressure and failure; outcomes are
 * credited by the experiment book; errors go through status.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import { supportedChunking, type ModelRuntime } from '../engine/index.js';
import { CHUNKING_METHOD_NAMES } from './convert.js';
import type { ExperimentBook } from '../experiment/index.js';
import type { ListModelsResponse } from '@dust-serve/client/gen/dust/serving/v1/ListModelsResponse';
import type { ModelVersionInfo } from '@dust-serve/client/gen/dust/serving/v1/ModelVersionInfo';
import type { PolicyServiceHandlers } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import type { PredictRequest__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import type { ModelRegistry } from '../model/index.js';
import { currentCallScope, type Logger } from '../telemetry/index.js';
import { creditOutcome } from './outcome.js';
import type { PredictOrchestrator } from './predict-orchestrator.js';
import { PredictStreamSession } from './predict-stream-session.js';
import type { RefusedMessage } from './request-limits.js';
import { isInternal, toServiceError } from './status.js';

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
        const prepared = orchestrator.prepare(req, routed);
        result = orchestrator.run(prepared, { deadline: deadlineOf(call), signal: abort.signal, credential: credentialKeyOf(call) });
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
      const session = new PredictStreamSession(
        orchestrator,
        {
          bound: (assignment) => currentCallScope()?.setModel(assignment.model, assignment.version),
          write: (res) => call.write(res),
          end: () => call.end(),
          fail: (err, req) => {
            logFailure(err, req);
            call.emit('error', toServiceError(err, req?.request_id));
          },
          pause: () => call.pause(),
          resume: () => call.resume(),
        },
        { deadline: deadlineOf(call), credential: credentialKeyOf(call), onBug: (err) => log.error({ err }, 'could not end a StreamPredict call') },
      );
      call.on('cancelled', () => session.cancel());
      call.on('data', (message: PredictRequest__Output | RefusedMessage) => session.accept(message));
      call.on('end', () => session.endOfInput());
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
          realtime_chunking: m ? supportedChunking(m).map((method) => CHUNKING_METHOD_NAMES[method]) : [],
        };
      });
      const res: ListModelsResponse = { models, default_model: registry.defaultModelName() ?? '' };
      callback(null, res);
    },

    ReportOutcome(call, callback) {
      const { robot_id, episode_id, success } = call.request;
      creditOutcome(book, robot_id, episode_id, success).then(
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
