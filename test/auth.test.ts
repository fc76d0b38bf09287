/**
 * Credentials on the real server: with a tokens file every RPC but health checks needs a known bearer token,
 * robots cannot call AdminService, and no token ever reaches the logs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/api/index.js';
import { DustClientError, type DustClient } from '@dust-serve/client';
import { compileServeOptions } from '../src/config/index.js';
import { startTestServer, TEST_REPOSITORY } from './support/harness.js';
import { clientOf, MODEL, robotRequest } from './support/versions.js';

const ROBOT_TOKEN = 'robot-secret-3f9a1c77d2e8';
const ADMIN_TOKEN = 'admin-secret-b41d09e6a5c3';
const LEAVING_TOKEN = 'leaving-secret-7c2e90a1f4';

let dir: string;
let tokensFile: string;
let server: RunningServer;
let address: string;
const logs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dust-auth-'));
  tokensFile = path.join(dir, 'tokens.json');
  writeFileSync(
    tokensFile,
    JSON.stringify([
      { token: ROBOT_TOKEN, role: 'robot', name: 'arm-7' },
      { token: ADMIN_TOKEN, role: 'admin', name: 'ops' },
      { token: LEAVING_TOKEN, role: 'robot', name: 'arm-9' },
    ]),
  );
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  // metricsPort 0: no fixed port that another test run may hold.
  const options = compileServeOptions({
    host: '127.0.0.1',
    port: 0,
    metricsPort: 0,
    modelRepository: TEST_REPOSITORY,
    threads: 1,
    warmup: false,
    experimentDb: ':memory:',
    tokensFile,
  });
  server = await startServer(options, log);
  address = `127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.shutdown('test over');
  rmSync(dir, { recursive: true, force: true });
});

async function codeOf(call: (c: DustClient) => Promise<unknown>, token?: string): Promise<string> {
  const client = clientOf(address, token);
  try {
    await call(client);
    return 'OK';
  } catch (err) {
    expect(err).toBeInstanceOf(DustClientError);
    return (err as DustClientError).codeName;
  } finally {
    client.close();
  }
}

describe('with a tokens file', () => {
  it('PolicyService needs a known token', async () => {
    const req = await robotRequest('arm-7');
    expect(await codeOf((c) => c.predict(req))).toBe('UNAUTHENTICATED');
    expect(await codeOf((c) => c.listModels())).toBe('UNAUTHENTICATED');
    expect(await codeOf((c) => c.predict(req), 'not-a-known-token-000000')).toBe('UNAUTHENTICATED');
    expect(await codeOf((c) => c.predict(req), ROBOT_TOKEN)).toBe('OK');
    expect(await codeOf((c) => c.listModels(), ADMIN_TOKEN)).toBe('OK');
  });

  it('a StreamPredict without a token is refused before its requests reach the handler', async () => {
    const client = clientOf(address);
    try {
      const stream = client.stream();
      const err = await stream.send(await robotRequest('arm-7')).catch((e: unknown) => e);
      expect((err as DustClientError).codeName).toBe('UNAUTHENTICATED');
    } finally {
      client.close();
    }
  });

  it('AdminService needs the admin role', async () => {
    expect(await codeOf((c) => c.getExperiment(MODEL))).toBe('UNAUTHENTICATED');
    expect(await codeOf((c) => c.getExperiment(MODEL), ROBOT_TOKEN)).toBe('PERMISSION_DENIED');
    expect(await codeOf((c) => c.setTrafficSplit({ model: MODEL, weights: [{ version: 1, weight: 1 }] }), ROBOT_TOKEN)).toBe('PERMISSION_DENIED');
    expect(await codeOf((c) => c.getExperiment(MODEL), ADMIN_TOKEN)).toBe('OK');
  });

  it('health checks need no credential (load balancers and probes call them)', async () => {
    expect(await codeOf((c) => c.health())).toBe('OK');
    expect(await codeOf((c) => c.health(MODEL))).toBe('OK');
  });

  it('server reflection needs a credential too', async () => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const call = client.makeBidiStreamRequest(
        '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      call.on('status', resolve);
      call.on('error', () => undefined);
      call.on('data', () => undefined);
      call.end();
    });
    client.close();
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('a token removed from the file is refused at once, and ends a stream opened with it at its next message', async () => {
    const leaving = clientOf(address, LEAVING_TOKEN);
    const staying = clientOf(address, ROBOT_TOKEN);
    try {
      const stream = leaving.stream();
      const kept = staying.stream();
      await stream.send(await robotRequest('arm-9'));
      await kept.send(await robotRequest('arm-7'));
      writeFileSync(
        tokensFile,
        JSON.stringify([
          { token: ROBOT_TOKEN, role: 'robot', name: 'arm-7' },
          { token: ADMIN_TOKEN, role: 'admin', name: 'ops' },
        ]),
      );
      expect(await server.reloadTokens()).toBe(true);
      const req9 = await robotRequest('arm-9');
      const err = await stream.send(req9).catch((e: unknown) => e);
      expect((err as DustClientError).codeName).toBe('UNAUTHENTICATED');
      expect((err as DustClientError).message).toMatch(/removed from the server's tokens file/);
      expect(await codeOf((c) => c.predict(req9), LEAVING_TOKEN)).toBe('UNAUTHENTICATED');
      // Other credentials and their open streams carry on.
      expect((await kept.send(await robotRequest('arm-7'))).modelName).toBe(MODEL);
      kept.end();
    } finally {
      leaving.close();
      staying.close();
    }
  });

  it("logs a client's repeated refusals once per window, not once per call", async () => {
    const refusedLines = () => logs.filter((l) => l.includes('"msg":"call refused"')).length;
    const before = refusedLines();
    const client = clientOf(address, 'flooding-unknown-token-5e1d');
    const bare = clientOf(address);
    try {
      const req = await robotRequest('arm-7');
      for (let i = 0; i < 40; i++) {
        await expect(client.predict(req)).rejects.toMatchObject({ codeName: 'UNAUTHENTICATED' });
        await expect(bare.predict(req)).rejects.toMatchObject({ codeName: 'UNAUTHENTICATED' });
      }
    } finally {
      client.close();
      bare.close();
    }
    // One line for the client with the unknown token (a key new in this window), at most one for the client
    // without a token (earlier tests may have had their line for that key already); the other refusals are
    // counted for the window's summary line.
    expect(refusedLines() - before).toBeGreaterThanOrEqual(1);
    expect(refusedLines() - before).toBeLessThanOrEqual(2);
  });

  it('never writes a token to the logs', () => {
    const all = logs.join('');
    expect(all).toContain('call refused');
    expect(all).toContain('"caller":"ops"');
    expect(all).toContain('tokens file reloaded');
    for (const token of [ROBOT_TOKEN, ADMIN_TOKEN, LEAVING_TOKEN]) expect(all).not.toContain(token);
  });
});

describe('without a tokens file', () => {
  it('PolicyService is open and AdminService answers on loopback', async () => {
    const open = await startTestServer({ warmup: false });
    try {
      const client = clientOf(open.address);
      try {
        expect((await client.predict(await robotRequest('anyone'))).modelName).toBe(MODEL);
        expect((await client.getExperiment()).model).toBe(MODEL);
      } finally {
        client.close();
      }
    } finally {
      await open.close();
    }
  });
});
