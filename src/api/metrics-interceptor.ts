/**
 * Request metrics at the edge, for the dust.serving services: counts by method and code, latency, in-flight
 * requests and refusals, plus what each PredictResponse reports (queue time, N_o, budget, surprise).
 * A request is one request message: a unary call, or one message of a StreamPredict stream. Responses
 * leave in request order (docs/api.md), so the oldest unanswered request is the one a response answers.
 *
 * It opens the call's CallScope, in which the handler names the serving model version and the reason of a
 * refusal; installed inside the tracing interceptor and outside everything that may refuse a call.
 */
import * as grpc from '@grpc/grpc-js';
import { CallScope, runInCallScope, type ModelLabels, type ServingMetrics } from '../telemetry/index.js';
import type { PredictResponse } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import { splitMethodPath } from './tracing-interceptor.js';

/** The services whose calls are requests (health checks and reflection are not counted). */
export const METERED_PACKAGE = 'dust.serving.';

function isPredictResponse(message: unknown): message is PredictResponse {
  return typeof message === 'object' && message !== null && 'timing' in message && 'sampling' in message && 'model_name' in message;
}

function observeResponse(metrics: ServingMetrics, res: PredictResponse, labels: ModelLabels): void {
  const s = res.sampling;
  metrics.predictServed({
    ...labels,
    queueSeconds: Number(res.timing?.queue_ms ?? 0) / 1000,
    visionSteps: Number(s?.vision_steps ?? 0),
    budgetMissed: Number(s?.budget_ms ?? 0) > 0 && s?.budget_met === false,
    surprise: res.world_model_surprise === undefined || res.world_model_surprise === null ? undefined : Number(res.world_model_surprise),
  });
}

export function metricsInterceptor(metrics: ServingMetrics): grpc.ServerInterceptor {
  return (method, call) => {
    const [service, name] = splitMethodPath(method.path);
    if (!service.startsWith(METERED_PACKAGE)) return new grpc.ServerInterceptingCall(call);
    const scope = new CallScope();
    const scoped = (fn: () => void) => runInCallScope(scope, fn);
    /** performance.now() of each request still waiting for its response. */
    const waiting: number[] = [];
    let finished = false;

    const scopeLabels = (): ModelLabels => ({ model: scope.model, version: scope.version });
    const finish = (code: grpc.status) => {
      if (finished) return;
      finished = true;
      const pending = waiting.splice(0).length;
      if (pending > 0) metrics.inflightChanged(name, -pending);
      if (code === grpc.status.OK) return;
      // The request that ended the call gets its code; any others still waiting on a stream were cut off.
      const codeName = grpc.status[code];
      metrics.requestFinished(name, codeName, scopeLabels());
      for (let i = 1; i < pending; i++) metrics.requestFinished(name, grpc.status[grpc.status.CANCELLED], scopeLabels());
      if (code === grpc.status.RESOURCE_EXHAUSTED || code === grpc.status.UNAVAILABLE) {
        metrics.requestRejected(scope.rejectReason ?? codeName.toLowerCase());
      }
    };

    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => scoped(() => nextMetadata(metadata)))
            .withOnReceiveMessage((message, nextMessage) => {
              // A stream's messages may still arrive after its status went out (the client had sent them):
              // nothing answers them, so they are not in flight.
              if (finished) {
                scoped(() => nextMessage(message));
                return;
              }
              waiting.push(performance.now());
              metrics.inflightChanged(name, 1);
              scoped(() => nextMessage(message));
            })
            .withOnReceiveHalfClose((nextHalfClose) => scoped(nextHalfClose))
            .withOnCancel(() => finish(grpc.status.CANCELLED))
            .build(),
        ),
      sendMessage: (message, next) => {
        const receivedAt = waiting.shift();
        if (receivedAt !== undefined) {
          metrics.inflightChanged(name, -1);
          const predict = isPredictResponse(message) ? message : undefined;
          const labels = predict?.model_name ? { model: predict.model_name, version: String(predict.model_version ?? '') } : scopeLabels();
          metrics.requestFinished(name, grpc.status[grpc.status.OK], labels, (performance.now() - receivedAt) / 1000);
          if (predict) observeResponse(metrics, predict, labels);
        }
        next(message);
      },
      sendStatus: (status, next) => {
        finish(status.code);
        next(status);
      },
    });
  };
}
