/**
 * Credentials for benches that run the server as it is deployed, with a tokens file (docs/operations.md,
 * "Tokens and roles"): a token per good robot (the robots are separate callers for the rate limit and the
 * queue's fair share, as a fleet with per-robot tokens is), a robot token for the hostile callers, an admin
 * token for AdminService, and bench clients that present a token on every call.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';

export interface BenchTokens {
  readonly file: string;
  /** One token per good robot. */
  readonly robots: readonly string[];
  /** The hostile callers' robot token. */
  readonly attacker: string;
  readonly admin: string;
  remove(): void;
}

export function benchTokens(robots: number): BenchTokens {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-tokens-'));
  const file = path.join(dir, 'tokens.json');
  const token = () => randomBytes(16).toString('hex');
  const robotTokens = Array.from({ length: robots }, token);
  const attacker = token();
  const admin = token();
  writeFileSync(
    file,
    JSON.stringify([
      ...robotTokens.map((t, i) => ({ token: t, role: 'robot', name: `bench-robot-${i}` })),
      { token: attacker, role: 'robot', name: 'bench-attacker' },
      { token: admin, role: 'admin', name: 'bench-admin' },
    ]),
  );
  return { file, robots: robotTokens, attacker, admin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A client on a connection of its own (not shared with other clients of the bench), sending
 * `authorization: Bearer <token>` with every call that names none itself, when a token is given.
 */
export function benchClient(address: string, token?: string): grpc.Client {
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get('authorization').length === 0) metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    ...(token ? { interceptors: [interceptor] } : {}),
  });
}
