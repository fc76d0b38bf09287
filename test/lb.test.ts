/**
 * The load balancer in front of replicas (deploy/lb/haproxy.cfg) and the local three-replica script
 * (deploy/local/replicas.sh):
 * - the config's health check, a hand-made HTTP/2 request for grpc.health.v1.Health/Check, passes on a real
 *   server that is SERVING and fails on one that is NOT_SERVING (no haproxy needed);
 * - the script's replicas behind HAProxy: all checked UP, and a robot fleet through the one address loses no
 *   request while one replica drains (SIGTERM) and another is killed (SIGKILL). Skipped, with the reason, where
 *   haproxy is not installed (Debian: apt-get install haproxy; bash .ci/run installs it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DustClient } from '../src/client/index.js';
import { runFleetThroughFailover, until } from './support/fleet.js';
import { allReplicasUp, haproxyServers } from './support/haproxy.js';
import { startTestServer, tempRepository, TINY_DIR } from './support/harness.js';

const CONFIG = path.resolve('deploy/lb/haproxy.cfg');
const SCRIPT = path.resolve('deploy/local/replicas.sh');
const HAVE_HAPROXY = spawnSync('haproxy', ['-v']).status === 0;

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

/** What a server answers to those bytes on a fresh connection within a second. */
async function exchange(port: number, request: Buffer): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(request);
  await new Promise((r) => setTimeout(r, 1000));
  socket.destroy();
  return Buffer.concat(chunks);
}

/** Free loopback ports (bound, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => resolve(s)); })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

describe('HAProxy health check', () => {
  it('is a gRPC health check: passes on a SERVING server, fails on a NOT_SERVING one', async () => {
    const { send, expect: serving } = healthCheckBytes();
    const good = await startTestServer({ warmup: false });
    cleanups.push(() => good.close());
    expect((await exchange(good.server.port, send)).includes(serving)).toBe(true);

    // A server whose only model version failed to load listens but is NOT_SERVING.
    const repo = tempRepository([{ from: TINY_DIR, name: 'dust-tiny', version: 1 }]);
    cleanups.push(repo.remove);
    rmSync(path.join(repo.root, 'dust-tiny/1/denoiser.onnx'));
    const broken = await startTestServer({ modelRepository: repo.root, warmup: false });
    cleanups.push(() => broken.close());
    const answer = await exchange(broken.server.port, send);
    expect(answer.includes(serving)).toBe(false);
    // It did answer: HealthCheckResponse{status: NOT_SERVING}.
    expect(answer.includes(Buffer.from('00000000020802', 'hex'))).toBe(true);
  });
});

describe('deploy/local/replicas.sh', () => {
  it('runs three replicas behind HAProxy; robots lose no request while one drains and one is killed', async (ctx) => {
    if (!HAVE_HAPROXY) {
      const reason = 'haproxy is not installed (Debian: apt-get install haproxy)';
      console.warn(`skipped: ${reason}`);
      ctx.skip(reason);
    }
    const [lbPort, statsPort, ...replicaPorts] = await freePorts(5);
    const logDir = await mkdtemp(path.join(os.tmpdir(), 'dust-replicas-test-'));
    cleanups.push(() => rmSync(logDir, { recursive: true, force: true }));
    const script = spawn('bash', [SCRIPT, '--threads', '1', '--warmup', 'false'], {
      env: {
        ...process.env,
        DUST_LB_PORT: String(lbPort),
        DUST_LB_STATS_PORT: String(statsPort),
        DUST_REPLICA_PORTS: replicaPorts.join(' '),
        DUST_REPLICA_METRICS_PORTS: '0 0 0',
        DUST_LOCAL_LOG_DIR: logDir,
        DUST_SHUTDOWN_GRACE_SECONDS: '5',
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
    await until('the script to say ready', () => out.includes('ready:') || script.exitCode !== null, 60_000);
    expect(out).toContain('ready:');
    const pids = [...out.matchAll(/^replica (\d) pid (\d+) port (\d+)$/gm)].map((m) => Number(m[2]));
    expect(pids).toHaveLength(3);

    const stats = `http://127.0.0.1:${statsPort}`;
    expect(await allReplicasUp(stats)).toEqual({ r1: 'UP L7OK', r2: 'UP L7OK', r3: 'UP L7OK' });

    const client = new DustClient(`127.0.0.1:${lbPort}`);
    cleanups.push(() => client.close());
    const { failures } = await runFleetThroughFailover(client, {
      drain: () => process.kill(pids[0]!, 'SIGTERM'),
      kill: () => process.kill(pids[1]!, 'SIGKILL'),
    });
    expect(failures).toEqual([]);
    const view = await haproxyServers(stats);
    expect(view.r1).toMatch(/^DOWN/);
    expect(view.r2).toMatch(/^DOWN/);
    expect(view.r3).toBe('UP L7OK');

    // The script stops HAProxy and drains the last replica on SIGTERM.
    script.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
