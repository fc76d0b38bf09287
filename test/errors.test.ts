/**
 * Every error of docs/api.md's table, against the real server. After each, the server still serves, and
 * a good request sent alongside the bad one is answered normally.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_RESTARTS } from '../src/engine/index.js';
import type { Manifest } from '../src/model/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { floats, predict, predictError, startTestServer, tempRepository, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { eventually } from './support/eventually.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const [embName, emb] = Object.entries(manifest.embodiments)[0];
const request = (over: Partial<PredictRequest> = {}) => validRequest({ embodiment: embName, stateDim: emb.state_dim, ...over });

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ maxMessageBytes: 256 * 1024 });
});
afterAll(async () => {
  await t?.close();
});

/** Sends the bad request together with a good one; checks the code, the details, and the good one. */
async function expectRefused(bad: PredictRequest, code: grpc.status, details: RegExp): Promise<void> {
  const good = await request({ robot_id: 'bystander', sampling: { seed: '3' } });
  const [err, ok] = await Promise.all([predictError(t.client, bad), predict(t.client, good)]);
  expect(grpc.status[err.code]).toBe(grpc.status[code]);
  expect(err.details).toMatch(details);
  expect(floats(ok.actions).every(Number.isFinite)).toBe(true);
  // And the server keeps serving afterwards.
  const after = await predict(t.client, good);
  const a = floats(after.actions);
  expect(Math.max(...floats(ok.actions).map((v, i) => Math.abs(v - a[i])))).toBeLessThanOrEqual(1e-5);
}

describe('INVALID_ARGUMENT', () => {
  it('missing robot_id', async () => expectRefused(await request({ robot_id: '' }), grpc.status.INVALID_ARGUMENT, /robot_id is required/));
  it('missing embodiment', async () => expectRefused(await request({ embodiment: '' }), grpc.status.INVALID_ARGUMENT, /embodiment is required/));
  it('wrong image count', async () => {
    const r = await request();
    await expectRefused({ ...r, images: r.images!.slice(0, 1) }, grpc.status.INVALID_ARGUMENT, /expected 2 images/);
  });
  it('wrong RAW image size', async () => {
    const r = await request();
    const bad = {
      ...r,
      images: [{ camera: 'front', encoding: 'IMAGE_ENCODING_RAW_RGB8' as const, width: 10, height: 10, data: Buffer.alloc(17) }, r.images![1]],
    };
    await expectRefused(bad, grpc.status.INVALID_ARGUMENT, /300/);
  });
  it('unspecified encoding', async () => {
    const r = await request();
    await expectRefused(
      { ...r, images: [{ ...r.images![0], encoding: 'IMAGE_ENCODING_UNSPECIFIED' }, r.images![1]] },
      grpc.status.INVALID_ARGUMENT,
      /encoding/i,
    );
  });
  it('undecodable image', async () => {
    const r = await request();
    const truncated = (r.images![0].data as Buffer).subarray(0, 40);
    await expectRefused({ ...r, images: [{ ...r.images![0], data: truncated }, r.images![1]] }, grpc.status.INVALID_ARGUMENT, /front/);
  });
  it('unknown camera', async () => {
    const r = await request();
    await expectRefused({ ...r, images: [{ ...r.images![0], camera: 'top' }, r.images![1]] }, grpc.status.INVALID_ARGUMENT, /top/);
  });
  it('state length', async () =>
    expectRefused(await request({ state: [1, 2, 3] }), grpc.status.INVALID_ARGUMENT, new RegExp(`expected ${emb.state_dim} values`)));
  it('non-finite state', async () => {
    const state = Array.from({ length: emb.state_dim }, () => 0);
    state[2] = NaN;
    await expectRefused(await request({ state }), grpc.status.INVALID_ARGUMENT, /state\[2\]/);
  });
  it('N_o not a multiple of N_A', async () =>
    expectRefused(await request({ sampling: { action_steps: 4, vision_steps: 6 } }), grpc.status.INVALID_ARGUMENT, /multiple of action_steps/));
  it('steps out of range', async () =>
    expectRefused(await request({ sampling: { action_steps: 4, vision_steps: 4096 } }), grpc.status.INVALID_ARGUMENT, /max_vision_steps/));
  it('malformed model reference', async () => expectRefused(await request({ model: 'dust-tiny@x' }), grpc.status.INVALID_ARGUMENT, /name@version/));
  it('oversized message', async () => {
    const r = await request();
    const big = Buffer.alloc(300 * 1024, 7);
    await expectRefused(
      { ...r, images: [{ camera: 'front', encoding: 'IMAGE_ENCODING_RAW_RGB8', width: 320, height: 320, data: big }, r.images![1]] },
      grpc.status.INVALID_ARGUMENT,
      /limit of 262144/,
    );
  });
});

describe('NOT_FOUND', () => {
  it('unknown model', async () => expectRefused(await request({ model: 'no-such-model' }), grpc.status.NOT_FOUND, /unknown model "no-such-model"/));
  it('unknown version', async () => expectRefused(await request({ model: 'dust-tiny@99' }), grpc.status.NOT_FOUND, /no version 99/));
  it('unknown embodiment', async () => expectRefused(await request({ embodiment: 'hexapod' }), grpc.status.NOT_FOUND, /unknown embodiment "hexapod"/));
});

describe('DEADLINE_EXCEEDED', () => {
  it('a deadline that passes during the request', async () => {
    const good = await request({ robot_id: 'bystander' });
    const [err, ok] = await Promise.all([
      predictError(t.client, await request({ sampling: { action_steps: 1, vision_steps: 64 } }), 3),
      predict(t.client, good),
    ]);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(floats(ok.actions).every(Number.isFinite)).toBe(true);
  });
});

describe('RESOURCE_EXHAUSTED and UNAVAILABLE', () => {
  it('sheds load at once when the queue is full, and serves again once it drains', async () => {
    const s = await startTestServer({ maxQueue: 1, maxVlmBatch: 1, warmup: false });
    try {
      const req = await request({ sampling: { action_steps: 4, vision_steps: 64 } });
      const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => predict(s.client, { ...req, robot_id: `r${i}` })));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as grpc.ServiceError);
      expect(refused.length).toBeGreaterThan(0);
      for (const e of refused) {
        expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(e.details).toMatch(/queue is full/);
      }
      expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
      const after = await predict(s.client, await request());
      expect(floats(after.actions).every(Number.isFinite)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('refuses a corrupt package, keeps serving the good version, and answers UNAVAILABLE for the bad one', async () => {
    const repo = tempRepository([
      { from: TINY_DIR, name: 'dust-tiny', version: 1 },
      { from: TINY_DIR, name: 'dust-tiny', version: 2 },
    ]);
    // Corrupt one byte of version 2's denoiser.
    const g = path.join(repo.root, 'dust-tiny/2/denoiser.onnx');
    const bytes = readFileSync(g);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(g, bytes);
    const s = await startTestServer({ modelRepository: repo.root, warmup: false });
    try {
      const list = await new Promise<any>((resolve, reject) => s.client.ListModels({}, (e, r) => (e ? reject(e) : resolve(r))));
      const v2 = list.models.find((m: any) => m.version === 2);
      expect(v2.state).toBe('MODEL_STATE_FAILED');
      expect(v2.reason).toMatch(/denoiser.onnx has sha256/);
      const pinned = await predictError(s.client, await request({ model: 'dust-tiny@2' }));
      expect(pinned.code).toBe(grpc.status.UNAVAILABLE);
      expect(pinned.details).toMatch(/FAILED/);
      const unpinned = await predict(s.client, await request({ model: 'dust-tiny' }));
      expect(unpinned.model_version).toBe(1);
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('refuses a package whose graphs do not match its manifest', async () => {
    const repo = tempRepository([{ from: TINY_DIR, name: 'dust-tiny', version: 1 }]);
    writeFileSync(
      path.join(repo.root, 'dust-tiny/1/manifest.json'),
      JSON.stringify({ ...manifest, future: { ...manifest.future, dim: manifest.future.dim + 1 } }),
    );
    const s = await startTestServer({ modelRepository: repo.root, warmup: false });
    try {
      const list = await new Promise<any>((resolve, reject) => s.client.ListModels({}, (e, r) => (e ? reject(e) : resolve(r))));
      expect(list.models[0].state).toBe('MODEL_STATE_FAILED');
      expect(list.models[0].reason).toMatch(/graphs do not match the manifest/);
      const err = await predictError(s.client, await request());
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      await s.close();
      repo.remove();
    }
  });

  it('a dead inference thread is replaced under load: in-flight requests get UNAVAILABLE, health dips, then READY again', async () => {
    const s = await startTestServer();
    const protoLoader = await import('@grpc/proto-loader');
    const { protoPath } = await import('grpc-health-check');
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
    const health = new def.grpc.health.v1.Health(s.address, grpc.credentials.createInsecure());
    const statuses: string[] = [];
    const watch = health.Watch({ service: 'dust-tiny@1' });
    watch.on('data', (r: { status: string }) => statuses.push(r.status));
    watch.on('error', () => undefined);
    const codes: grpc.status[] = [];
    let served = 0;
    let stop = false;
    // 8 robots in closed loop, each retrying after an error as a client of a retryable status would.
    const robot = async (i: number) => {
      const req = await request({ robot_id: `robot-${i}`, sampling: { action_steps: 4, vision_steps: 16 } });
      while (!stop) {
        try {
          await predict(s.client, req);
          served++;
        } catch (err) {
          codes.push((err as grpc.ServiceError).code);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const robots = Array.from({ length: 8 }, (_, i) => robot(i));
    try {
      await eventually(() => served >= 20, { what: '20 requests served', timeoutMs: 30_000 });
      const before = s.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.worker;
      before.injectCrash('injected crash');
      const servedAtCrash = served;
      await eventually(() => statuses.includes('NOT_SERVING') && statuses.at(-1) === 'SERVING' && served > servedAtCrash + 20, {
        what: 'NOT_SERVING, SERVING again and 20 more requests served',
        timeoutMs: 30_000,
      });
      stop = true;
      await Promise.all(robots);
      expect(codes.length).toBeGreaterThan(0);
      expect(codes.every((c) => c === grpc.status.UNAVAILABLE)).toBe(true);
      expect(statuses.slice(statuses.indexOf('NOT_SERVING'))).toEqual(['NOT_SERVING', 'SERVING']);
      const after = s.server.registry.resolve({ name: 'dust-tiny', version: 1 });
      expect(after.runtime.worker).not.toBe(before);
      const list = await new Promise<any>((resolve, reject) => s.client.ListModels({}, (e, r) => (e ? reject(e) : resolve(r))));
      expect(list.models[0].state).toBe('MODEL_STATE_READY');
    } finally {
      stop = true;
      await Promise.allSettled(robots);
      watch.cancel();
      health.close();
      await s.close();
    }
  });

  it('a version whose inference thread keeps dying is FAILED', async () => {
    const s = await startTestServer({ warmup: false });
    try {
      const kill = () => {
        s.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.worker.injectCrash('injected crash');
      };
      const state = () => s.server.registry.list()[0];
      for (let i = 0; i <= DEFAULT_MAX_RESTARTS; i++) {
        await eventually(() => state().state === 'READY', { what: `READY before crash ${i + 1}`, timeoutMs: 30_000 });
        kill();
        await eventually(() => state().state !== 'READY', { what: `crash ${i + 1} to be seen`, intervalMs: 5 });
      }
      await eventually(() => state().state !== 'READY' && state().state !== 'LOADING', { what: 'the version to give up', timeoutMs: 30_000 });
      expect(state().state).toBe('FAILED');
      expect(state().reason).toMatch(/stopped 4 times/);
      const err = await predictError(s.client, await request());
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      await s.close();
    }
  });

  it('while draining, new work gets UNAVAILABLE and in-flight work finishes', async () => {
    const s = await startTestServer({ warmup: false, shutdownGraceSeconds: 10 });
    const inflight = predict(s.client, await request({ sampling: { action_steps: 4, vision_steps: 64 } }));
    // Drain only once the request is admitted (in the VLM queue or denoising).
    const worker = s.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.worker;
    await eventually(
      async () => {
        const st = await worker.stats();
        return st.waiting + st.active > 0 || st.completed > 0;
      },
      { what: 'the request to be admitted', intervalMs: 2 },
    );
    const closing = s.server.shutdown('test');
    const late = await predictError(s.client, await request());
    expect(late.code).toBe(grpc.status.UNAVAILABLE);
    // Refused before its images are decoded: an undecodable image does not make it INVALID_ARGUMENT.
    const r = await request();
    const undecodable = await predictError(s.client, {
      ...r,
      images: [{ ...r.images![0], data: (r.images![0].data as Buffer).subarray(0, 40) }, r.images![1]],
    });
    expect(undecodable.code).toBe(grpc.status.UNAVAILABLE);
    const done = await inflight;
    expect(done.sampling!.vision_steps).toBe(64);
    await closing;
    s.client.close();
  });
});
