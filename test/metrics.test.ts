/**
 * The Prometheus endpoint of the real server: after real traffic, `/metrics` exposes the operations
 * list of docs/operations.md under its exact names and types, with model/version labels and the values the
 * traffic implies; Debian's Prometheus scrapes it, loads the alert rules, and its HTTP API returns the
 * series. A repository with a broken version 2 counts one model load failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/model/index.js';
import type { PredictResponse__Output } from '../src/gen/dust/serving/v1/PredictResponse.js';
import { freePort, predict, predictError, startTestServer, tempRepository, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { NO_PROMETHEUS, parseExposition, PROMETHEUS, SPEC_COUNTERS, SPEC_GAUGES, SPEC_HISTOGRAMS, type Sample } from './support/prometheus.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;

async function scrape(port: number): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

function stream(t: TestServer, requests: Awaited<ReturnType<typeof validRequest>>[]): Promise<PredictResponse__Output[]> {
  return new Promise((resolve, reject) => {
    const out: PredictResponse__Output[] = [];
    const call = t.client.StreamPredict();
    call.on('data', (r: PredictResponse__Output) => out.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const r of requests) call.write(r);
    call.end();
  });
}

let t: TestServer;
let repo: ReturnType<typeof tempRepository>;
let metricsPort: number;
const served: PredictResponse__Output[] = [];

beforeAll(async () => {
  repo = tempRepository([
    { from: TINY_DIR, name: 'dust-tiny', version: 1 },
    { from: TINY_DIR, name: 'dust-tiny', version: 2 },
  ]);
  writeFileSync(path.join(repo.root, 'dust-tiny/2/manifest.json'), JSON.stringify({ ...manifest, version: 2 }));
  writeFileSync(path.join(repo.root, 'dust-tiny/2/vlm.onnx'), 'not a graph');
  metricsPort = await freePort();
  t = await startTestServer({ modelRepository: repo.root, metricsPort });
  // Traffic: unary requests (one with an episode seen twice: world-model surprise; one with a 1 ms budget:
  // missed), a stream of two, and one invalid request.
  served.push(await predict(t.client, await validRequest({ episode_id: 'e1' })));
  served.push(await predict(t.client, await validRequest({ episode_id: 'e1', sampling: { latency_budget_ms: 1 } })));
  served.push(...(await stream(t, [await validRequest({ robot_id: 'streamer' }), await validRequest({ robot_id: 'streamer' })])));
  const err = await predictError(t.client, await validRequest({ state: [1, 2] }));
  expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
});
afterAll(async () => {
  await t?.close();
  repo?.remove();
});

describe('/metrics', () => {
  it('exposes every metric of the operations surface by its exact name and type', async () => {
    const { samples, types } = await scrape(metricsPort);
    for (const c of SPEC_COUNTERS) expect(types.get(c), c).toBe('counter');
    for (const g of SPEC_GAUGES) expect(types.get(g), g).toBe('gauge');
    for (const h of SPEC_HISTOGRAMS) {
      expect(types.get(h), h).toBe('histogram');
      for (const suffix of ['_bucket', '_sum', '_count']) expect(samples.some((s) => s.name === h + suffix), h + suffix).toBe(true);
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

describe.skipIf(!PROMETHEUS)(`Prometheus scraping the server${PROMETHEUS ? '' : ` (skipped: ${NO_PROMETHEUS})`}`, () => {
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let api: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dust-prometheus-'));
    const webPort = await freePort();
    api = `http://127.0.0.1:${webPort}`;
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [path.resolve('deploy/prometheus/alerts.yml')],
        scrape_configs: [{ job_name: 'dust-serve', static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] }],
      }),
    );
    prometheus = spawn(
      PROMETHEUS!,
      [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`],
      { stdio: 'ignore' },
    );
    await until(async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.status === 200, 'Prometheus ready');
  });
  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await new Promise((r) => prometheus!.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async function query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    expect(body.status).toBe('success');
    return body.data.result;
  }

  it('scrapes the target and returns the series through its HTTP API', async () => {
    await until(async () => (await query('dust_requests_total{method="Predict",code="OK"}')).length > 0, 'a scraped dust_requests_total');
    const [ok] = await query('dust_requests_total{method="Predict",code="OK"}');
    expect(ok.metric).toMatchObject({ job: 'dust-serve', model: 'dust-tiny', version: '1' });
    expect(Number(ok.value[1])).toBe(2);
    const targets = (await (await fetch(`${api}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ health: string; lastError: string }> } };
    expect(targets.data.activeTargets).toHaveLength(1);
    expect(targets.data.activeTargets[0]).toMatchObject({ health: 'up', lastError: '' });
    // A histogram query over the scraped buckets.
    const [p99] = await query('histogram_quantile(0.99, sum by (le) (dust_request_duration_seconds_bucket{method="Predict"}))');
    expect(Number(p99.value[1])).toBeGreaterThan(0);
    expect((await query('dust_model_load_failures_total{version="2"}')).map((r) => Number(r.value[1]))).toEqual([1]);
  });

  it('loads the alert rules, and the load-failure alert fires for the broken version only', async () => {
    const rules = (await (await fetch(`${api}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string }> }> } };
    expect(rules.data.groups.flatMap((g) => g.rules).map((r) => r.name)).toEqual(
      expect.arrayContaining(['DustP99LatencyOverBudget', 'DustRequestsRejected', 'DustModelLoadFailed', 'DustLatencyBudgetMisses']),
    );
    type Alert = { labels: Record<string, string>; state: string };
    const alerts = async () => ((await (await fetch(`${api}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } }).data.alerts;
    await until(async () => (await alerts()).some((a) => a.labels.alertname === 'DustModelLoadFailed' && a.state === 'firing'), 'DustModelLoadFailed firing');
    const failed = (await alerts()).filter((a) => a.labels.alertname === 'DustModelLoadFailed');
    expect(failed.map((a) => `${a.labels.model}@${a.labels.version}`)).toEqual(['dust-tiny@2']);
    const health = (await (await fetch(`${api}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    for (const r of health.data.groups.flatMap((g) => g.rules)) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
  });
});
