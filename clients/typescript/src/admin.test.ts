/**
 * DustClient's AdminService calls against a stub on a loopback port: requests reach the wire as the proto
 * says, replies come back camelCase, and the token travels as a bearer credential.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SetTrafficSplitRequest__Output } from './gen/dust/serving/v1/SetTrafficSplitRequest.js';
import { DustClient } from './dust-client.js';
import { DustClientError } from './errors.js';
import { clientProtos } from './protos.js';

let server: grpc.Server;
let address: string;
let lastSplit: SetTrafficSplitRequest__Output | undefined;
let lastAuthorization: unknown;

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(clientProtos().admin as unknown as grpc.ServiceDefinition, {
    LoadModel(call: grpc.ServerUnaryCall<{ name: string; version: number }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      lastAuthorization = call.metadata.get('authorization')[0];
      cb(null, { name: call.request.name, version: call.request.version || 3, state: 'MODEL_STATE_READY', reason: '' });
    },
    UnloadModel(call: grpc.ServerUnaryCall<{ name: string; version: number }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      cb({ code: grpc.status.FAILED_PRECONDITION, details: `${call.request.name}@${call.request.version} is the last READY version` });
    },
    SetTrafficSplit(call: grpc.ServerUnaryCall<SetTrafficSplitRequest__Output, unknown>, cb: grpc.sendUnaryData<unknown>) {
      lastSplit = call.request;
      cb(null, {
        name: 'm',
        salt: 'drawn',
        weights: [
          { version: 1, weight: 0.75 },
          { version: 2, weight: 0.25 },
        ],
        control_version: 1,
        sticky_key: 'STICKY_KEY_EPISODE',
        experiment_id: '12',
        new_experiment: true,
      });
    },
    GetExperiment(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      cb(null, {
        name: 'm',
        salt: 's',
        control_version: 1,
        alpha: 0.05,
        experiment_id: '7',
        started_at: '2026-01-01T00:00:00.000Z',
        variants: [
          { version: 1, state: 'MODEL_STATE_READY', weight: 0.5, requests: '10', episodes: '4', successes: '1', decision: 'DECISION_CONTROL' },
          {
            version: 2,
            state: 'MODEL_STATE_UNLOADING',
            weight: 0.5,
            requests: '12',
            robots: '3',
            decision: 'DECISION_CANDIDATE_BETTER',
            always_valid_p_value: 0.01,
          },
        ],
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(() => server.forceShutdown());

describe('DustClient admin calls', () => {
  it('loads a model, sending the token as a bearer credential', async () => {
    const client = new DustClient(address, { token: 'admin-token-0123456789' });
    try {
      expect(await client.loadModel('m')).toEqual({ name: 'm', version: 3, state: 'READY', reason: '' });
      expect(lastAuthorization).toBe('Bearer admin-token-0123456789');
    } finally {
      client.close();
    }
  });

  it('sets a split with every field on the wire', async () => {
    const client = new DustClient(address);
    try {
      const split = await client.setTrafficSplit({
        model: 'm',
        weights: [
          { version: 1, weight: 3 },
          { version: 2, weight: 1 },
        ],
        stickyKey: 'episode',
        salt: 'x',
        shadowVersion: 3,
        shadowFraction: 0.1,
      });
      expect(lastSplit).toMatchObject({ name: 'm', control_version: 0, sticky_key: 'STICKY_KEY_EPISODE', salt: 'x', shadow_version: 3, shadow_fraction: 0.1 });
      expect(lastSplit!.weights).toEqual([
        { version: 1, weight: 3 },
        { version: 2, weight: 1 },
      ]);
      expect(split).toEqual({
        model: 'm',
        salt: 'drawn',
        weights: [
          { version: 1, weight: 0.75 },
          { version: 2, weight: 0.25 },
        ],
        controlVersion: 1,
        stickyKey: 'episode',
        shadowVersion: 0,
        shadowFraction: 0,
        experimentId: 12,
        newExperiment: true,
      });
    } finally {
      client.close();
    }
  });

  it('reads an experiment', async () => {
    const client = new DustClient(address);
    try {
      const e = await client.getExperiment('m');
      expect(e).toMatchObject({
        model: 'm',
        experimentId: 7,
        salt: 's',
        controlVersion: 1,
        alpha: 0.05,
        stickyKey: 'robot',
        startedAt: '2026-01-01T00:00:00.000Z',
      });
      expect(e.variants[0]).toMatchObject({ version: 1, state: 'READY', requests: 10, episodes: 4, successes: 1, decision: 'control' });
      expect(e.variants[1]).toMatchObject({ version: 2, state: 'UNLOADING', robots: 3, decision: 'candidate better', alwaysValidPValue: 0.01 });
    } finally {
      client.close();
    }
  });

  it('rejects with the server status', async () => {
    const client = new DustClient(address);
    try {
      const err = await client.unloadModel('m', 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DustClientError);
      expect((err as DustClientError).codeName).toBe('FAILED_PRECONDITION');
    } finally {
      client.close();
    }
  });
});
