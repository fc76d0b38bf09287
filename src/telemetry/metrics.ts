/**
 * Serving metrics through the OpenTelemetry metrics SDK, exposed for Prometheus at `/metrics`
 * (docs/operations.md, "Metrics"). Instrument names are the Prometheus names: this exporter line adds
 * `_total` to monotonic counters and no unit suffix, so `dust_requests` is scraped as `dust_requests_total`
 * and `dust_request_duration_seconds` as itself. Durations are in seconds.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Attributes, Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { bearerTokenOf } from '../config/index.js';
import type { BatchReport } from './observed.js';
import { RenderCache } from './render-cache.js';
import { SERVICE_NAME, SERVICE_VERSION } from './service.js';

export const METRICS_PATH = '/metrics';
/**
 * Age up to which a rendered `/metrics` text is served again. Rendering runs on the event loop that serves
 * gRPC; scrapers ask every few seconds at most, so a second-old answer costs them nothing and bounds what a
 * flood of scrapes can take from the event loop.
 */
export const METRICS_MAX_AGE_MS = 1000;
/** Open connections to the metrics port; Prometheus keeps one per target and scraper. */
export const METRICS_MAX_CONNECTIONS = 64;
/** A scraper that has not sent its request's headers by then is disconnected. */
export const METRICS_HEADERS_TIMEOUT_MS = 10_000;

/** Each executor call's wall time, observed once per part (docs/operations.md, "Metrics"). */
export const BATCH_DURATION_METRIC = 'dust_batch_duration_seconds';
/** Its parts: inside ONNX Runtime, in the executor around it, and the rest of the call on the inference thread. */
export const BATCH_PARTS = ['run', 'host', 'wait'] as const;
export type BatchPart = (typeof BATCH_PARTS)[number];

/** Latency buckets in seconds: 1 ms to 10 s, roughly 1-2-5 per decade. */
export const SECONDS_BUCKETS: readonly number[] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
/** Batch sizes and step counts: powers of two up to the largest configurable arena. */
export const COUNT_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/** World-model surprise is 1 - cosine similarity, in [0, 2]. */
export const SURPRISE_BUCKETS: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2];

export interface ModelLabels {
  readonly model: string;
  readonly version: string;
}

/** What one served Predict reported (its PredictResponse), in metric units. */
export interface ServedPredict extends ModelLabels {
  readonly queueSeconds: number;
  readonly visionSteps: number;
  /** True when the request had a latency budget and missed it. */
  readonly budgetMissed: boolean;
  readonly surprise: number | undefined;
}

/** Reasons of dust_rejected_total, exported at 0 from the start so that rate() and increase() see the first one. */
export const REJECT_REASONS: readonly string[] = ['rate_limited', 'queue_full', 'unavailable', 'too_many_calls'];

/** The instruments, with one method per event the server reports. */
export class ServingMetrics {
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private readonly queue: Histogram;
  private readonly vlmBatch: Histogram;
  private readonly denoiseBatch: Histogram;
  private readonly batchDuration: Histogram;
  private readonly visionSteps: Histogram;
  private readonly budgetMiss: Counter;
  private readonly inflight: UpDownCounter;
  private readonly rejected: Counter;
  private readonly loadFailures: Counter;
  private readonly surprise: Histogram;

  constructor(meter: Meter) {
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: [...SECONDS_BUCKETS] } };
    const counts = { advice: { explicitBucketBoundaries: [...COUNT_BUCKETS] } };
    this.requests = meter.createCounter('dust_requests', {
      description: 'Requests finished, by method and gRPC code (a StreamPredict request is one message on the stream)',
    });
    this.duration = meter.createHistogram('dust_request_duration_seconds', {
      description: 'Time from receiving a request to sending its response, served requests',
      ...seconds,
    });
    this.queue = meter.createHistogram('dust_queue_duration_seconds', {
      description: 'Time from receiving a request to its VLM batch starting (queue_ms)',
      ...seconds,
    });
    this.vlmBatch = meter.createHistogram('dust_vlm_batch_size', { description: 'Requests per VLM call', ...counts });
    this.denoiseBatch = meter.createHistogram('dust_denoise_batch_size', { description: 'Rows per denoiser call', ...counts });
    this.batchDuration = meter.createHistogram(BATCH_DURATION_METRIC, {
      description:
        'Wall time of each VLM call and denoiser step (stage), in three parts: inside ONNX Runtime (run), the executor around it (host), the inference thread elsewhere (wait)',
      ...seconds,
    });
    this.visionSteps = meter.createHistogram('dust_vision_steps', { description: 'Vision steps N_o used per served request', ...counts });
    this.budgetMiss = meter.createCounter('dust_budget_miss', { description: 'Served requests that had a latency budget and missed it' });
    this.inflight = meter.createUpDownCounter('dust_inflight_requests', { description: 'Requests received and not yet answered' });
    this.rejected = meter.createCounter('dust_rejected', {
      description:
        'Requests refused before being served: rate_limited, queue_full, too_many_calls (RESOURCE_EXHAUSTED), unavailable (draining, version not READY)',
    });
    this.loadFailures = meter.createCounter('dust_model_load_failures', { description: 'Model versions that failed to load' });
    this.surprise = meter.createHistogram('dust_world_model_surprise', {
      description: 'World-model surprise (1 - cosine of predicted and observed embedding) of served requests',
      advice: { explicitBucketBoundaries: [...SURPRISE_BUCKETS] },
    });
    for (const reason of REJECT_REASONS) this.rejected.add(0, { reason });
  }

  /** A model version appeared (loading): its counters start at 0, so alerts on increase() see the first event. */
  modelSeen(model: ModelLabels): void {
    const labels: Attributes = { model: model.model, version: model.version };
    this.loadFailures.add(0, labels);
    this.budgetMiss.add(0, labels);
  }

  requestFinished(method: string, code: string, model: ModelLabels, seconds?: number): void {
    const labels: Attributes = { method, model: model.model, version: model.version };
    this.requests.add(1, { ...labels, code });
    if (seconds !== undefined) this.duration.record(seconds, labels);
  }

  predictServed(p: ServedPredict): void {
    const labels: Attributes = { model: p.model, version: p.version };
    this.queue.record(p.queueSeconds, labels);
    this.visionSteps.record(p.visionSteps, labels);
    if (p.budgetMissed) this.budgetMiss.add(1, labels);
    if (p.surprise !== undefined && Number.isFinite(p.surprise)) this.surprise.record(p.surprise, labels);
  }

  inflightChanged(method: string, delta: number): void {
    this.inflight.add(delta, { method });
  }

  requestRejected(reason: string): void {
    this.rejected.add(1, { reason });
  }

  batchRan(report: BatchReport, model: ModelLabels): void {
    const labels: Attributes = { model: model.model, version: model.version };
    (report.stage === 'vlm' ? this.vlmBatch : this.denoiseBatch).record(report.rows, labels);
    const { timing } = report;
    if (timing === undefined) return;
    const wallMs = report.endEpochMs - report.startEpochMs;
    const parts: Record<BatchPart, number> = { run: timing.runMs, host: timing.hostMs, wait: Math.max(0, wallMs - timing.runMs - timing.hostMs) };
    for (const part of BATCH_PARTS) this.batchDuration.record(parts[part] / 1000, { ...labels, stage: report.stage, part });
  }

  modelLoadFailed(model: ModelLabels): void {
    this.loadFailures.add(1, { model: model.model, version: model.version });
  }
}

export interface MetricsEndpoint {
  readonly metrics: ServingMetrics;
  /** The port `/metrics` listens on. */
  readonly port: number;
  shutdown(): Promise<void>;
}

export interface MetricsEndpointOptions {
  readonly host: string;
  readonly port: number;
  /** When set, `/metrics` answers only requests with `authorization: Bearer <token>`. */
  readonly token?: string;
  /** @default METRICS_MAX_AGE_MS */
  readonly maxAgeMs?: number;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether the request carries the bearer token; digests compared in constant time, as for gRPC tokens. */
function authorized(req: IncomingMessage, expected: Buffer | undefined): boolean {
  if (!expected) return true;
  const token = bearerTokenOf(req.headers.authorization);
  return token !== undefined && timingSafeEqual(sha256(token), expected);
}

/**
 * The MeterProvider with a Prometheus reader, served by our own HTTP server on host:port (the exporter's
 * built-in server cannot bind port 0 nor report a bind failure to its caller). The text is rendered at most
 * once per METRICS_MAX_AGE_MS and shared by concurrent scrapes (render-cache.ts).
 */
export async function startMetrics(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE_NAME, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }),
    readers: [exporter],
  });
  // The exporter's own settings: no prefix, no timestamps, target_info kept, no otel_scope labels.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const rendered = new RenderCache(
    async () => {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    options.maxAgeMs ?? METRICS_MAX_AGE_MS,
    () => performance.now(),
  );
  const token = options.token ? sha256(options.token) : undefined;
  const server: Server = createServer({ headersTimeout: METRICS_HEADERS_TIMEOUT_MS, requestTimeout: METRICS_HEADERS_TIMEOUT_MS }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.statusCode = 404;
      res.end(`only GET ${METRICS_PATH} is served here\n`);
      return;
    }
    if (!authorized(req, token)) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Bearer');
      res.end('this endpoint needs "authorization: Bearer <metrics token>"\n');
      return;
    }
    rendered.get().then(
      (text) => {
        res.statusCode = 200;
        res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
        res.end(text);
      },
      (err: unknown) => {
        res.statusCode = 500;
        res.end(`# failed to export metrics: ${(err as Error)?.message ?? String(err)}\n`);
      },
    );
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    metrics: new ServingMetrics(provider.getMeter(SERVICE_NAME, SERVICE_VERSION)),
    port: (server.address() as AddressInfo).port,
    async shutdown() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await provider.shutdown();
    },
  };
}
