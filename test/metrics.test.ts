/**
 * The Prometheus endpoint of the real server: after real traffic, `/metrics` exposes the operations
 * list of docs/operations.md under its exact names and types, with model/version labels and the values the
 * traffic implies. A repository with a broken version 2 counts one model load failure. Prometheus itself scraping
 * it is test/prometheus.test.ts (system tier).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import { serveWithTraffic, type ServerWithTraffic } from './support/metrics-traffic.js';
import { parseExposition, SPEC_COUNTERS, SPEC_GAUGES, SPEC_HISTOGRAMS, type Sample } from './support/prometheus.js';

async function scrape(port: number): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

let metricsPort: number;
let served: readonly PredictResponse__Output[] = [];
let traffic: ServerWithTraffic | undefined;

beforeAll(async () => {
  traffic = await serveWithTraffic();
  ({ metricsPort, served } = traffic);
});
afterAll(async () => {
  await traffic?.close();
});

describe('/metrics', () => {
  it('exposes every metric of the operations surface by its exact name and type', async () => {
    const { samples, types } = await scrape(metricsPort);
    for (const c of SPEC_COUNTERS) expect(types.get(c), c).toBe('counter');
    for (const g of SPEC_GAUGES) expect(types.get(g), g).toBe('gauge');
    for (const h of SPEC_HISTOGRAMS) {
      expect(types.get(h), h).toBe('histogram');
      for (const suffix of ['_bucket', '_sum', '_count'])
        expect(
          samples.some((s) => s.name === h + suffix),
          h + suffix,
        ).toBe(true);
    }
    // Latency buckets span 1 ms to 10 s, in seconds.
    const les = samples.filter((s) => s.name === 'dust_request_duration_seconds_bucket').map((s) => s.labels.le);
    expect(les).toContain('0.001');
    expect(les).toContain('10');
    expect(les).toContain('+Inf');
  });

  it('counts what the traffic did, by method, code, model and version', async () => {
    const { samples } = await scrape(metricsPort);
    const tiny = { model: 'dust-tiny', version: '1' };
    expect(value(samples, 'dust_requests_total', { method: 'Predict', code: 'OK', ...tiny })).toBe(2);
    expect(value(samples, 'dust_requests_total', { method: 'StreamPredict', code: 'OK', ...tiny })).toBe(2);
    expect(value(samples, 'dust_requests_total', { method: 'Predict', code: 'INVALID_ARGUMENT', ...tiny })).toBe(1);
    expect(value(samples, 'dust_request_duration_seconds_count', { method: 'Predict', ...tiny })).toBe(2);
    expect(value(samples, 'dust_queue_duration_seconds_count', tiny)).toBe(4);
    expect(value(samples, 'dust_inflight_requests', { method: 'Predict' })).toBe(0);
    expect(value(samples, 'dust_inflight_requests', { method: 'StreamPredict' })).toBe(0);
    // N_o of every served request, summed.
    expect(value(samples, 'dust_vision_steps_sum', tiny)).toBe(served.reduce((n, r) => n + r.sampling!.vision_steps, 0));
    const missed = served.filter((r) => r.sampling!.budget_ms > 0 && !r.sampling!.budget_met).length;
    expect(missed).toBe(1);
    expect(value(samples, 'dust_budget_miss_total', tiny)).toBe(missed);
    expect(value(samples, 'dust_world_model_surprise_count', tiny)).toBe(1);
    // Per executor call: every request ran in a VLM call and in denoiser calls.
    expect(value(samples, 'dust_vlm_batch_size_sum', tiny)).toBe(4);
    expect(value(samples, 'dust_denoise_batch_size_sum', tiny)).toBe(served.reduce((n, r) => n + r.sampling!.vision_steps, 0));
    // Each call's wall time in its three parts, one observation per part and call; ONNX Runtime took some of it.
    for (const [stage, sizes] of [
      ['vlm', 'dust_vlm_batch_size_count'],
      ['denoise', 'dust_denoise_batch_size_count'],
    ] as const) {
      const calls = value(samples, sizes, tiny);
      expect(calls).toBeGreaterThan(0);
      for (const part of ['run', 'host', 'wait'])
        expect(value(samples, 'dust_batch_duration_seconds_count', { ...tiny, stage, part }), `${stage} ${part}`).toBe(calls);
      expect(value(samples, 'dust_batch_duration_seconds_sum', { ...tiny, stage, part: 'run' })).toBeGreaterThan(0);
    }
    expect(value(samples, 'dust_model_load_failures_total', { model: 'dust-tiny', version: '2' })).toBe(1);
    expect(value(samples, 'dust_model_load_failures_total', tiny)).toBe(0);
    expect(value(samples, 'dust_rejected_total', { reason: 'queue_full' })).toBe(0);
    // Health checks are not requests.
    expect(samples.some((s) => s.labels.method === 'Check')).toBe(false);
  });

  it('answers 404 off /metrics', async () => {
    expect((await fetch(`http://127.0.0.1:${metricsPort}/`)).status).toBe(404);
  });
});
