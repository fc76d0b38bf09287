/**
 * deploy/: the Prometheus alert rules pass promtool's checks and their unit tests, every Grafana panel query
 * is valid PromQL over series the server exposes, and the OpenTelemetry Collector config is well formed
 * (the collector binary is not available here: its structure is checked, not run).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXPOSED_SERIES, PROMTOOL } from './support/prometheus.js';
import { WITH_PROMTOOL } from './support/tools.js';

const ALERTS = 'deploy/prometheus/alerts.yml';
const DASHBOARD = 'deploy/grafana/dust-serve.json';
const COLLECTOR = 'deploy/otel-collector/config.yaml';

function promtool(...args: string[]): string {
  return execFileSync(PROMTOOL!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** dust_* series named in a PromQL text (recording-rule names use colons and are not matched). */
const seriesIn = (expr: string) => [...expr.matchAll(/\bdust_[a-z_]+/g)].map((m) => m[0]);

interface Panel {
  title: string;
  targets: Array<{ expr: string }>;
}

WITH_PROMTOOL.describe('Prometheus rules and Grafana dashboard', () => {
  it('alerts.yml passes promtool check rules and its unit tests, and alerts on latency, refusals, load failures and budget misses', () => {
    expect(promtool('check', 'rules', ALERTS)).toMatch(/SUCCESS/);
    expect(promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml')).toMatch(/SUCCESS/);
    const rules = (parse(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert).filter(Boolean)).toEqual(
      expect.arrayContaining(['DustP99LatencyOverBudget', 'DustRequestsRejected', 'DustModelLoadFailed', 'DustLatencyBudgetMisses']),
    );
    for (const r of rules) for (const s of seriesIn(r.expr)) expect(EXPOSED_SERIES, `${r.alert ?? 'rule'} uses ${s}`).toContain(s);
  });

  it('every dashboard query is valid PromQL over exposed series', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    for (const { title, expr } of exprs) for (const s of seriesIn(expr)) expect(EXPOSED_SERIES, `panel "${title}" uses ${s}`).toContain(s);
    // promtool parses recording rules' PromQL: one rule per query, Grafana's variables replaced by values.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-dashboard-'));
    try {
      const file = path.join(dir, 'dashboard-queries.yml');
      const rules = exprs.map(({ expr }, i) => ({
        record: `dashboard:query_${i}`,
        expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$model', '.*'),
      }));
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      expect(promtool('check', 'rules', file)).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('OpenTelemetry Collector config', () => {
  it('receives OTLP over gRPC and HTTP, and every pipeline component is defined', () => {
    const config = parse(readFileSync(COLLECTOR, 'utf8')) as Record<string, Record<string, unknown>>;
    const otlp = config.receivers.otlp as { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } };
    expect(otlp.protocols.grpc.endpoint).toMatch(/:4317$/);
    expect(otlp.protocols.http.endpoint).toMatch(/:4318$/);
    const service = config.service as { extensions?: string[]; pipelines: Record<string, Record<'receivers' | 'processors' | 'exporters', string[]>> };
    expect(Object.keys(service.pipelines)).toContain('traces');
    for (const [name, pipeline] of Object.entries(service.pipelines)) {
      for (const kind of ['receivers', 'processors', 'exporters'] as const) {
        for (const component of pipeline[kind] ?? []) expect(Object.keys(config[kind] ?? {}), `pipeline ${name} ${kind}`).toContain(component);
      }
      expect(pipeline.receivers.length).toBeGreaterThan(0);
      expect(pipeline.exporters.length).toBeGreaterThan(0);
    }
    for (const ext of service.extensions ?? []) expect(Object.keys(config.extensions ?? {})).toContain(ext);
    // Component types this config uses, as the collector names them (type before the optional /name).
    const types = ['receivers', 'processors', 'exporters', 'extensions'].flatMap((k) => Object.keys(config[k] ?? {}).map((c) => c.split('/')[0]));
    expect(new Set(types)).toEqual(new Set(['otlp', 'memory_limiter', 'batch', 'debug', 'health_check']));
  });
});
