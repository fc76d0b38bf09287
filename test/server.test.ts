/**
 * The real server on a loopback port with the shipped dust-tiny package: the serving contract of
 * docs/api.md end to end.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/model/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';
import { floats, jpeg, predict, predictError, startTestServer, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { eventually } from './support/eventually.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const embodiments = Object.entries(manifest.embodiments);
const [firstName, first] = embodiments[0];

function request(over: Partial<PredictRequest> = {}) {
  return validRequest({ embodiment: firstName, stateDim: first.state_dim, ...over });
}

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe('Predict', () => {
  it.each(embodiments)('returns a [horizon, action_dim] chunk for %s', async (name, emb) => {
    const res = await predict(t.client, await validRequest({ embodiment: name, stateDim: emb.state_dim }));
    expect(res.model_name).toBe('dust-tiny');
    expect(res.model_version).toBe(1);
    expect(res.actions!.shape).toEqual([manifest.action.horizon, emb.action_dim]);
    const actions = floats(res.actions);
    expect(actions).toHaveLength(manifest.action.horizon * emb.action_dim);
    expect(actions.every(Number.isFinite)).toBe(true);
    // Denormalized into the embodiment's range (actions are clipped to [-1, 1] before denormalizing).
    const { min, max } = emb.normalization.action;
    actions.forEach((v, i) => {
      const d = i % emb.action_dim;
      expect(v).toBeGreaterThanOrEqual(min[d] - 1e-4);
      expect(v).toBeLessThanOrEqual(max[d] + 1e-4);
    });
    expect(res.sampling!.action_steps).toBe(manifest.sampling.action_steps);
    expect(res.sampling!.vision_steps).toBe(manifest.sampling.vision_steps);
    expect(res.request_id).not.toBe('');
    expect(res.timing!.total_ms).toBeGreaterThan(0);
    // Decoding is part of the wait before the VLM call, never more than it.
    expect(res.timing!.preprocess_ms).toBeGreaterThan(0);
    expect(res.timing!.preprocess_ms).toBeLessThanOrEqual(res.timing!.queue_ms + 1e-9);
  });

  // docs/sampling.md: same model, seed, inputs and step counts give the same actions within 1e-5 absolute,
  // whatever else shares the batches (other batch sizes take other GEMM paths in the last bits).
  const expectSameActions = (a: Float32Array, b: Float32Array) => {
    expect(a).toHaveLength(b.length);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThanOrEqual(1e-5);
  };

  it('a seeded request reproduces, alone or batched with others; another seed gives other actions', async () => {
    const req = await request({ sampling: { seed: '12345678901234', action_steps: 4, vision_steps: 8 } });
    const alone = await predict(t.client, req);
    const others = await request({ robot_id: 'other', sampling: { action_steps: 2, vision_steps: 16 } });
    const [a, b, c] = await Promise.all([
      predict(t.client, req),
      predict(t.client, req),
      predict(t.client, { ...req, sampling: { ...req.sampling, seed: '99' } }),
      ...Array.from({ length: 6 }, () => predict(t.client, others)),
    ]);
    expect(a.sampling!.seed).toBe('12345678901234');
    expectSameActions(floats(a.actions), floats(alone.actions));
    expectSameActions(floats(b.actions), floats(alone.actions));
    const diff = Math.max(...floats(c.actions).map((v, i) => Math.abs(v - floats(a.actions)[i])));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('reports the seed it drew when the request had none, and that seed reproduces the result', async () => {
    const res = await predict(t.client, await request());
    const again = await predict(t.client, await request({ sampling: { seed: res.sampling!.seed } }));
    expectSameActions(floats(again.actions), floats(res.actions));
  });

  it('vision_steps 16 with action_steps 4 runs 16 denoiser evaluations', async () => {
    const worker = t.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.worker;
    const before = (await worker.stats()).stepCalls;
    const res = await predict(t.client, await request({ sampling: { action_steps: 4, vision_steps: 16 } }));
    expect(res.sampling!.vision_steps).toBe(16);
    expect((await worker.stats()).stepCalls - before).toBe(16);
  });

  it('with a latency budget, spends it on vision steps and reports the plan; a hopeless budget is judged at once', async () => {
    // A budget no loaded test machine runs out of: with other test files and a training job sharing the two cores,
    // a 2 s budget once bought no vision step (the planner plans with the step times it measured under that load).
    const budgetMs = 20_000;
    const roomy = await predict(t.client, await request({ sampling: { action_steps: 4, latency_budget_ms: budgetMs } }));
    const s = roomy.sampling!;
    expect(s.vision_steps).toBeGreaterThan(4);
    expect(s.vision_steps % 4).toBe(0);
    expect(s.budget_feasible).toBe(true);
    expect(s.budget_met).toBe(true);
    expect(s.planned_total_ms).toBeGreaterThan(0);
    expect(s.planned_total_ms).toBeLessThanOrEqual(budgetMs * 0.8);
    const hopeless = await predict(t.client, await request({ sampling: { action_steps: 4, latency_budget_ms: 1 } }));
    expect(hopeless.sampling).toMatchObject({ vision_steps: 4, budget_feasible: false, budget_met: false, budget_ms: 1 });
    const none = await predict(t.client, await request({ sampling: { action_steps: 4, vision_steps: 4 } }));
    expect(none.sampling).toMatchObject({ budget_feasible: true, budget_met: true, planned_total_ms: 0 });
  });

  it('a strict budget is refused with DEADLINE_EXCEEDED instead of answered late; one that fits is served', async () => {
    await expect(predict(t.client, await request({ sampling: { action_steps: 4, latency_budget_ms: 1, strict_budget: true } }))).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
      details: expect.stringMatching(/strict latency budget/),
    });
    const roomy = await predict(t.client, await request({ sampling: { action_steps: 4, latency_budget_ms: 20_000, strict_budget: true } }));
    expect(roomy.sampling).toMatchObject({ budget_feasible: true, budget_met: true });
    await expect(predict(t.client, await request({ sampling: { action_steps: 4, strict_budget: true } }))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/strict_budget needs a latency_budget_ms/),
    });
  });

  it('outputs depend on the inputs (instruction, images, state)', async () => {
    const seed = { seed: '7' };
    const base = await request({ sampling: seed });
    const variants = await Promise.all([
      predict(t.client, base),
      predict(t.client, { ...base, instruction: 'lift the blue cube' }),
      predict(t.client, { ...base, state: base.state!.map((v) => Number(v) + 0.5) }),
      predict(t.client, {
        ...base,
        images: [{ camera: 'front', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [20, 200, 20]) }, base.images![1]],
      }),
    ]);
    const a0 = floats(variants[0].actions);
    for (const v of variants.slice(1)) {
      const diff = Math.max(...floats(v.actions).map((x, i) => Math.abs(x - a0[i])));
      expect(diff).toBeGreaterThan(1e-4);
    }
  });

  it('returns the future embedding when asked, and world-model surprise from the second request of an episode', async () => {
    const req = await request({ return_future_embedding: true, episode_id: 'ep-1', robot_id: 'robot-surprise' });
    const first = await predict(t.client, req);
    expect(first.future_embedding!.shape).toEqual([manifest.future.tokens, manifest.future.dim]);
    expect(floats(first.future_embedding)).toHaveLength(manifest.future.tokens * manifest.future.dim);
    expect(first.world_model_surprise ?? undefined).toBeUndefined();
    const second = await predict(t.client, req);
    expect(second.world_model_surprise).toBeGreaterThanOrEqual(0);
    expect(second.world_model_surprise).toBeLessThanOrEqual(2);
    const noFuture = await predict(t.client, await request());
    expect(noFuture.future_embedding).toBeNull();
  });

  it("keeps world-model surprise per robot: another robot sending the same episode_id neither gets one on its first request nor changes the first robot's", async () => {
    const seed = { seed: '424242' };
    const a = await request({ episode_id: 'shared-episode', robot_id: 'robot-a', sampling: seed });
    // Robot B sees other frames: its predicted future is far from A's.
    const b = await request({
      episode_id: 'shared-episode',
      robot_id: 'robot-b',
      sampling: seed,
      images: [
        { camera: 'front', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [10, 220, 10]) },
        { camera: 'wrist', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [240, 240, 240]) },
      ],
    });
    expect((await predict(t.client, a)).world_model_surprise ?? undefined).toBeUndefined();
    const alone = (await predict(t.client, a)).world_model_surprise;
    expect(alone).toBeGreaterThanOrEqual(0);
    expect((await predict(t.client, b)).world_model_surprise ?? undefined).toBeUndefined();
    // A's next request scores against A's own last prediction, as if B had not called: the same inputs and seed
    // give the same prediction and observation, so the same surprise (within the batching tolerance).
    const after = (await predict(t.client, a)).world_model_surprise;
    expect(Math.abs(after! - alone!)).toBeLessThan(1e-3);
    // And B's episode goes on by itself.
    expect((await predict(t.client, b)).world_model_surprise).toBeGreaterThanOrEqual(0);
  });

  it('scores world-model surprise only when the robot executed the whole previous chunk (or does not say)', async () => {
    const req = await request({ episode_id: 'ep-partial', robot_id: 'robot-partial' });
    await predict(t.client, req);
    const partial = await predict(t.client, { ...req, steps_executed: manifest.action.horizon - 1 });
    expect(partial.world_model_surprise ?? undefined).toBeUndefined();
    const whole = await predict(t.client, { ...req, steps_executed: manifest.action.horizon });
    expect(whole.world_model_surprise).toBeGreaterThanOrEqual(0);
    const unknown = await predict(t.client, req);
    expect(unknown.world_model_surprise).toBeGreaterThanOrEqual(0);
  });

  it('accepts PNG and RAW_RGB8 images and any camera order', async () => {
    const base = await request({ sampling: { seed: '5' } });
    const raw = Buffer.alloc(32 * 48 * 3, 120);
    const res = await predict(t.client, {
      ...base,
      images: [
        { camera: 'wrist', encoding: 'IMAGE_ENCODING_RAW_RGB8', width: 32, height: 48, data: raw },
        {
          camera: 'front',
          encoding: 'IMAGE_ENCODING_PNG',
          data: await (
            await import('sharp')
          )
            .default(await jpeg(80, 60, [1, 2, 3]))
            .png()
            .toBuffer(),
        },
      ],
    });
    expect(floats(res.actions).every(Number.isFinite)).toBe(true);
  });
});

describe('StreamPredict', () => {
  it('carries 100 requests on one stream, answered in order, on one model version', async () => {
    const call = t.client.StreamPredict();
    const responses: PredictResponse__Output[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: PredictResponse__Output) => responses.push(r));
      call.on('end', resolve);
      call.on('error', reject);
    });
    const base = await request({ robot_id: 'streamer' });
    for (let i = 0; i < 100; i++) {
      call.write({ ...base, request_id: `s-${i}`, sampling: { action_steps: i % 2 ? 2 : 4, vision_steps: i % 3 ? 4 : 8 } });
    }
    call.end();
    await done;
    expect(responses.map((r) => r.request_id)).toEqual(Array.from({ length: 100 }, (_, i) => `s-${i}`));
    expect(new Set(responses.map((r) => `${r.model_name}@${r.model_version}`)).size).toBe(1);
  });

  it('ends the stream with the status of a bad request, naming it', async () => {
    const call = t.client.StreamPredict();
    const base = await request({ robot_id: 'streamer-2' });
    const got: string[] = [];
    const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
      call.on('data', (r: PredictResponse__Output) => got.push(r.request_id));
      call.on('error', resolve);
      call.on('end', () => reject(new Error('stream ended without error')));
      call.write({ ...base, request_id: 'ok-1' });
      call.write({ ...base, request_id: 'bad-2', state: [1, 2] });
      call.end();
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/state/);
    expect(got).toEqual(['ok-1']);
  });
});

describe('ListModels and health', () => {
  it('lists dust-tiny as READY with its embodiments and shapes', async () => {
    const res = await new Promise<any>((resolve, reject) => t.client.ListModels({}, (e, r) => (e ? reject(e) : resolve(r))));
    const tiny = res.models.find((m: any) => m.name === 'dust-tiny' && m.version === 1);
    expect(tiny.state).toBe('MODEL_STATE_READY');
    expect(tiny.cameras).toEqual(manifest.cameras);
    expect(tiny.embodiments.map((e: any) => e.name).sort()).toEqual(Object.keys(manifest.embodiments).sort());
    expect(tiny.action_horizon).toBe(manifest.action.horizon);
    expect(tiny.device).toBe('cpu');
    expect(res.default_model).toBe('dust-tiny');
  });

  it('answers health for the server and for each model', async () => {
    const { loadPackageDefinition } = grpc;
    const protoLoader = await import('@grpc/proto-loader');
    const { protoPath } = await import('grpc-health-check');
    const def = loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
    const health = new def.grpc.health.v1.Health(t.address, grpc.credentials.createInsecure());
    const check = (service: string) => new Promise<any>((resolve, reject) => health.Check({ service }, (e: any, r: any) => (e ? reject(e) : resolve(r))));
    expect((await check('')).status).toBe('SERVING');
    expect((await check('dust.serving.v1.PolicyService')).status).toBe('SERVING');
    expect((await check('dust-tiny')).status).toBe('SERVING');
    expect((await check('dust-tiny@1')).status).toBe('SERVING');
    await expect(check('no-such-model')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    health.close();
  });
});

describe('the event loop stays free while inference is saturated', () => {
  it('answers health checks while a flood of 64-step requests runs', async () => {
    const protoLoader = await import('@grpc/proto-loader');
    const { protoPath } = await import('grpc-health-check');
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
    const health = new def.grpc.health.v1.Health(t.address, grpc.credentials.createInsecure());
    const heavy = await request({ sampling: { action_steps: 1, vision_steps: 64 } });
    let floodDone = false;
    const flood = Promise.all(Array.from({ length: 48 }, (_, i) => predict(t.client, { ...heavy, robot_id: `flood-${i}` }))).then(() => {
      floodDone = true;
    });
    const worker = t.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.worker;
    await eventually(
      async () => {
        const st = await worker.stats();
        return st.waiting + st.active > 0;
      },
      { what: 'the flood to reach the inference thread', intervalMs: 2 },
    );
    const checks: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await new Promise<any>((resolve, reject) => health.Check({ service: '' }, (e: any, res: any) => (e ? reject(e) : resolve(res))));
      checks.push(r.status === 'SERVING' && !floodDone);
    }
    expect(checks.some(Boolean)).toBe(true);
    await flood;
    health.close();
  });
});
