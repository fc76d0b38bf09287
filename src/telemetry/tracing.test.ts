import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { AlwaysOffSampler, SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { LinkedRootSampler, tracingSettings } from './tracing.js';

describe('tracingSettings', () => {
  it('stays off unless an exporter is configured, or when disabled', () => {
    expect(tracingSettings({})).toBeUndefined();
    expect(tracingSettings({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  });

  it('turns on with an OTLP endpoint, with the specification defaults', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({
      exporter: 'otlp',
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      ratio: 1,
    });
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })?.exporter).toBe('otlp');
    expect(tracingSettings({ OTEL_TRACES_EXPORTER: 'console' })?.exporter).toBe('console');
  });

  it('reads the protocol (traces-specific first) and the sampler', () => {
    const s = tracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    expect(s).toEqual({ exporter: 'otlp', protocol: 'grpc', sampler: 'parentbased_traceidratio', ratio: 0.25 });
  });

  it('refuses values it cannot honour, naming the variable', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(() => tracingSettings({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL=thrift/);
    expect(() => tracingSettings({ ...endpoint, OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER=sometimes/);
    expect(() => tracingSettings({ ...endpoint, OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG=2/);
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER=zipkin/);
  });
});

describe('LinkedRootSampler', () => {
  const sampled = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED };
  const unsampled = { ...sampled, traceFlags: TraceFlags.NONE };
  const sampler = new LinkedRootSampler(new AlwaysOffSampler());
  const decide = (ctx = ROOT_CONTEXT, links: Array<{ context: typeof sampled }> = []) =>
    sampler.shouldSample(ctx, 'c'.repeat(32), 'span', SpanKind.INTERNAL, {}, links).decision;

  it('samples a root that links to a sampled span', () => {
    expect(decide(ROOT_CONTEXT, [{ context: unsampled }, { context: sampled }])).toBe(SamplingDecision.RECORD_AND_SAMPLED);
  });

  it('leaves everything else to the configured sampler', () => {
    expect(decide(ROOT_CONTEXT, [{ context: unsampled }])).toBe(SamplingDecision.NOT_RECORD);
    expect(decide()).toBe(SamplingDecision.NOT_RECORD);
    // A child follows its sampler, links or not.
    expect(decide(trace.setSpanContext(ROOT_CONTEXT, unsampled), [{ context: sampled }])).toBe(SamplingDecision.NOT_RECORD);
  });
});
