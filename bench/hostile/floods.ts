/**
 * Hostile shots that are not one gRPC call each, for bench:abuse and bench:soak: stream floods over a raw HTTP/2
 * connection that ignores the server's stream cap (without a credential, with one and idle, health Watch),
 * scrape floods of the Prometheus endpoint, and LoadModel of packages that reach outside their folder. Each
 * shot ends in one CallOutcome: OK when the server handled the attack as docs/operations.md says it does,
 * anything else (with details saying what happened) when it did not.
 */
import http from 'node:http';
import { constants as h2 } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/index.js';
import type { ModelStatus__Output } from '@dust-serve/client/gen/dust/serving/v1/ModelStatus';
import { addHostilePackages, OUTSIDE_SHA256, OUTSIDE_TEXT, type HostilePackage } from '../../test/support/hostile/packages.js';
import { grpcHeaders, RawH2Connection } from '../../test/support/hostile/raw-h2.js';
import { HEALTH_WATCH_PATH, POLICY_PATHS, type CallOutcome } from '../../test/support/hostile/raw-calls.js';
import type { Shot } from './shots.js';

/** Refusing a hostile package must take less than this (the disk-operation bound of docs/model-package.md, "Confinement", which is the server's own I/O timeout). */
export const PACKAGE_REFUSAL_MS = 10_000;
const SCRAPE_TIMEOUT_MS = 10_000;

export interface FloodTarget {
  /** The gRPC address, host:port. */
  readonly address: string;
  readonly metricsPort: number;
  /** A robot token: the idle-stream flood holds a credential. */
  readonly robotToken: string;
  /** An admin token: hostile packages are loaded through AdminService. */
  readonly adminToken: string;
}

export interface FloodOptions {
  /** Streams each stream flood opens on its connection. */
  readonly streams: number;
  /** GET /metrics each scrape flood sends. */
  readonly scrapes: number;
}

export const DEFAULT_FLOOD_OPTIONS: FloodOptions = { streams: 500, scrapes: 200 };

function outcome(t0: number, ok: boolean, details: string): CallOutcome {
  return { code: ok ? grpc.status.OK : grpc.status.INTERNAL, details, metadata: undefined, responses: [], ms: performance.now() - t0 };
}

/**
 * Opens `streams` streams on one raw connection, never half-closed, then waits for the server to have read them
 * all (a PING answered) or to close the connection. Handled: every stream was read and the connection lives,
 * or the server closed it with ENHANCE_YOUR_CALM (refusal floods) or REFUSED_STREAM-driven closes (streams
 * over the cap); anything else (no answer, another error code) is reported.
 */
async function streamFlood(
  target: FloodTarget,
  path: string,
  streams: number,
  headers: ReadonlyArray<readonly [string, string]>,
  message?: Buffer,
): Promise<CallOutcome> {
  const t0 = performance.now();
  const [host, port] = target.address.split(':');
  let connection: RawH2Connection;
  try {
    connection = await RawH2Connection.connect(host, Number(port));
  } catch (err) {
    return { ...outcome(t0, false, `connect failed: ${(err as Error).message}`), code: grpc.status.UNAVAILABLE };
  }
  try {
    const opened = await connection.flood(streams, grpcHeaders(target.address, path, headers), message);
    await connection.ping();
    const code = connection.goawayCode;
    const closedAsDocumented =
      code === undefined || code === h2.NGHTTP2_NO_ERROR || code === h2.NGHTTP2_ENHANCE_YOUR_CALM || code === h2.NGHTTP2_INTERNAL_ERROR;
    return outcome(t0, closedAsDocumented, `${opened} streams written; ${connection.closed ? `closed by the server, GOAWAY ${code}` : 'connection open'}`);
  } finally {
    connection.close();
  }
}

/** An empty HealthCheckRequest (service ""), gRPC-framed by the raw client. */
const WATCH_REQUEST = Buffer.alloc(0);

/**
 * `scrapes` GETs of /metrics over a few keep-alive connections; handled when every one got 200 or had its
 * connection reset by the endpoint's connection cap (the server shedding, as documented).
 */
async function scrapeFlood(target: FloodTarget, scrapes: number): Promise<CallOutcome> {
  const t0 = performance.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: Record<string, number> = {};
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: target.metricsPort, path: '/metrics', agent, timeout: SCRAPE_TIMEOUT_MS }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        statuses[err.message] = (statuses[err.message] ?? 0) + 1;
        resolve();
      });
    });
  try {
    await Promise.all(Array.from({ length: scrapes }, one));
  } finally {
    agent.destroy();
  }
  const shed = (statuses['socket hang up'] ?? 0) + (statuses['read ECONNRESET'] ?? 0);
  return outcome(t0, (statuses['200'] ?? 0) + shed === scrapes, JSON.stringify(statuses));
}

const admin = loadProtos().policy.AdminService.service;

/** LoadModel of a hostile package: handled when it is FAILED in time and its reason leaks nothing of the outside. */
function loadHostile(client: grpc.Client, adminToken: string, pkg: HostilePackage): Promise<CallOutcome> {
  const t0 = performance.now();
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${adminToken}`);
  const body = admin.LoadModel.requestSerialize({ name: pkg.name, version: 1 });
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      admin.LoadModel.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      metadata,
      { deadline: Date.now() + PACKAGE_REFUSAL_MS * 2 },
      (err, res) => {
        const ms = performance.now() - t0;
        if (err) return resolve({ code: err.code, details: err.details, metadata: err.metadata, responses: [], ms });
        const status = admin.LoadModel.responseDeserialize(res!) as ModelStatus__Output;
        const leaked = status.reason.includes(OUTSIDE_TEXT) || status.reason.includes(OUTSIDE_SHA256);
        const failed = status.state === 'MODEL_STATE_FAILED';
        const ok = failed && !leaked && ms < PACKAGE_REFUSAL_MS;
        resolve({ ...outcome(t0, ok, ok ? 'FAILED, nothing leaked' : `state ${status.state}, leaked ${leaked}, after ${Math.round(ms)} ms`), ms });
      },
    );
  });
}

/** Writes the hostile packages into a repository: before the server starts, so that it starts with them in place. */
export function writeHostilePackages(template: string, repository: string): HostilePackage[] {
  return addHostilePackages(template, repository);
}

/** The shots of the new attack classes, one pool per kind; `packages` are in the target server's repository. */
export function floodShots(target: FloodTarget, packages: readonly HostilePackage[], o: FloodOptions = DEFAULT_FLOOD_OPTIONS): Shot[][] {
  const token: ReadonlyArray<readonly [string, string]> = [['authorization', `Bearer ${target.robotToken}`]];
  return [
    [{ kind: 'flood:streams-no-token', fire: () => streamFlood(target, POLICY_PATHS.predict, o.streams, []) }],
    [{ kind: 'flood:streams-token-idle', fire: () => streamFlood(target, POLICY_PATHS.streamPredict, o.streams, token) }],
    [{ kind: 'flood:watch', fire: () => streamFlood(target, HEALTH_WATCH_PATH, o.streams, [], WATCH_REQUEST) }],
    [{ kind: 'flood:scrape', fire: () => scrapeFlood(target, o.scrapes) }],
    packages.map((pkg) => ({ kind: 'package:hostile', fire: (client: grpc.Client) => loadHostile(client, target.adminToken, pkg) })),
  ];
}
