import * as grpc from '@grpc/grpc-js';
import { service as healthDefinition } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { HealthService } from './health-service.js';

const health = new HealthService({ '': 'SERVING', model: 'NOT_SERVING' });
const server = new grpc.Server();
let client: grpc.Client;

beforeAll(async () => {
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});
afterAll(() => {
  client.close();
  server.forceShutdown();
});

type Status = { status: string };
function check(service: string): Promise<Status> {
  const m = healthDefinition.Check;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize as (b: Buffer) => Status,
      { service },
      (e: grpc.ServiceError | null, r?: Status) => (e ? reject(e) : resolve(r!)),
    ),
  );
}
function watch(service: string): { call: grpc.ClientReadableStream<Status>; seen: string[]; next(n: number): Promise<void> } {
  const m = healthDefinition.Watch;
  const call = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => Status, { service }, {});
  const seen: string[] = [];
  const waiting: Array<[number, () => void]> = [];
  call.on('data', (s: Status) => {
    seen.push(s.status);
    for (const [n, resolve] of waiting) if (seen.length >= n) resolve();
  });
  call.on('error', () => undefined);
  return { call, seen, next: (n) => new Promise((resolve) => (seen.length >= n ? resolve() : waiting.push([n, resolve]))) };
}

describe('HealthService', () => {
  it('Check answers known services and NOT_FOUND, quoting the name, for others', async () => {
    expect((await check('')).status).toBe('SERVING');
    expect((await check('model')).status).toBe('NOT_SERVING');
    await expect(check('no\nsuch')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'health status unknown for service "no\\nsuch"' });
  });

  it('Watch sends the current status, then every change; an unknown service first gets SERVICE_UNKNOWN', async () => {
    const w = watch('later');
    await w.next(1);
    health.setStatus('later', 'SERVING');
    health.setStatus('later', 'SERVING');
    health.setStatus('later', 'NOT_SERVING');
    await w.next(3);
    expect(w.seen).toEqual(['SERVICE_UNKNOWN', 'SERVING', 'NOT_SERVING']);
    w.call.cancel();
  });

  it('forgets a watched name once its last watch ends, so unique names cannot grow the server', async () => {
    const settled = async (n: number) => {
      await eventually(() => health.watchedServices === n, { what: `${n} watched services`, timeoutMs: 2_000 });
      return health.watchedServices;
    };
    expect(await settled(0)).toBe(0);
    const watches = Array.from({ length: 200 }, (_, i) => watch(`unique-${i}`));
    await Promise.all(watches.map((w) => w.next(1)));
    expect(health.watchedServices).toBe(200);
    for (const w of watches) w.call.cancel();
    expect(await settled(0)).toBe(0);
  });

  it('List gives every status', async () => {
    const m = healthDefinition.List;
    const res = await new Promise<{ statuses: Record<string, Status> }>((resolve, reject) =>
      client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize as (b: Buffer) => { statuses: Record<string, Status> },
        {},
        (e: grpc.ServiceError | null, r?: { statuses: Record<string, Status> }) => (e ? reject(e) : resolve(r!)),
      ),
    );
    expect(res.statuses['']).toEqual({ status: 'SERVING' });
    expect(res.statuses.model).toEqual({ status: 'NOT_SERVING' });
  });
});
