/**
 * The `/metrics` endpoint under load and behind a token, on the real server: concurrent scrapes share one
 * rendering and a scrape flood renders at most once per METRICS_MAX_AGE_MS; with metricsTokenFile only
 * requests with the bearer token are answered; metricsHost binds the endpoint apart from the gRPC host.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetrics, type MetricsEndpoint } from '../src/telemetry/index.js';
import { freePort, predict, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { parseExposition } from './support/prometheus.js';

const METRICS_TOKEN = 'metrics-scraper-token-1c9e44';

function get(port: number, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a scrape flood', () => {
  let endpoint: MetricsEndpoint;
  beforeAll(async () => {
    // A max age no test run outlasts: what is asserted is that nothing is rendered again within it.
    endpoint = await startMetrics({ host: '127.0.0.1', port: 0, maxAgeMs: 10 * 60_000 });
  });
  afterAll(async () => {
    await endpoint?.shutdown();
  });

  it('is answered from one rendering: a change within the max age is not rendered again', async () => {
    endpoint.metrics.requestRejected('queue_full');
    const first = await Promise.all(Array.from({ length: 20 }, () => get(endpoint.port)));
    expect(new Set(first.map((r) => r.status))).toEqual(new Set([200]));
    expect(new Set(first.map((r) => r.body)).size).toBe(1);
    const count = (body: string) => parseExposition(body).samples.find((s) => s.name === 'dust_rejected_total' && s.labels.reason === 'queue_full')?.value;
    expect(count(first[0].body)).toBe(1);
    // A second rejection right away: scrapes within the max age still get the text rendered before it.
    endpoint.metrics.requestRejected('queue_full');
    expect(count((await get(endpoint.port)).body)).toBe(1);
  });
});

describe('metricsTokenFile and metricsHost', () => {
  let dir: string;
  let t: TestServer;
  let metricsPort: number;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dust-metrics-token-'));
    const tokenFile = path.join(dir, 'metrics-token');
    writeFileSync(tokenFile, `${METRICS_TOKEN}\n`);
    metricsPort = await freePort();
    // gRPC on every interface, /metrics on loopback only.
    t = await startTestServer({ host: '0.0.0.0', metricsHost: '127.0.0.1', metricsPort, metricsTokenFile: tokenFile, warmup: false });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers only a scrape with the bearer token', async () => {
    await predict(t.client, await validRequest());
    expect((await get(metricsPort)).status).toBe(401);
    expect((await get(metricsPort, { authorization: 'Bearer not-the-metrics-token-00' })).status).toBe(401);
    const ok = await get(metricsPort, { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(ok.status).toBe(200);
    expect(parseExposition(ok.body).samples.some((s) => s.name === 'dust_requests_total' && s.labels.code === 'OK')).toBe(true);
  });

  it('listens on metricsHost only', async () => {
    const other = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!other) return; // a host with loopback only has no other address to try
    const reached = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: other, port: metricsPort }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    expect(reached).toBe(false);
  });

  it('refuses a token file that holds no usable token, at start', async () => {
    const empty = path.join(dir, 'empty-token');
    writeFileSync(empty, 'short\n');
    await expect(startTestServer({ metricsPort: await freePort(), metricsTokenFile: empty, warmup: false })).rejects.toThrow(
      /metricsTokenFile .* must hold one token of at least 16 characters/,
    );
  });
});
