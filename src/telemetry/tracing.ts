/**
 * OpenTelemetry tracing, configured only by the standard OTEL_* environment variables and off unless they
 * ask for it: with no exporter configured nothing is created, no interceptor is installed and no context
 * manager is registered, so an untraced server pays nothing.
 *
 * Read here: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp | console | none), OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (http/protobuf | http/json | grpc),
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. The SDK itself reads OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES (resource), OTEL_BSP_* (batching), OTEL_SPAN_*_LIMIT, and the exporters read
 * OTEL_EXPORTER_OTLP_*_HEADERS, _TIMEOUT, _COMPRESSION and the certificate variables.
 */
import { context, propagation, trace, TraceFlags, type Attributes, type Context, type Link, type SpanKind, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { InvalidArgumentError } from '../errors/index.js';
import { SERVICE_NAME, SERVICE_VERSION } from './service.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';
export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';

export interface TracingSettings {
  readonly exporter: 'otlp' | 'console';
  readonly protocol: OtlpProtocol;
  readonly sampler: SamplerName;
  /** The ratio of the *traceidratio samplers. */
  readonly ratio: number;
}

/** The OTel specification's default sampler. */
export const DEFAULT_SAMPLER: SamplerName = 'parentbased_always_on';
/** The OTel specification's default OTLP protocol. */
export const DEFAULT_OTLP_PROTOCOL: OtlpProtocol = 'http/protobuf';

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

type Env = Readonly<Record<string, string | undefined>>;
const value = (env: Env, name: string) => env[name]?.trim() || undefined;

/**
 * What the environment asks for; undefined when tracing stays off: no OTLP endpoint and no explicit
 * OTEL_TRACES_EXPORTER, OTEL_TRACES_EXPORTER=none, or OTEL_SDK_DISABLED=true. A value we cannot honour is an
 * error at start-up rather than a silently different setup. Pure.
 */
export function tracingSettings(env: Env): TracingSettings | undefined {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporters = (value(env, 'OTEL_TRACES_EXPORTER') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters.includes('none')) return undefined;
  const unknown = exporters.filter((e) => e !== 'otlp' && e !== 'console');
  if (unknown.length > 0 || exporters.length > 1) {
    throw new InvalidArgumentError(`OTEL_TRACES_EXPORTER=${exporters.join(',')}: dust-serve supports one of otlp, console, none`);
  }
  const endpoint = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (exporters.length === 0 && !endpoint) return undefined;
  const protocol = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? DEFAULT_OTLP_PROTOCOL;
  if (!PROTOCOLS.includes(protocol as OtlpProtocol)) {
    throw new InvalidArgumentError(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}: use one of ${PROTOCOLS.join(', ')}`);
  }
  const sampler = value(env, 'OTEL_TRACES_SAMPLER') ?? DEFAULT_SAMPLER;
  if (!SAMPLERS.includes(sampler as SamplerName)) {
    throw new InvalidArgumentError(`OTEL_TRACES_SAMPLER=${sampler}: use one of ${SAMPLERS.join(', ')}`);
  }
  const arg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  const ratio = arg === undefined ? 1 : Number(arg);
  if (!(ratio >= 0 && ratio <= 1)) throw new InvalidArgumentError(`OTEL_TRACES_SAMPLER_ARG=${arg}: a ratio in [0, 1]`);
  return { exporter: exporters[0] === 'console' ? 'console' : 'otlp', protocol: protocol as OtlpProtocol, sampler: sampler as SamplerName, ratio };
}

function baseSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/**
 * Batch spans are roots (one executor call serves many requests, each in its own trace) that link to the
 * requests they served. A root with a sampled link is sampled, so a sampled request never links into a
 * batch span that the ratio sampler dropped; everything else follows the configured sampler.
 */
export class LinkedRootSampler implements Sampler {
  constructor(private readonly delegate: Sampler) {}

  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (!trace.getSpanContext(ctx) && links.some((l) => (l.context.traceFlags & TraceFlags.SAMPLED) !== 0)) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return this.delegate.shouldSample(ctx, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `LinkedRootSampler{${this.delegate.toString()}}`;
  }
}

function exporterFor(settings: TracingSettings): SpanExporter {
  if (settings.exporter === 'console') return new ConsoleSpanExporter();
  switch (settings.protocol) {
    case 'http/json':
      return new JsonExporter();
    case 'grpc':
      return new GrpcExporter();
    case 'http/protobuf':
      return new ProtobufExporter();
  }
}

export interface Tracing {
  readonly tracer: Tracer;
  readonly settings: TracingSettings;
  /** Exports what is buffered (tests, shutdown). */
  flush(): Promise<void>;
  /** Flushes and releases the exporter; the global context manager and propagator are unset. */
  shutdown(): Promise<void>;
}

/**
 * Starts the SDK when the environment configures it (see tracingSettings); undefined otherwise. Registers
 * the AsyncLocalStorage context manager (the active span follows a call through its async work, and logs
 * pick up its ids) and the W3C trace-context propagator.
 */
export function startTracing(env: Env = process.env): Tracing | undefined {
  const settings = tracingSettings(env);
  if (!settings) return undefined;
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE_NAME, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new BasicTracerProvider({
    resource,
    sampler: new LinkedRootSampler(baseSampler(settings.sampler, settings.ratio)),
    spanProcessors: [new BatchSpanProcessor(exporterFor(settings))],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  let closed: Promise<void> | undefined;
  return {
    tracer: provider.getTracer(SERVICE_NAME, SERVICE_VERSION),
    settings,
    flush: () => provider.forceFlush(),
    shutdown() {
      closed ??= provider.shutdown().finally(() => {
        context.disable();
        propagation.disable();
      });
      return closed;
    },
  };
}
