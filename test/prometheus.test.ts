/**
 * Debian's Prometheus scraping the real server's /metrics (after the traffic of test/support/metrics-traffic.ts):
 * it loads the alert rules, its HTTP API returns the series, and the load-failure alert fires for the broken
 * version only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from './support/eventually.js';
import { freePort } from './support/harness.js';
import { serveWithTraffic, type ServerWithTraffic } from './support/metrics-traffic.js';
import { PROMETHEUS } from './support/prometheus.js';
import { WITH_PROMETHEUS } from './support/tools.js';

WITH_PROMETHEUS.describe('Prometheus scraping the server', () => {
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let api: string;

  let traffic: ServerWithTraffic | undefined;

  beforeAll(async () => {
    traffic = await serveWithTraffic();
    const { metricsPort } = traffic;
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
    if (dir) rmSync(dir, { recursive: true, force: true });
    await traffic?.close();
  });

  /** Prometheus scrapes and evaluates rules every second. */
  const until = (check: () => Promise<boolean>, what: string) => eventually(check, { what, timeoutMs: 30_000, intervalMs: 250 });

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
    const health = (await (await fetch(`${api}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    for (const r of health.data.groups.flatMap((g) => g.rules)) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
  });
});
