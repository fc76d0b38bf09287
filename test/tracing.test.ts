/**
 * Traces end to end: the real server exports over OTLP (each protocol the standard variables select) to a
 * receiver in the test, which decodes what arrives. One Predict with a W3C traceparent must show up as the
 * caller's trace continued by a server span, a dust.predict span with its stages, and batch spans linked
 * to it. The sampler drops every root (ratio 0), so the batch spans arrive only because they link to a
 * sampled request, and a request without a sampled parent leaves no spans.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, traceFields, type Tracing } from '../src/telemetry/index.js';
import { predict, predictError, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { startOtlpReceiver, type OtlpProtocol, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';

const ENV_KEYS = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_SERVICE_NAME',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
];

function traceparent(): { traceId: string; parentId: string; metadata: grpc.Metadata } {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', `00-${traceId}-${parentId}-01`);
  metadata.set('tracestate', 'vendor=value');
  return { traceId, parentId, metadata };
}

const linksTo = (s: ReceivedSpan, target: ReceivedSpan) => s.links.some((l) => l.traceId === target.traceId && l.spanId === target.spanId);

describe.each<OtlpProtocol>(['http/json', 'http/protobuf', 'grpc'])('traces over OTLP %s', (protocol) => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;
  let t: TestServer;
  const logLines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    receiver = await startOtlpReceiver(protocol);
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: 'dust-serve-test',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
    });
    tracing = startTracing(process.env)!;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    t = await startTestServer({}, { tracing, log: pino({ level: 'debug', mixin: traceFields }, sink) });
  });
  afterAll(async () => {
    await t?.close();
    await tracing?.shutdown();
    await receiver?.close();
    for (const k of ENV_KEYS) delete process.env[k];
  });

  it('exports one Predict as the caller’s trace: server span, dust.predict with its stages, batch spans linked to it', async () => {
    const { traceId, parentId, metadata } = traceparent();
    const res = await predict(t.client, await validRequest({ sampling: { action_steps: 4, vision_steps: 8 } }), 30_000, metadata);
    // Another robot's request without a trace: not sampled (ratio 0), so it leaves no spans of its own.
    await predict(t.client, await validRequest({ robot_id: 'untraced' }));
    await tracing.flush();
    const visionSteps = res.sampling!.vision_steps;
    await receiver.waitFor((spans) => spans.filter((s) => s.name === 'dust.denoise_step').length >= visionSteps);

    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const server = inTrace.find((s) => s.name === 'dust.serving.v1.PolicyService/Predict')!;
    expect(server).toBeDefined();
    expect(server.parentSpanId).toBe(parentId);
    expect(server.kind).toBe(2); // SERVER
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'dust.serving.v1.PolicyService',
      'rpc.method': 'Predict',
      'rpc.grpc.status_code': 0,
      'server.address': '127.0.0.1',
      'server.port': t.server.port,
      'network.peer.address': '127.0.0.1',
    });
    expect(server.resource['service.name']).toBe('dust-serve-test');

    const request = inTrace.find((s) => s.name === 'dust.predict')!;
    expect(request.parentSpanId).toBe(server.spanId);
    expect(request.attributes).toMatchObject({
      'dust.request_id': res.request_id,
      'dust.robot_id': 'robot-1',
      'dust.model': 'dust-tiny',
      'dust.model_version': 1,
      'dust.vision_steps': visionSteps,
    });

    const stages = inTrace.filter((s) => s.parentSpanId === request.spanId).sort((a, b) => Number(a.startNs - b.startNs));
    expect(stages.map((s) => s.name)).toEqual(['dust.preprocess', 'dust.queue', 'dust.vlm', 'dust.denoise']);
    for (const s of stages) {
      expect(s.startNs).toBeGreaterThanOrEqual(request.startNs);
      expect(s.endNs).toBeLessThanOrEqual(request.endNs);
    }
    stages.slice(1).forEach((s, i) => expect(s.startNs).toBeGreaterThanOrEqual(stages[i].endNs - 1_000n)); // tiled, µs rounding

    // One VLM call and one denoiser call per step served this request; each is a root span in its own trace.
    const vlm = receiver.spans.filter((s) => s.name === 'dust.vlm_batch' && linksTo(s, request));
    expect(vlm).toHaveLength(1);
    const steps = receiver.spans.filter((s) => s.name === 'dust.denoise_step' && linksTo(s, request));
    expect(steps).toHaveLength(visionSteps);
    for (const b of [...vlm, ...steps]) {
      expect(b.parentSpanId).toBe('');
      expect(b.traceId).not.toBe(traceId);
      expect(Number(b.attributes['dust.batch_size'])).toBeGreaterThanOrEqual(1);
      // The call's time inside ONNX Runtime and around it, within the span's own duration.
      const [runMs, hostMs] = [Number(b.attributes['dust.run_ms']), Number(b.attributes['dust.host_ms'])];
      expect(runMs).toBeGreaterThan(0);
      expect(hostMs).toBeGreaterThanOrEqual(0);
      expect(runMs + hostMs).toBeLessThanOrEqual(Number(b.endNs - b.startNs) / 1e6 + 0.01);
    }
    const stepIndexes = steps.map((s) => s.links.find((l) => l.spanId === request.spanId)!.attributes['dust.step']).sort((a, b) => Number(a) - Number(b));
    expect(stepIndexes).toEqual(Array.from({ length: visionSteps }, (_, i) => i));
    // The untraced request appears nowhere: no spans and no links.
    expect(receiver.spans.filter((s) => s.attributes['dust.robot_id'] === 'untraced')).toEqual([]);
    const requests = new Set(receiver.spans.filter((s) => s.name === 'dust.predict').map((s) => s.spanId));
    expect(receiver.spans.flatMap((s) => s.links).every((l) => requests.has(l.spanId))).toBe(true);

    // Logs written while serving the call carry its trace id.
    const access = logLines.filter((l) => l.msg === 'call' && l.method === '/dust.serving.v1.PolicyService/Predict' && l.trace_id === traceId);
    expect(access).toHaveLength(1);
    expect(access[0].span_id).toBe(server.spanId);
  });

  it('gives a stream one server span and each of its requests a dust.predict span under it', async () => {
    const { traceId, metadata } = traceparent();
    const requests = [await validRequest({ request_id: 'first' }), await validRequest({ request_id: 'second' })];
    await new Promise<void>((resolve, reject) => {
      const call = t.client.StreamPredict(metadata);
      call.on('data', () => undefined);
      call.on('error', reject);
      call.on('end', resolve);
      for (const r of requests) call.write(r);
      call.end();
    });
    await tracing.flush();
    await receiver.waitFor((spans) => spans.filter((s) => s.traceId === traceId && s.name === 'dust.predict').length === 2);
    const server = receiver.spans.filter((s) => s.traceId === traceId && s.kind === 2);
    expect(server.map((s) => s.name)).toEqual(['dust.serving.v1.PolicyService/StreamPredict']);
    const perRequest = receiver.spans.filter((s) => s.traceId === traceId && s.name === 'dust.predict');
    expect(perRequest.every((s) => s.parentSpanId === server[0].spanId)).toBe(true);
    expect(perRequest.map((s) => s.attributes['dust.request_id']).sort()).toEqual(['first', 'second']);
  });

  it('keeps every child span inside its parent, for many concurrent requests', async () => {
    // Concurrent traced requests keep the event loop and the inference thread busy, so spans end within
    // microseconds of their parents: children timed on another clock than their parent end after it.
    const traces = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const { traceId, metadata } = traceparent();
        await predict(t.client, await validRequest({ robot_id: `nested-${i}`, sampling: { action_steps: 2, vision_steps: 4 } }), 30_000, metadata);
        return traceId;
      }),
    );
    await tracing.flush();
    const ids = new Set(traces);
    // Server span, dust.predict and its four stages per trace.
    await receiver.waitFor((spans) => spans.filter((s) => ids.has(s.traceId)).length >= traces.length * 6);
    const spans = receiver.spans.filter((s) => ids.has(s.traceId));
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const outside: string[] = [];
    for (const s of spans) {
      const parent = byId.get(s.parentSpanId);
      if (!parent) continue;
      if (s.startNs < parent.startNs || s.endNs > parent.endNs) {
        outside.push(`${s.name} [${s.startNs}, ${s.endNs}] outside ${parent.name} [${parent.startNs}, ${parent.endNs}]`);
      }
    }
    expect(spans.filter((s) => byId.has(s.parentSpanId)).length).toBeGreaterThanOrEqual(traces.length * 5);
    expect(outside).toEqual([]);
  });

  it('marks a client error on the server span by code, without an error status', async () => {
    const { traceId, metadata } = traceparent();
    const err = await predictError(t.client, await validRequest({ embodiment: '' }), 30_000, metadata);
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    await tracing.flush();
    await receiver.waitFor((spans) => spans.some((s) => s.traceId === traceId && s.kind === 2));
    const server = receiver.spans.find((s) => s.traceId === traceId && s.kind === 2)!;
    expect(server.attributes['rpc.grpc.status_code']).toBe(grpc.status.INVALID_ARGUMENT);
    expect(server.statusCode).toBe(0);
    const request = receiver.spans.find((s) => s.traceId === traceId && s.name === 'dust.predict')!;
    expect(request.statusCode).toBe(2);
  });
});
