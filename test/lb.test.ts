/**
 * The load balancer in front of replicas (deploy/lb/haproxy.cfg) and the local three-replica script
 * (deploy/local/replicas.sh):
 * - the config's health check, a hand-made HTTP/2 request for grpc.health.v1.Health/Check, passes on a real
 *   server that is SERVING and fails on one that is NOT_SERVING (no haproxy needed);
 * - the script's replicas behind HAProxy, sharing the script's throwaway PostgreSQL experiment store
 *   (DUST_LOCAL_POSTGRES=1): all checked UP, a 50/50 split set through HAProxy, and a robot fleet through the
 *   one address loses no request while one replica drains (SIGTERM) and another is killed (SIGKILL); the shared
 *   experiment then counts what the robots got and reported. Skipped, with the reason, where haproxy is not
 *   installed (Debian: apt-get install haproxy; bash .ci/run installs it); without PostgreSQL's binaries the
 *   replicas keep their own experiments and the counts are not checked. With CI=true either missing fails.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DustClient } from '@dust-serve/client';
import { countsOf, reportOutcomes, runFleetThroughFailover, splitEvenly } from './support/fleet.js';
import { eventually } from './support/eventually.js';
import { allReplicasUp, haproxyServers } from './support/haproxy.js';
import { freePorts, startTestServer, tempRepository, TINY_DIR } from './support/harness.js';
import { WITH_HAPROXY, WITH_POSTGRES } from './support/tools.js';
import { MODEL, versionsRepository } from './support/versions.js';

const CONFIG = path.resolve('deploy/lb/haproxy.cfg');
const SCRIPT = path.resolve('deploy/local/replicas.sh');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The bytes HAProxy's tcp-check sends, and the bytes it expects back, as the config spells them. */
function healthCheckBytes(): { send: Buffer; expect: Buffer } {
  const config = readFileSync(CONFIG, 'utf8');
  const hex = (directive: string) => Buffer.from(new RegExp(`^\\s*tcp-check ${directive} ([0-9a-f]+)\\s*$`, 'm').exec(config)![1]!, 'hex');
  return { send: hex('send-binary'), expect: hex('expect binary') };
}

/** A gRPC HealthCheckResponse{status: NOT_SERVING} message, length-prefixed. */
const NOT_SERVING_MESSAGE = Buffer.from('00000000020802', 'hex');

/**
 * What a server answers to those bytes on a fresh connection, once the answer holds `serving` (HAProxy's
 * expected bytes) or a NOT_SERVING health message, as HAProxy's tcp-check reads it.
 */
async function exchange(port: number, request: Buffer, serving: Buffer): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(request);
  try {
    await eventually(() => [serving, NOT_SERVING_MESSAGE].some((b) => Buffer.concat(chunks).includes(b)), { what: 'a health check answer', timeoutMs: 5_000 });
  } finally {
    socket.destroy();
  }
  return Buffer.concat(chunks);
}

describe('HAProxy health check', () => {
  it('is a gRPC health check: passes on a SERVING server, fails on a NOT_SERVING one', async () => {
    const { send, expect: serving } = healthCheckBytes();
    const good = await startTestServer({ warmup: false });
    cleanups.push(() => good.close());
    expect((await exchange(good.server.port, send, serving)).includes(serving)).toBe(true);

    // A server whose only model version failed to load listens but is NOT_SERVING.
    const repo = tempRepository([{ from: TINY_DIR, name: 'dust-tiny', version: 1 }]);
    cleanups.push(repo.remove);
    rmSync(path.join(repo.root, 'dust-tiny/1/denoiser.onnx'));
    const broken = await startTestServer({ modelRepository: repo.root, warmup: false });
    cleanups.push(() => broken.close());
    const answer = await exchange(broken.server.port, send, serving);
    expect(answer.includes(serving)).toBe(false);
    // It did answer: HealthCheckResponse{status: NOT_SERVING}.
    expect(answer.includes(NOT_SERVING_MESSAGE)).toBe(true);
  });
});

WITH_HAPROXY.describe('deploy/local/replicas.sh', () => {
  it('runs three replicas sharing PostgreSQL behind HAProxy; robots lose no request while one drains and one is killed, and the experiment counts what they got', async () => {
    const [lbPort, statsPort, pgPort, ...replicaPorts] = await freePorts(6);
    const logDir = await mkdtemp(path.join(os.tmpdir(), 'dust-replicas-test-'));
    cleanups.push(() => rmSync(logDir, { recursive: true, force: true }));
    const repo = versionsRepository([1, 2]);
    cleanups.push(repo.remove);
    const shared = WITH_POSTGRES.available;
    WITH_POSTGRES.warnUnlessCi('experiment counts');
    const script = spawn('bash', [SCRIPT, '--threads', '1', '--warmup', 'false', '--model-repository', repo.root], {
      env: {
        ...process.env,
        DUST_LB_PORT: String(lbPort),
        DUST_LB_STATS_PORT: String(statsPort),
        DUST_REPLICA_PORTS: replicaPorts.join(' '),
        DUST_REPLICA_METRICS_PORTS: '0 0 0',
        DUST_LOCAL_LOG_DIR: logDir,
        DUST_SHUTDOWN_GRACE_SECONDS: '5',
        DUST_LOCAL_POSTGRES: shared ? '1' : '0',
        DUST_LOCAL_POSTGRES_PORT: String(pgPort),
        DUST_EXPERIMENT_COUNT_WAIT_MS: '60000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    script.stdout.on('data', (c: Buffer) => (out += c.toString()));
    script.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => script.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      script.kill('SIGTERM');
      await exited;
    });
    await eventually(() => out.includes('ready:') || script.exitCode !== null, { what: 'the script to say ready', timeoutMs: 60_000 });
    expect(out).toContain('ready:');
    const pids = [...out.matchAll(/^replica (\d) pid (\d+) port (\d+)$/gm)].map((m) => Number(m[2]));
    expect(pids).toHaveLength(3);

    const stats = `http://127.0.0.1:${statsPort}`;
    expect(await allReplicasUp(stats)).toEqual({ r1: 'UP L7OK', r2: 'UP L7OK', r3: 'UP L7OK' });

    const client = new DustClient(`127.0.0.1:${lbPort}`);
    cleanups.push(() => client.close());
    // HAProxy connects to the replicas from loopback, where AdminService needs no token.
    const experimentId = shared ? await splitEvenly(client, client, MODEL, 3, 'local-replicas') : 0;
    const report = await runFleetThroughFailover(client, {
      drain: () => process.kill(pids[0]!, 'SIGTERM'),
      kill: () => process.kill(pids[1]!, 'SIGKILL'),
    });
    expect(report.failures).toEqual([]);
    if (shared) {
      const expected = await reportOutcomes(client, MODEL, report);
      const experiment = await client.getExperiment(MODEL);
      expect(experiment.experimentId).toBe(experimentId);
      expect(countsOf(experiment)).toEqual(expected);
    }
    const view = await haproxyServers(stats);
    expect(view.r1).toMatch(/^DOWN/);
    expect(view.r2).toMatch(/^DOWN/);
    expect(view.r3).toBe('UP L7OK');

    // The script stops HAProxy and drains the last replica on SIGTERM.
    script.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
