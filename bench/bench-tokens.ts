/**
 * Credentials for benches that run the server as it is deployed, with a tokens file (docs/operations.md,
 * "Tokens and roles"): a robot token for the good robots and for hostile callers that hold a credential, an
 * admin token for AdminService, and a client interceptor that presents a token on every call of a channel.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';

export interface BenchTokens {
  readonly file: string;
  readonly robot: string;
  readonly admin: string;
  remove(): void;
}

export function benchTokens(): BenchTokens {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-tokens-'));
  const file = path.join(dir, 'tokens.json');
  const robot = randomBytes(16).toString('hex');
  const admin = randomBytes(16).toString('hex');
  writeFileSync(file, JSON.stringify([{ token: robot, role: 'robot', name: 'bench-robot' }, { token: admin, role: 'admin', name: 'bench-admin' }]));
  return { file, robot, admin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Channel options whose interceptor sends `authorization: Bearer <token>` with every call that names none itself. */
export function presentingToken(token: string): grpc.ClientOptions {
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get('authorization').length === 0) metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return { interceptors: [interceptor] };
}
