/**
 * `dust-serve serve` as an operator runs it: the built binary, JSON logs, SIGTERM drains and exits 0.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { loadProtos } from '../src/api/index.js';
import { onnxRuntimeProbe } from '../src/engine/index.js';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import { eventually } from './support/eventually.js';
import { freePort, predict, TEST_REPOSITORY, validRequest } from './support/harness.js';
import { parseExposition } from './support/prometheus.js';
import { spawnServe } from './support/serve-process.js';

const BIN = path.resolve('dist/src/cli/main.js');

/** dust_inflight_requests summed over methods, from the server's /metrics. */
async function inFlightRequests(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return parseExposition(text)
    .samples.filter((s) => s.name === 'dust_inflight_requests')
    .reduce((n, s) => n + s.value, 0);
}

describe('dust-serve serve', () => {
  it('logs JSON, serves, survives SIGHUP, and on SIGTERM finishes in-flight work, then exits 0', async () => {
    const metricsPort = await freePort();
    const { child, port, lines, exited } = await spawnServe(['--metrics-port', String(metricsPort)], { DUST_SHUTDOWN_GRACE_SECONDS: '10' });
    const { policy } = loadProtos();
    const client = new policy.PolicyService(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as PolicyServiceClient;
    try {
      // One call first, so the connection is up before the long one (SIGTERM closes the listener at once).
      await predict(client, await validRequest());
      // SIGHUP re-reads TLS certificates (none here) and must not end the process, as it would by default.
      // A signal the process does not handle ends it before it reads another request, so no wait is needed.
      child.kill('SIGHUP');
      await predict(client, await validRequest());
      const inflight = predict(client, await validRequest({ sampling: { action_steps: 4, vision_steps: 64 } }));
      // SIGTERM once the server holds the long request (/metrics counts it from its message on).
      await eventually(async () => (await inFlightRequests(metricsPort)) >= 1, { what: 'the long request to reach the server' });
      child.kill('SIGTERM');
      const res = await inflight;
      expect(res.sampling!.vision_steps).toBe(64);
      expect(await exited).toBe(0);
      const msgs = lines.map((l) => l.msg);
      expect(msgs).toContain('draining');
      expect(msgs).toContain('server closed');
      expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'string')).toBe(true);
    } finally {
      client.close();
      child.kill('SIGKILL');
    }
  });

  it.runIf(process.platform === 'linux')('runs every thread but the event loop at the worker niceness, the inference thread included', async () => {
    const { child, port } = await spawnServe([], { DUST_WORKER_NICENESS: '12', DUST_DECODE_NICENESS: '15' });
    const { policy } = loadProtos();
    const client = new policy.PolicyService(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as PolicyServiceClient;
    try {
      await predict(client, await validRequest());
      const pid = child.pid!;
      // getpriority on a thread id reads that thread's nice value (Linux), as thread-priority.ts relies on.
      const niceOf = (tid: string) => os.getPriority(Number(tid));
      const others = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid));
      expect(niceOf(String(pid))).toBe(0);
      expect(others.length).toBeGreaterThan(4);
      expect(others.map(niceOf).every((nice) => nice >= 12)).toBe(true);
      expect(others.map(niceOf)).toContain(15);
    } finally {
      client.close();
      child.kill('SIGKILL');
    }
  });

  it('refuses an invalid flag with a message naming it', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--device', 'tpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const [code] = await once(child, 'exit');
    expect(code).not.toBe(0);
    expect(err).toMatch(/device/);
  });

  it('--device cuda without a working CUDA provider refuses to start, naming what is missing and the fix', async (ctx) => {
    if ((await onnxRuntimeProbe('cuda')).ok) ctx.skip();
    const child = spawn(process.execPath, [BIN, 'serve', '--device', 'cuda', '--port', '0'], {
      env: { ...process.env, DUST_MODEL_REPOSITORY: TEST_REPOSITORY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(out).toMatch(/dust-serve: --device cuda cannot run here: missing .+\. To fix: /);
    expect(out).toMatch(/npm run setup:cuda|LD_LIBRARY_PATH|NVIDIA driver/);
    expect(out).not.toContain('dust-serve listening');
  });
});
