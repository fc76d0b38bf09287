/**
 * Authentication and roles as one grpc-js server interceptor (docs/api.md, Errors: a missing, unknown or
 * revoked credential -> UNAUTHENTICATED, a credential without the role -> PERMISSION_DENIED).
 *
 * With a tokens file, every RPC but grpc.health.v1 (load balancers and Kubernetes probes call it without
 * credentials) needs `authorization: Bearer <token>`; robots may call everything but AdminService, admins
 * everything. Tokens are never logged, and the time a check takes tells nothing about a token (below). A
 * credential removed from the file (tokens-file.ts reloads it) refuses new calls at once, and ends a
 * StreamPredict opened with it at its next message. Without a tokens file, PolicyService is open and
 * AdminService answers only on loopback connections.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { bearerTokenOf, type Credential, type Role } from '../config/index.js';
import { ADMIN_SERVICE_NAME, HEALTH_SERVICE_NAME } from '@dust-serve/client/protos';
import { sampledLog, type Logger } from '../telemetry/index.js';
import { gateCall } from './call-gate.js';
import { isLoopback } from './tls.js';

const HEALTH_PREFIX = `/${HEALTH_SERVICE_NAME}/`;
const ADMIN_PREFIX = `/${ADMIN_SERVICE_NAME}/`;

export interface Caller {
  readonly role: Role;
  readonly name: string;
  /** Identifies the credential (a digest of the token, never the token): the rate limiter's key. */
  readonly key: string;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/**
 * The known credentials. A presented token is looked up by its SHA-256 digest, then compared with
 * timingSafeEqual. The lookup's time depends on the digest only, and how the digest of a guess relates to the
 * stored digests says nothing about the tokens behind them (SHA-256 is preimage resistant), so timing cannot
 * reveal a token a character at a time. Comparing against every entry instead would cost every call time in
 * proportion to the number of tokens, and per-robot tokens (the rate limiter's key) make that number large.
 */
export class CredentialSet {
  private entries = new Map<string, { readonly digest: Buffer; readonly caller: Caller }>();

  constructor(credentials: readonly Credential[]) {
    this.replace(credentials);
  }

  /** Puts a new list in use; calls already authorized with a removed credential are refused at their next message. */
  replace(credentials: readonly Credential[]): void {
    const entries = new Map<string, { readonly digest: Buffer; readonly caller: Caller }>();
    for (const c of credentials) {
      const d = digest(c.token);
      const key = d.toString('hex');
      entries.set(key, { digest: d, caller: { role: c.role, name: c.name, key } });
    }
    this.entries = entries;
  }

  /** The caller a token belongs to. */
  identify(token: string): Caller | undefined {
    const presented = digest(token);
    const entry = this.entries.get(presented.toString('hex'));
    return entry && timingSafeEqual(presented, entry.digest) ? entry.caller : undefined;
  }

  /** True while the caller's credential is in the set with the same role. */
  holds(caller: Caller): boolean {
    return this.entries.get(caller.key)?.caller.role === caller.role;
  }

  /** The caller a call's `authorization` metadata names, if its token is known. */
  callerOf(metadata: grpc.Metadata): Caller | undefined {
    const token = bearerToken(metadata);
    return token === undefined ? undefined : this.identify(token);
  }
}

/** The token of an `authorization: Bearer <token>` header, or undefined. */
export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const [value] = metadata.get('authorization');
  return typeof value === 'string' ? bearerTokenOf(value) : undefined;
}

type Verdict = { ok: true; caller?: Caller } | { ok: false; code: grpc.status; details: string };

/** What the interceptor decides for a call to `method` with `metadata` from `remoteAddress`. Pure. */
export function authorize(credentials: CredentialSet | undefined, method: string, metadata: grpc.Metadata, remoteAddress: string | undefined): Verdict {
  if (method.startsWith(HEALTH_PREFIX)) return { ok: true };
  const admin = method.startsWith(ADMIN_PREFIX);
  if (!credentials) {
    if (!admin || (remoteAddress !== undefined && isLoopback(remoteAddress))) return { ok: true };
    return {
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details:
        'AdminService answers only on loopback connections when the server has no tokens file; call it on the server host, or start the server with --tokens-file and an admin token',
    };
  }
  if (bearerToken(metadata) === undefined) {
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: 'this server needs a credential: send metadata "authorization: Bearer <token>"' };
  }
  const caller = credentials.callerOf(metadata);
  if (!caller)
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: 'the bearer token is not one this server knows; check the token you were given' };
  if (admin && caller.role !== 'admin') {
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `${caller.name} has the ${caller.role} role; AdminService needs an admin token` };
  }
  return { ok: true, caller };
}

const REVOKED = "the credential of this call was removed from the server's tokens file; ask for a new token";

/**
 * Who a refusal is logged against: the peer's address (not its port: a client reconnecting gets a new one) and
 * a prefix of the presented token's digest, so that one client's repeated refusals fold into one line while
 * clients behind one address with different tokens stay apart. The digest prefix names no token.
 */
export function refusalKey(remoteAddress: string | undefined, tokenDigestHex: string | undefined): string {
  const peer = remoteAddress ?? 'unknown';
  return tokenDigestHex === undefined ? peer : `${peer} sha256:${tokenDigestHex.slice(0, 12)}`;
}

/**
 * Checks every call's credential before its handler sees anything. A refused call gets its status at once
 * and its messages never reach the handler. Admin calls are logged with the caller's name. Refusals are
 * logged sampled (log-sampler.ts): any client can cause one per call, at no cost of its own.
 */
export function authInterceptor(credentials: CredentialSet | undefined, log: Logger): grpc.ServerInterceptor {
  const refusals = sampledLog(log, 'warn', 'call refused', 'calls refused: repeats per caller not logged one by one');
  return (method, call) => {
    let caller: Caller | undefined;
    const refusal = (code: grpc.status, details: string, tokenDigestHex: string | undefined): grpc.StatusObject => {
      refusals.write(refusalKey(call.getConnectionInfo().remoteAddress, tokenDigestHex), {
        method: method.path,
        peer: call.getPeer(),
        code: grpc.status[code],
        caller: caller?.name,
      });
      return { code, details, metadata: new grpc.Metadata() };
    };
    return gateCall(call, {
      metadata: (metadata) => {
        const verdict = authorize(credentials, method.path, metadata, call.getConnectionInfo().remoteAddress);
        if (!verdict.ok) {
          const token = bearerToken(metadata);
          return refusal(verdict.code, verdict.details, token === undefined ? undefined : digest(token).toString('hex'));
        }
        caller = verdict.caller;
        if (method.path.startsWith(ADMIN_PREFIX)) log.info({ method: method.path, caller: caller?.name ?? 'loopback', peer: call.getPeer() }, 'admin call');
        return undefined;
      },
      // A stream outlives a reload of the tokens file: each message checks the credential is still there.
      message: () => (caller && credentials && !credentials.holds(caller) ? refusal(grpc.status.UNAUTHENTICATED, REVOKED, caller.key) : undefined),
    });
  };
}
