/**
 * The openpi door (docs/openpi.md): a WebSocket port that speaks the protocol of openpi's policy server, so that
 * openpi's clients (openpi_client.WebsocketClientPolicy, its LIBERO and DROID examples) drive dust-serve's
 * models unchanged. Off unless --openpi-port is set.
 *
 * At the upgrade: the connection cap, the credential (`Authorization: Api-Key <token>` or `Bearer <token>`, the
 * tokens file's roles: robots and admins may both connect), the model and embodiment (query parameters, else the
 * default model's split and the mapping's first embodiment), and the key mapping are checked, and a refusal is an
 * HTTP status with the reason as its body. Then the metadata frame, and one session (session.ts) per connection.
 * The hostile-client rules of the gRPC door hold here too: frames are bounded by the request limits (up to 4x
 * maxMessageBytes a frame is refused with a text frame, above it the connection is closed with 1009, as grpc-js
 * refuses such messages with RESOURCE_EXHAUSTED), one frame at a time per connection, an idle timeout, and a
 * client that does not read its replies is disconnected. Draining closes each connection with 1001 (going away)
 * once its running observation has been answered.
 */
import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { OptionSlice } from '../../config/index.js';
import type { ExperimentBook } from '../../experiment/index.js';
import { supportedChunking } from '../../engine/index.js';
import { sampledLog, type Logger, type ServingMetrics } from '../../telemetry/index.js';
import type { Caller, CredentialSet } from '../auth.js';
import type { PredictOrchestrator } from '../predict-orchestrator.js';
import type { SharedRateLimit } from '../rate-limit-interceptor.js';
import { MAX_DEPTH } from '../wire-scan.js';
import { MAX_FIELDS, type RequestLimits } from '../request-limits.js';
import { mapError } from '../status.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { resolveMapping, type KeyMapping, type KeyPath, type ResolvedMapping } from './key-mapping.js';
import { packFrame } from './msgpack-numpy.js';
import { generatedId, OpenpiSession } from './session.js';

/** Above this multiple of maxMessageBytes a frame is not read at all (the gRPC door's hard cap, server.ts). */
const HARD_FRAME_CAP_FACTOR = 4;
/** A client whose unread replies exceed this is not reading them: it is disconnected. */
const MAX_UNREAD_REPLY_BYTES = 8 * 1024 * 1024;
/** An HTTP request (before its upgrade) that has not sent its headers by then is dropped. */
const HEADERS_TIMEOUT_MS = 10_000;
/** Sockets beyond the connection cap that still get an HTTP 503 with the reason, before new ones are dropped unanswered. */
const REFUSAL_HEADROOM = 16;

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_NORMAL = 1000;

const REVOKED = "the credential of this connection was removed from the server's tokens file; ask for a new token";

export interface OpenpiDoorDeps {
  readonly orchestrator: PredictOrchestrator;
  readonly book: ExperimentBook;
  readonly limits: RequestLimits;
  readonly credentials: CredentialSet | undefined;
  /** The gRPC door's per-caller rate limit and its buckets, when one is set. */
  readonly rateLimit?: SharedRateLimit;
  /** Whether the server serves (health SERVING): GET /healthz answers 200 then, 503 otherwise. */
  readonly serving: () => boolean;
  readonly log: Logger;
  readonly metrics?: ServingMetrics;
}

export interface OpenpiDoor {
  readonly port: number;
  /** Refuses new connections, closes each open one with 1001 after its running observation; forces the rest at `graceMs`. */
  close(graceMs: number): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'Refusal';
  }
}

const HTTP_OF_GRPC: Readonly<Partial<Record<number, number>>> = {
  [grpcStatus.INVALID_ARGUMENT]: 400,
  [grpcStatus.NOT_FOUND]: 404,
  [grpcStatus.UNAVAILABLE]: 503,
  [grpcStatus.RESOURCE_EXHAUSTED]: 503,
};

/** The token of `Api-Key <token>` (openpi_client's header) or `Bearer <token>`. */
export function openpiToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return /^(?:Api-Key|Bearer)\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

function showKeyPath(key: KeyPath): string | readonly string[] {
  return key.length === 1 ? key[0] : key;
}

/** What a connection was granted at its upgrade. */
interface Admitted {
  readonly caller: Caller | undefined;
  readonly robotId: string;
  readonly model: string;
  readonly mapping: ResolvedMapping;
  readonly metadata: Record<string, unknown>;
}

/** @param keyMapping the mapping options.openpiMapping names (loadKeyMapping), read before the models load. */
export async function startOpenpiDoor(options: OptionSlice<'openpi'>, keyMapping: KeyMapping, deps: OpenpiDoorDeps): Promise<OpenpiDoor> {
  const requestedPort = options.openpiPort;
  if (requestedPort === 'off') throw new Error('startOpenpiDoor: the door is off');
  const { limits, log } = deps;
  const frameLimits = { maxBytes: limits.maxMessageBytes, maxItems: MAX_FIELDS, maxDepth: MAX_DEPTH };
  const refusals = sampledLog(log, 'warn', 'openpi connection refused', 'openpi connections refused: repeats per peer not logged one by one');
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes * HARD_FRAME_CAP_FACTOR,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const connections = new Map<WebSocket, OpenpiSession>();
  let upgrading = 0;
  let draining = false;
  let drained: (() => void) | undefined;
  const idleMs = options.openpiIdleSeconds * 1000;

  const http: Server = createServer((req, res) => {
    // openpi's server answers GET /healthz; anything else on this port is a WebSocket upgrade.
    if (req.method === 'GET' && (req.url === '/healthz' || req.url?.startsWith('/healthz?'))) {
      const ok = deps.serving() && !draining;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'OK\n' : 'NOT_SERVING\n');
      return;
    }
    res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' }).end("this port speaks openpi's WebSocket protocol (docs/openpi.md)\n");
  });
  http.headersTimeout = HEADERS_TIMEOUT_MS;
  http.requestTimeout = HEADERS_TIMEOUT_MS;
  http.maxConnections = options.openpiMaxConnections + REFUSAL_HEADROOM;

  const refuse = (socket: Socket, req: IncomingMessage, code: number, reason: string) => {
    refusals.write(req.socket.remoteAddress ?? 'unknown', { peer: req.socket.remoteAddress, status: code, reason });
    const body = `${reason}\n`;
    socket.end(
      `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `${code === 401 ? 'www-authenticate: Api-Key\r\n' : ''}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };

  const admit = (req: IncomingMessage): Admitted => {
    if (draining) throw new Refusal(503, 'the server is draining; connect to another replica or retry later');
    if (connections.size + upgrading >= options.openpiMaxConnections) {
      throw new Refusal(503, `the server has ${options.openpiMaxConnections} openpi connections open, its limit (--openpi-max-connections); retry later`);
    }
    let caller: Caller | undefined;
    if (deps.credentials) {
      const header = req.headers.authorization;
      const token = openpiToken(header);
      if (token === undefined) {
        throw new Refusal(
          401,
          'this server needs a credential: send the header "Authorization: Api-Key <token>" (openpi_client\'s api_key) or "Bearer <token>"',
        );
      }
      caller = deps.credentials.identify(token);
      if (!caller) throw new Refusal(401, 'the token is not one this server knows; check the token you were given');
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'ws://openpi');
    } catch {
      throw new Refusal(400, 'the request target is not a valid URL; connect to ws://<host>:<port>/?model=...&embodiment=...&robot_id=...');
    }
    const param = (name: string, maxBytes: number): string => {
      const v = url.searchParams.get(name) ?? '';
      if (Buffer.byteLength(v) > maxBytes)
        throw new Refusal(400, `the query parameter ${name} is ${Buffer.byteLength(v)} bytes, above the limit of ${maxBytes}`);
      if (v.includes('\u0000')) throw new Refusal(400, `the query parameter ${name} holds a NUL character (U+0000)`);
      return v;
    };
    const model = param('model', limits.maxNameBytes);
    const robotId = param('robot_id', limits.maxIdBytes) || generatedId(limits.maxIdBytes, 'openpi-');
    const requested = param('embodiment', limits.maxNameBytes);
    return { caller, robotId, model, ...describe(model, robotId, requested) };
  };

  /** The version the connection's robot is routed to now, its embodiment, mapping and metadata frame. */
  const describe = (model: string, robotId: string, requested: string): Pick<Admitted, 'mapping' | 'metadata'> => {
    let routed;
    try {
      routed = deps.orchestrator.admit(model, robotId, '');
    } catch (err) {
      const { code, details } = mapError(err);
      throw new Refusal(HTTP_OF_GRPC[code] ?? 500, details);
    }
    try {
      const m = routed.lease.handle.manifest;
      const embodiments = Object.keys(m.embodiments);
      const embodiment = requested || firstMapped(keyMapping, embodiments) || embodiments[0];
      const emb = Object.hasOwn(m.embodiments, embodiment) ? m.embodiments[embodiment] : undefined;
      if (!emb) throw new Refusal(404, `unknown embodiment ${JSON.stringify(embodiment)} for ${m.name}@${m.version}; known: ${embodiments.join(', ')}`);
      let mapping: ResolvedMapping;
      try {
        mapping = resolveMapping(keyMapping, embodiment, m.cameras);
      } catch (err) {
        throw new Refusal(400, (err as Error).message);
      }
      const metadata = {
        server: 'dust-serve',
        protocol: 'openpi',
        model: m.name,
        version: routed.assignment.version,
        variant: `${m.name}@${routed.assignment.version}`,
        embodiment,
        action_horizon: m.action.horizon,
        action_dim: emb.action_dim,
        state_dim: emb.state_dim,
        cameras: [...m.cameras],
        image_height: m.image.height,
        image_width: m.image.width,
        future_tokens: m.future.tokens,
        future_dim: m.future.dim,
        realtime_chunking: [...supportedChunking(m)],
        robot_id: robotId,
        key_mapping: {
          name: mapping.name,
          images: Object.fromEntries(mapping.images.map(({ camera, key }) => [camera, showKeyPath(key)])),
          state: mapping.state.map(showKeyPath),
          prompt: showKeyPath(mapping.prompt),
        },
      };
      return { mapping, metadata };
    } finally {
      routed.lease.release();
    }
  };

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let admitted: Admitted;
    try {
      admitted = admit(req);
    } catch (err) {
      if (err instanceof Refusal) refuse(socket, req, err.httpStatus, err.message);
      else {
        log.error({ err }, 'openpi upgrade failed');
        refuse(socket, req, 500, 'internal error while opening the connection; the server log has the cause');
      }
      return;
    }
    upgrading++;
    try {
      // A malformed upgrade (no Sec-WebSocket-Key, another version) is answered 400 by ws, which never calls back.
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgrading--;
        open(ws, admitted, req.socket.remoteAddress);
      });
    } catch (err) {
      upgrading--;
      log.debug({ err }, 'openpi upgrade failed');
      socket.destroy();
    }
  });
  const open = (ws: WebSocket, a: Admitted, peer: string | undefined) => {
    const connLog = log.child({ connection: randomUUID(), robotId: a.robotId, peer, caller: a.caller?.name });
    const session = new OpenpiSession({
      orchestrator: deps.orchestrator,
      book: deps.book,
      mapping: a.mapping,
      limits,
      frameLimits,
      robotId: a.robotId,
      model: a.model,
      credential: a.caller?.key,
      callerName: a.caller?.name,
      rateLimit: deps.rateLimit,
      log: connLog,
      metrics: deps.metrics,
    });
    connections.set(ws, session);
    connLog.debug({ model: a.metadata.variant, embodiment: a.mapping.embodiment }, 'openpi connection opened');
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ws.close(CLOSE_NORMAL, `idle: no frame for ${options.openpiIdleSeconds} s`), idleMs);
      idle.unref();
    };
    const send = (data: Uint8Array | string) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_UNREAD_REPLY_BYTES) {
        connLog.warn({ unreadBytes: ws.bufferedAmount }, 'openpi client does not read its replies: disconnected');
        ws.terminate();
        return;
      }
      ws.send(data, { binary: typeof data !== 'string' });
    };
    ws.on('error', (err) => connLog.debug({ err: err.message }, 'openpi connection error'));
    ws.on('close', (code, reason) => {
      clearTimeout(idle);
      session.cancel();
      connections.delete(ws);
      connLog.debug({ code, reason: reason.toString() }, 'openpi connection closed');
      if (draining && connections.size === 0) drained?.();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      armIdle();
      if (a.caller && deps.credentials && !deps.credentials.holds(a.caller)) {
        send(REVOKED);
        ws.close(CLOSE_POLICY_VIOLATION, 'credential revoked');
        return;
      }
      session
        .handle(data, isBinary)
        .then((reply) => {
          send('binary' in reply ? reply.binary : reply.text);
          if (draining && !session.running) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
          else armIdle();
        })
        .catch((err: unknown) => connLog.error({ err }, 'could not answer an openpi frame'));
    });
    send(packFrame(a.metadata));
    armIdle();
  };

  const port = await new Promise<number>((resolve, reject) => {
    http.once('error', reject);
    http.listen(requestedPort, options.host, () => {
      http.off('error', reject);
      resolve((http.address() as AddressInfo).port);
    });
  }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      `cannot listen on ${options.host}:${requestedPort} for the openpi door: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message}`,
      { cause: err },
    );
  });
  http.on('error', (err) => log.error({ err }, 'openpi port error'));
  log.info({ host: options.host, port, mapping: keyMapping.name, maxConnections: options.openpiMaxConnections }, 'openpi door listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        http.close();
        const done = () => {
          clearTimeout(force);
          resolve();
        };
        const force = setTimeout(
          () => {
            for (const ws of connections.keys()) ws.terminate();
            resolve();
          },
          Math.max(100, graceMs),
        );
        drained = done;
        for (const [ws, session] of connections) if (!session.running) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
        if (connections.size === 0) done();
      }).then(() => {
        http.closeAllConnections();
        wss.close();
      });
      return closing;
    },
  };
}

/** The first embodiment the mapping names that the model has, if the mapping names any. */
function firstMapped(mapping: KeyMapping, embodiments: readonly string[]): string | undefined {
  return [...mapping.entries.keys()].find((e) => e !== '*' && embodiments.includes(e));
}
