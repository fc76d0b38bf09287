/**
 * Authentication and roles as one grpc-js server interceptor (serving-api.md: "no or bad credential /
 * credential lacks the role" -> UNAUTHENTICATED / PERMISSION_DENIED).
 *
 * With a tokens file, every RPC but grpc.health.v1 (load balancers and Kubernetes probes call it without
 * credentials) needs `authorization: Bearer <token>`; robots may call everything but AdminService, admins
 * everything. Tokens are compared in constant time (SHA-256 digests of equal length through
 * crypto.timingSafeEqual, every entry compared) and never logged. Without a tokens file, PolicyService is
 * open and AdminService answers only on loopback connections.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Credential, Role } from '../config/index.js';
import { ADMIN_SERVICE_NAME } from '../proto/index.js';
import type { Logger } from '../telemetry/index.js';
import { isLoopback } from './tls.js';

const HEALTH_PREFIX = '/grpc.health.v1.Health/';
const ADMIN_PREFIX = `/${ADMIN_SERVICE_NAME}/`;

export interface Caller {
  readonly role: Role;
  readonly name: string;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** The known credentials, matched in constant time. */
export class CredentialSet {
  private readonly entries: ReadonlyArray<{ readonly digest: Buffer; readonly caller: Caller }>;

  constructor(credentials: readonly Credential[]) {
    this.entries = credentials.map((c) => ({ digest: digest(c.token), caller: { role: c.role, name: c.name } }));
  }

  /** The caller a token belongs to. Compares against every entry, so the time taken does not tell which matched. */
  identify(token: string): Caller | undefined {
    const presented = digest(token);
    let found: Caller | undefined;
    for (const e of this.entries) if (timingSafeEqual(presented, e.digest)) found = e.caller;
    return found;
  }
}

/** The token of an `authorization: Bearer <token>` header, or undefined. */
export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const [value] = metadata.get('authorization');
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
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
      details: 'AdminService answers only on loopback connections when the server has no tokens file; call it on the server host, or start the server with --tokens-file and an admin token',
    };
  }
  const token = bearerToken(metadata);
  if (token === undefined) {
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: 'this server needs a credential: send metadata "authorization: Bearer <token>"' };
  }
  const caller = credentials.identify(token);
  if (!caller) return { ok: false, code: grpc.status.UNAUTHENTICATED, details: 'the bearer token is not one this server knows; check the token you were given' };
  if (admin && caller.role !== 'admin') {
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `${caller.name} has the ${caller.role} role; AdminService needs an admin token` };
  }
  return { ok: true, caller };
}

/**
 * Checks every call's credential before its handler sees anything. A refused call gets its status at once
 * and its messages never reach the handler. Admin calls are logged with the caller's name.
 */
export function authInterceptor(credentials: CredentialSet | undefined, log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    let refused = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const verdict = authorize(credentials, method.path, metadata, call.getConnectionInfo().remoteAddress);
              if (!verdict.ok) {
                refused = true;
                log.warn({ method: method.path, peer: call.getPeer(), code: grpc.status[verdict.code] }, 'call refused');
                call.sendStatus({ code: verdict.code, details: verdict.details, metadata: new grpc.Metadata() });
                return;
              }
              if (method.path.startsWith(ADMIN_PREFIX)) log.info({ method: method.path, caller: verdict.caller?.name ?? 'loopback', peer: call.getPeer() }, 'admin call');
              nextMetadata(metadata);
            })
            .withOnReceiveMessage((message, nextMessage) => {
              if (!refused) nextMessage(message);
            })
            .withOnReceiveHalfClose((nextHalfClose) => {
              if (!refused) nextHalfClose();
            })
            .build(),
        ),
    });
  };
}
