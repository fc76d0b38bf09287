/**
 * The serving engine (scheduler + ONNX executor, step-level batching with mixed q) against the reference
 * sampler of src/sampling, which the golden vectors pin to the PyTorch reference: every request batched
 * with others at other steps gets what it would get alone, within docs/sampling.md's 1e-5.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, sliceOf } from '../src/config/index.js';
import { OnnxExecutor, Scheduler, shapesOf, systemClock, type JobInput } from '../src/engine/index.js';
import type { Manifest } from '../src/model/index.js';
import { GaussianNoise, initialNoise, sampleJoint } from '../src/sampling/index.js';
import { TINY_DIR } from './support/harness.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const s = shapesOf(manifest);
let executor: OnnxExecutor;
let vlm: ort.InferenceSession;
let denoiser: ort.InferenceSession;

beforeAll(async () => {
  const init = {
    vlmPath: path.join(TINY_DIR, 'vlm.onnx'),
    denoiserPath: path.join(TINY_DIR, 'denoiser.onnx'),
    device: 'cpu' as const,
    threads: 1,
    capacity: 16,
    shapes: s,
  };
  executor = await OnnxExecutor.create(init);
  vlm = await ort.InferenceSession.create(init.vlmPath, { intraOpNumThreads: 1 });
  denoiser = await ort.InferenceSession.create(init.denoiserPath, { intraOpNumThreads: 1 });
});
afterAll(async () => {
  await executor?.close();
  await vlm?.release();
  await denoiser?.release();
});

function job(i: number, actionSteps: number, visionSteps: number, embodimentId: number): JobInput {
  const g = new GaussianNoise(BigInt(1000 + i));
  const pixelValues = g.fill(new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth)).map((v) => Math.max(-1, Math.min(1, v / 2)));
  const inputIds = new BigInt64Array(s.textTokens);
  const attentionMask = new BigInt64Array(s.textTokens);
  for (let t = 0; t < 3 + i; t++) {
    inputIds[t] = BigInt(2 + ((i * 7 + t) % 10));
    attentionMask[t] = 1n;
  }
  const state = new Float32Array(s.stateDim);
  for (let d = 0; d < 6; d++) state[d] = Math.sin(i + d);
  return {
    requestId: `g${i}`,
    robotId: `robot-${i}`,
    embodimentId,
    pixelValues,
    inputIds,
    attentionMask,
    state,
    noise: initialNoise(BigInt(i), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
    actionSteps,
    visionSteps,
    budgetMs: 0,
    receivedAt: performance.now(),
    deadline: Infinity,
  };
}

async function reference(j: JobInput) {
  const [B, V, H, W, L] = [1, s.views, s.imageHeight, s.imageWidth, s.textTokens];
  const cond = await vlm.run({
    pixel_values: new ort.Tensor('float32', j.pixelValues, [B, V, 3, H, W]),
    input_ids: new ort.Tensor('int64', j.inputIds, [B, L]),
    attention_mask: new ort.Tensor('int64', j.attentionMask, [B, L]),
  });
  return sampleJoint(
    async (a, o, tauA, tauO) => {
      const out = await denoiser.run({
        vl_embs: cond.vl_embs,
        state: new ort.Tensor('float32', j.state, [1, s.stateDim]),
        actions: new ort.Tensor('float32', Float32Array.from(a), [1, s.horizon, s.actionDim]),
        future: new ort.Tensor('float32', Float32Array.from(o), [1, s.futureTokens, s.futureDim]),
        tau_a: new ort.Tensor('float32', Float32Array.of(tauA), [1]),
        tau_o: new ort.Tensor('float32', Float32Array.of(tauO), [1]),
        embodiment_id: new ort.Tensor('int64', BigInt64Array.of(BigInt(j.embodimentId)), [1]),
      });
      return { vActions: out.v_actions.data as Float32Array, vFuture: out.v_future.data as Float32Array };
    },
    j.noise.actions,
    j.noise.future,
    { actionSteps: j.actionSteps, visionSteps: j.visionSteps },
  );
}

const maxDiff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

describe('the engine against the reference sampler', () => {
  it('requests batched together at different steps and q each match their own reference within 1e-5', async () => {
    const scheduler = new Scheduler(executor, systemClock, { ...sliceOf(DEFAULT_SERVE_OPTIONS, 'scheduler'), maxQueueDelayMs: 5, maxDenoiseBatch: 4 });
    const specs: Array<[number, number, number]> = [
      [4, 4, 0],
      [4, 16, 1],
      [2, 8, 0],
      [1, 3, 1],
      [4, 64, 0],
      [2, 2, 1],
    ];
    const jobs = specs.map(([na, no, e], i) => job(i, na, no, e));
    // Copies: the scheduler owns the buffers it is given.
    const refs = await Promise.all(jobs.map((j) => reference(structuredClone(j))));
    const results = await Promise.all(jobs.map((j) => scheduler.submit(j)));
    results.forEach((r, i) => {
      expect(r.visionSteps).toBe(specs[i][1]);
      expect(maxDiff(r.actions, refs[i].actions), `request ${i} actions`).toBeLessThanOrEqual(1e-5);
      expect(maxDiff(r.future, refs[i].future), `request ${i} future`).toBeLessThanOrEqual(1e-5);
    });
    // They really were batched across steps: more rows per call than one, fewer calls than steps.
    const st = scheduler.stats();
    expect(st.meanStepBatch).toBeGreaterThan(1);
    expect(st.stepCalls).toBeLessThan(specs.reduce((n, [, no]) => n + no, 0));
  });
});
