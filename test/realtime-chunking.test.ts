/**
 * Real-time chunking through the real server (docs/api.md, "Real-time chunking"; docs/sampling.md): a request
 * carrying the robot's committed prefix gets a chunk that continues it, shares denoiser batches with rows
 * without one or with other delays, and stays reproducible by its seed; on both executors.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { actionRows, DustClient, RealtimeChunker, type PredictResult } from '@dust-serve/client';
import type { Manifest } from '../src/model/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { CommittedPrefix } from '@dust-serve/client/gen/dust/serving/v1/CommittedPrefix';
import { floats, predict, predictError, startTestServer, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { chunkModel, servedAmid, tensor } from './support/chunks.js';

const EMBODIMENT = 'franka_fr3';
const { manifest, emb, H, DIM, gap } = chunkModel(path.join(TINY_DIR, 'manifest.json'), EMBODIMENT);
const STEPS = { action_steps: 4, vision_steps: 8 };

for (const executor of ['onnxruntime-node', 'native'] as const) {
  describe(`real-time chunking on the ${executor} executor`, () => {
    let t: TestServer;
    /** A chunk the server made: the robot's committed actions are the rest of it. */
    let previous: Float32Array;
    beforeAll(async () => {
      t = await startTestServer({ executor });
      previous = floats((await predict(t.client, await request({ sampling: { ...STEPS, seed: '7' } }))).actions);
    });
    afterAll(async () => {
      await t?.close();
    });

    const request = (over: Partial<PredictRequest> = {}) => validRequest({ embodiment: EMBODIMENT, stateDim: emb.state_dim, ...over });
    /** The last `L` actions of the previous chunk (the robot executed the rest), with delay d. */
    const prefix = (L: number, over: Partial<CommittedPrefix> = {}): CommittedPrefix => ({
      actions: tensor(L, previous.slice((H - L) * DIM)),
      delay_steps: 3,
      ...over,
    });

    it('continues the committed actions: the first d equal them, the response says the method and delay', async () => {
      const res = await predict(t.client, await request({ sampling: { ...STEPS, seed: '11' }, prefix: prefix(8) }));
      expect(res.chunking).toEqual({ method: 'CHUNKING_METHOD_INPAINT', delay_steps: 3, delay_estimated: false, prefix_length: 8 });
      const committed = previous.slice((H - 8) * DIM);
      // Normalized and denormalized again in float32: equal up to rounding.
      expect(gap(floats(res.actions), committed, 0, 3)).toBeLessThan(1e-5);
      const free = await predict(t.client, await request({ sampling: { ...STEPS, seed: '11' } }));
      expect(free.chunking).toBeNull();
      // Without the prefix the same noise gives another start: the test would pass vacuously otherwise.
      expect(gap(floats(free.actions), committed, 0, 3)).toBeGreaterThan(1e-3);
      // The soft overlap is pulled towards the prefix.
      expect(gap(floats(res.actions), committed, 3, 5)).toBeLessThan(gap(floats(free.actions), committed, 3, 5));
    });

    it('reproduces a seeded request with its prefix, whatever shares its batches (rows without one, other delays)', async () => {
      const req = await request({ sampling: { ...STEPS, seed: '123' }, prefix: prefix(10, { delay_steps: 4 }) });
      const others = [
        await request({ robot_id: 'plain', sampling: { action_steps: 2, vision_steps: 8 } }),
        await request({ robot_id: 'late', sampling: STEPS, prefix: prefix(6, { delay_steps: 1 }) }),
        await request({ robot_id: 'ens', sampling: STEPS, prefix: prefix(6, { method: 'CHUNKING_METHOD_ENSEMBLE' }) }),
      ];
      const [alone, a, b] = await servedAmid(t.client, req, others);
      expect(gap(a, alone, 0, H)).toBeLessThanOrEqual(1e-5);
      expect(gap(b, alone, 0, H)).toBeLessThanOrEqual(1e-5);
    });

    it('naive switching samples as without a prefix; ensembling averages the overlap with it', async () => {
      const sampling = { ...STEPS, seed: '21' };
      const free = floats((await predict(t.client, await request({ sampling }))).actions);
      const naive = await predict(t.client, await request({ sampling, prefix: prefix(8, { method: 'CHUNKING_METHOD_NAIVE' }) }));
      expect(naive.chunking!.method).toBe('CHUNKING_METHOD_NAIVE');
      expect(gap(floats(naive.actions), free, 0, H)).toBeLessThanOrEqual(1e-5);
      const ens = floats((await predict(t.client, await request({ sampling, prefix: prefix(8, { method: 'CHUNKING_METHOD_ENSEMBLE' }) }))).actions);
      const committed = previous.slice((H - 8) * DIM);
      expect(gap(ens, committed, 0, 3)).toBeLessThan(1e-5);
      const mean = free.map((v, j) => (j < 8 * DIM ? (v + committed[j]) / 2 : v));
      expect(gap(ens, mean, 3, H)).toBeLessThan(1e-5);
    });

    it('lists the methods the package supports in ListModels (all three: its manifest says nothing)', async () => {
      const client = new DustClient(t.address);
      try {
        const tiny = (await client.listModels()).models.find((m) => m.name === 'dust-tiny')!;
        expect(tiny.realtimeChunking).toEqual(['inpaint', 'naive', 'ensemble']);
      } finally {
        client.close();
      }
    });

    it('refuses a malformed prefix before admission with INVALID_ARGUMENT saying what to fix', async () => {
      const cases: Array<[CommittedPrefix, RegExp]> = [
        [{ actions: tensor(2, new Float32Array(2 * (DIM - 1))), delay_steps: 0 }, /shape \[L, 8\]/],
        [{ actions: tensor(2, new Float32Array(2 * DIM).fill(Number.POSITIVE_INFINITY)), delay_steps: 0 }, /must be finite/],
        [prefix(2, { delay_steps: 3 }), /delay_steps 3 exceeds the prefix length 2/],
        [{ actions: tensor(2, new Float32Array(2 * DIM)) }, /control_period_ms > 0/],
      ];
      for (const [p, message] of cases) {
        const err = await predictError(t.client, await request({ prefix: p }));
        expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.details).toMatch(message);
      }
    });

    it("estimates a stream's delay from its control period and measured latency (the TypeScript client)", async () => {
      const client = new DustClient(t.address);
      const stream = client.stream();
      try {
        const committed = Array.from({ length: 8 }, (_, i) => Array.from(previous.subarray((H - 8 + i) * DIM, (H - 7 + i) * DIM)));
        const base = {
          robotId: 'streamer',
          embodiment: EMBODIMENT,
          images: (await request()).images!.map((im) => ({ camera: im.camera!, encoding: 'jpeg' as const, data: im.data as Buffer })),
          state: new Array(emb.state_dim).fill(0.1),
          instruction: 'push',
        };
        const first = await stream.send({ ...base, prefix: { actions: committed, controlPeriodMs: 1 } });
        // No measurement yet: the whole prefix is frozen.
        expect(first.chunking).toEqual({ method: 'inpaint', delaySteps: 8, delayEstimated: true, prefixLength: 8 });
        // With a period far above any latency here, the measured latency is under one control step.
        const second = await stream.send({ ...base, prefix: { actions: committed, controlPeriodMs: 60_000 } });
        expect(second.chunking).toEqual({ method: 'inpaint', delaySteps: 1, delayEstimated: true, prefixLength: 8 });
      } finally {
        stream.end();
        client.close();
      }
    });

    it('RealtimeChunker in a 10 ms control loop: row 0 of every new chunk is the action executed at its observation', async () => {
      const client = new DustClient(t.address);
      const stream = client.stream();
      try {
        const images = (await request()).images!.map((im) => ({ camera: im.camera!, encoding: 'jpeg' as const, data: im.data as Buffer }));
        const rtc = new RealtimeChunker(stream, { execute: 4, controlPeriodMs: 1e6 });
        let tick = 0;
        const observed: number[] = [];
        const executed = new Map<number, Float32Array>();
        const results: PredictResult[] = [];
        const observe = () => {
          observed.push(tick);
          return { robotId: 'rtc-loop', embodiment: EMBODIMENT, images, state: new Array(emb.state_dim).fill(0.1), instruction: 'push' };
        };
        while (results.filter((r) => r.chunking).length < 4 && tick < 3000) {
          const before = rtc.lastResult;
          const a = rtc.action(observe);
          if (rtc.lastResult !== before) results.push(rtc.lastResult!);
          if (a) executed.set(tick, a);
          tick++;
          await sleep(10);
        }
        // An answer later than the old chunk's last row finds nothing to commit: the next request goes without a prefix.
        const continued = results.flatMap((r, i) => (r.chunking ? [{ r, at: observed[i] }] : []));
        expect(continued).toHaveLength(4);
        for (const { r, at } of continued) {
          expect(r.chunking).toEqual({ method: 'inpaint', delaySteps: 1, delayEstimated: true, prefixLength: r.chunking!.prefixLength });
          const first = actionRows(r)[0];
          executed.get(at)!.forEach((v, j) => expect(first[j]).toBeCloseTo(v, 4));
        }
        expect(rtc.switches).toBe(results.length - 1);
      } finally {
        stream.end();
        client.close();
      }
    });
  });
}
