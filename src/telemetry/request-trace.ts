/**
 * Engine spans. A request's `dust.predict` span (child of the RPC's server span) gets its stages as
 * children: preprocess, queue, vlm and denoise, built after the fact from the timings the engine returns,
 * with explicit start and end times (the batches run in the inference worker thread, the SDK lives here).
 * Every executor call becomes one root span, `dust.vlm_batch` or `dust.denoise_step`, linked to the
 * `dust.predict` span of every request it served (OTel's model for batch work).
 */
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { BatchReport, ServedRequest } from './observed.js';
import { traceNow, traceTime } from './trace-clock.js';

/** Longest client-sent string recorded as an attribute (ids are short; a hostile client's are cut). */
export const MAX_ATTRIBUTE_CHARS = 128;

export interface RequestAttributes {
  readonly requestId: string;
  readonly robotId: string;
  readonly episodeId: string;
}

export interface ModelVersion {
  readonly name: string;
  readonly version: number;
}

export interface RequestSpan {
  /** The link target the engine hands back in batch reports (JobInput.traceTag); undefined when not sampled. */
  readonly tag: unknown;
  served(model: ModelVersion, out: ServedRequest): void;
  failed(err: unknown): void;
}

export interface RequestTracer {
  /** Starts a request's span under the active context; `receivedAt` is its performance.now() arrival. */
  start(attrs: RequestAttributes, receivedAt: number): RequestSpan;
  /** Creates the batch spans of one model version's executor calls. */
  batches(model: ModelVersion, reports: readonly BatchReport[]): void;
}

const NOOP_SPAN: RequestSpan = { tag: undefined, served() {}, failed() {} };

/** Tracing off: nothing is created, no tag reaches the engine. */
export const NOOP_REQUEST_TRACER: RequestTracer = { start: () => NOOP_SPAN, batches() {} };

const cut = (s: string) => (s.length > MAX_ATTRIBUTE_CHARS ? s.slice(0, MAX_ATTRIBUTE_CHARS) : s);

function isSampledSpanContext(tag: unknown): tag is SpanContext {
  return typeof tag === 'object' && tag !== null && 'traceId' in tag && ((tag as SpanContext).traceFlags & TraceFlags.SAMPLED) !== 0;
}

function modelAttributes(model: ModelVersion): Attributes {
  return { 'dust.model': model.name, 'dust.model_version': model.version };
}

export function requestTracer(tracer: Tracer): RequestTracer {
  /** A stage span inside its parent: it starts no earlier than `start` and ends no later than `parentEnd`. */
  function stage(parent: Span, name: string, start: number, end: number, parentEnd: number, attributes: Attributes = {}): void {
    const ctx = trace.setSpan(context.active(), parent);
    const from = Math.min(start, parentEnd);
    tracer.startSpan(name, { startTime: traceTime(from), attributes }, ctx).end(traceTime(Math.min(Math.max(from, end), parentEnd)));
  }

  function recordStages(span: Span, receivedAt: number, endedAt: number, model: ModelVersion, out: ServedRequest): void {
    const t = out.timing;
    const s = out.sampling;
    span.setAttributes({
      'dust.request_id': cut(out.requestId),
      ...modelAttributes(model),
      'dust.action_steps': s.actionSteps,
      'dust.vision_steps': s.visionSteps,
      ...(s.budgetMs > 0 ? { 'dust.budget_ms': s.budgetMs, 'dust.budget_met': s.budgetMet } : {}),
    });
    // queueMs counts from receipt (it includes preprocessing); the stages tile the request's time.
    const preprocessed = receivedAt + t.preprocessMs;
    const vlmStart = receivedAt + Math.max(t.queueMs, t.preprocessMs);
    const vlmEnd = vlmStart + t.vlmMs;
    stage(span, 'dust.preprocess', receivedAt, preprocessed, endedAt);
    stage(span, 'dust.queue', preprocessed, vlmStart, endedAt);
    stage(span, 'dust.vlm', vlmStart, vlmEnd, endedAt, { 'dust.batch_size': t.vlmBatchSize });
    stage(span, 'dust.denoise', vlmEnd, receivedAt + t.totalMs, endedAt, { 'dust.vision_steps': s.visionSteps, 'dust.mean_batch_size': t.meanDenoiseBatch });
  }

  return {
    start(attrs, receivedAt) {
      const span = tracer.startSpan('dust.predict', {
        kind: SpanKind.INTERNAL,
        startTime: traceTime(receivedAt),
        attributes: {
          ...(attrs.requestId ? { 'dust.request_id': cut(attrs.requestId) } : {}),
          'dust.robot_id': cut(attrs.robotId),
          ...(attrs.episodeId ? { 'dust.episode_id': cut(attrs.episodeId) } : {}),
        },
      });
      const sc = span.spanContext();
      return {
        tag: isSampledSpanContext(sc) ? sc : undefined,
        served(model, out) {
          const endedAt = performance.now();
          if (span.isRecording()) recordStages(span, receivedAt, endedAt, model, out);
          span.end(traceTime(endedAt));
        },
        failed(err) {
          if (span.isRecording()) {
            span.recordException(err instanceof Error ? err : String(err), traceNow());
            span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
          }
          span.end(traceNow());
        },
      };
    },

    batches(model, reports) {
      for (const r of reports) {
        const links: Link[] = [];
        for (const m of r.members) if (isSampledSpanContext(m.tag)) links.push({ context: m.tag, attributes: { 'dust.step': m.step } });
        // A batch that served no sampled request would be a span nobody can reach from a trace.
        if (links.length === 0) continue;
        const span = tracer.startSpan(r.stage === 'vlm' ? 'dust.vlm_batch' : 'dust.denoise_step', {
          root: true,
          kind: SpanKind.INTERNAL,
          startTime: r.startEpochMs,
          links,
          attributes: {
            ...modelAttributes(model),
            'dust.batch_size': r.rows,
            ...(r.timing && { 'dust.run_ms': r.timing.runMs, 'dust.host_ms': r.timing.hostMs }),
          },
        });
        if (r.error) span.setStatus({ code: SpanStatusCode.ERROR, message: r.error });
        span.end(r.endEpochMs);
      }
    },
  };
}
