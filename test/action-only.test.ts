/**
 * An action-only package (docs/model-package.md, "Action-only packages"): the GR00T-N1 style baseline without a
 * future stream, which the toolchain trains and exports here (`--set denoiser.future_stream=false`), served as
 * dust-tiny@2 beside the shipped DUST package dust-tiny@1 through both executors. Its graphs have no obs_embedding,
 * future, tau_o or v_future: a server that fed or read any of them would fail every request to it. Its responses
 * carry no future embedding or world-model surprise, it takes no vision steps beyond its action steps, and both
 * executors give it the same action chunk for the same seed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, expect } from 'vitest';
import { WebSocket } from 'ws';
import type { ModelVersionInfo__Output } from '@dust-serve/client/gen/dust/serving/v1/ModelVersionInfo';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { packStepBatch, packVlmBatch } from '../src/engine/batch-packer.js';
import type { Executor } from '../src/engine/executor.js';
import { OnnxExecutor, shapesOf } from '../src/engine/index.js';
import { NativeExecutor } from '../src/engine/native-executor.js';
import { parseManifest, type Manifest } from '../src/model/index.js';
import { initialNoise } from '../src/sampling/index.js';
import { floats, predict, predictError, startTestServer, TINY_DIR, validRequest, type TestServer } from './support/harness.js';
import { PYTHON, WITH_NUMPY } from './support/tools.js';

/** Largest |difference| between the two executors' action chunks (float32 sums in another order). */
const TOLERANCE = 1e-5;
const EXECUTORS = ['onnxruntime-node', 'native'] as const;

let repo: string;
let manifest: Manifest;
const servers = new Map<(typeof EXECUTORS)[number], TestServer>();

function toolchain(...args: string[]): void {
  const run = spawnSync(PYTHON, ['-m', 'models.toolchain', ...args], { cwd: path.resolve('.'), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 -m models.toolchain ${args[0]} failed: ${run.stderr}`);
}

beforeAll(async () => {
  if (!WITH_NUMPY.available) return;
  repo = mkdtempSync(path.join(os.tmpdir(), 'dust-action-only-'));
  cpSync(TINY_DIR, path.join(repo, 'dust-tiny', '1'), { recursive: true });
  const checkpoint = path.join(repo, 'ckpt.pt');
  const out = path.join(repo, 'dust-tiny', '2');
  toolchain('train', '--preset', 'tiny', '--steps', '30', '--episodes', '8', '--set', 'denoiser.future_stream=false', '--out', checkpoint, '--threads', '1');
  toolchain('export', '--checkpoint', checkpoint, '--out', out);
  rmSync(checkpoint);
  manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  for (const executor of EXECUTORS) servers.set(executor, await startTestServer({ modelRepository: repo, executor, openpiPort: 0 }));
}, 300_000);
afterAll(async () => {
  await Promise.all([...servers.values()].map((t) => t.close()));
  if (repo) rmSync(repo, { recursive: true, force: true });
});

const request = (over: Partial<PredictRequest>) => validRequest({ return_future_embedding: true, ...over });

WITH_NUMPY.describe('an action-only package beside a DUST package', () => {
  WITH_NUMPY.it('is what the toolchain writes for future_stream=false: no future, N_o = N_A, a cap on the action steps', () => {
    expect(manifest.future).toBeUndefined();
    expect(manifest.architecture.family).toBe('action-only');
    const { action_steps, vision_steps, max_vision_steps } = manifest.sampling;
    expect(vision_steps).toBe(action_steps);
    expect(max_vision_steps).toBeGreaterThan(action_steps);
  });

  for (const executor of EXECUTORS) {
    WITH_NUMPY.describe(`served through the ${executor} executor`, () => {
      const t = () => servers.get(executor)!;

      WITH_NUMPY.it('lists both versions, the action-only one with a future of 0 x 0', async () => {
        const list = await new Promise<{ models: ModelVersionInfo__Output[] }>((resolve, reject) =>
          t().client.ListModels({}, (err, res) => (err ? reject(err) : resolve(res!))),
        );
        const version = (v: number) => list.models.find((m) => m.name === 'dust-tiny' && m.version === v);
        expect(version(2)).toMatchObject({
          state: 'MODEL_STATE_READY',
          future_tokens: 0,
          future_dim: 0,
          default_vision_steps: 4,
          max_vision_steps: manifest.sampling.max_vision_steps,
        });
        expect(version(1)).toMatchObject({ state: 'MODEL_STATE_READY', future_tokens: 16, future_dim: 32 });
      });

      WITH_NUMPY.it('returns an action chunk from version 2 with no future embedding or surprise, and version 1 still returns both', async () => {
        const episode = { robot_id: `robot-${executor}`, episode_id: 'ep-1' };
        const ask = async (model: string) => {
          const first = await predict(t().client, await request({ ...episode, model }));
          const second = await predict(t().client, await request({ ...episode, model, steps_executed: 16 }));
          return { first, second };
        };
        const only = await ask('dust-tiny@2');
        expect(only.first.model_version).toBe(2);
        expect(only.first.actions!.shape).toEqual([16, 8]);
        expect(floats(only.first.actions).every(Number.isFinite)).toBe(true);
        expect(only.first.sampling).toMatchObject({ action_steps: 4, vision_steps: 4 });
        expect(only.first.future_embedding).toBeNull();
        // The second request of an episode is the one a DUST package scores surprise on.
        expect(only.second.future_embedding).toBeNull();
        expect(only.second.world_model_surprise ?? undefined).toBeUndefined();

        const dust = await ask('dust-tiny@1');
        expect(dust.first.future_embedding!.shape).toEqual([16, 32]);
        expect(floats(dust.first.future_embedding)).toHaveLength(16 * 32);
        expect(dust.second.world_model_surprise).toBeGreaterThanOrEqual(0);
      });

      WITH_NUMPY.it('refuses vision steps above the action steps with INVALID_ARGUMENT, saying what vision_steps may be', async () => {
        for (const sampling of [{ vision_steps: 8 }, { action_steps: 2, vision_steps: 4 }]) {
          const err = await predictError(t().client, await request({ model: 'dust-tiny@2', sampling }));
          expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
          expect(err.details).toMatch(/vision_steps \d exceeds action_steps \d: this model has no future stream, so vision_steps is 0 or action_steps/);
          // The same counts are a DUST package's vision steps.
          expect((await predict(t().client, await request({ model: 'dust-tiny@1', sampling }))).sampling!.vision_steps).toBe(sampling.vision_steps);
        }
      });

      WITH_NUMPY.it('serves a request with a latency budget, strict or not, at N_o = N_A whatever N_A', async () => {
        // 8: above the default, within max_vision_steps, which bounds an action-only package's action steps.
        for (const action_steps of [4, 2, 8]) {
          for (const strict_budget of [false, true]) {
            const sampling = { action_steps, latency_budget_ms: 20_000, strict_budget };
            const res = await predict(t().client, await request({ model: 'dust-tiny@2', sampling }));
            expect(res.sampling).toMatchObject({ action_steps, vision_steps: action_steps, budget_ms: 20_000, budget_met: true });
            expect(res.actions!.shape).toEqual([16, 8]);
          }
        }
      });
    });
  }

  WITH_NUMPY.it('gives the same action chunk through both executors for the same seed, and another for another seed', async () => {
    const seeded = async (executor: (typeof EXECUTORS)[number], seed: string) =>
      floats((await predict(servers.get(executor)!.client, await request({ model: 'dust-tiny@2', sampling: { seed } }))).actions);
    const [reference, native, other] = await Promise.all([seeded('onnxruntime-node', '17'), seeded('native', '17'), seeded('native', '18')]);
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    expect(maxDiff(native, reference)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxDiff(other, reference)).toBeGreaterThan(100 * TOLERANCE);
  });

  WITH_NUMPY.it("runs through the native executor's graph path (gather, Euler update, checked CUDA-graph ids) as through onnxruntime-node", async () => {
    // What a GPU runs, forced on the CPU: rows gathered and stepped by the executor's own graphs, each captured id
    // checked against a regular run. The update graph of an action-only package has no future stream.
    const dir = path.join(repo, 'dust-tiny', '2');
    const shapes = shapesOf(parseManifest(manifest, dir));
    const base = {
      vlmPath: path.join(dir, 'vlm.onnx'),
      denoiserPath: path.join(dir, 'denoiser.onnx'),
      device: 'cpu' as const,
      threads: 1,
      capacity: 8,
      shapes,
    };
    const native = await NativeExecutor.create({ ...base, maxBatch: 4, cudaGraphs: true }, { forceGraphIds: true, rowOps: 'graphs' });
    const reference = await OnnxExecutor.create(base);
    const counts = { actionSteps: 2, visionSteps: 2 };
    // Six rows join; all take step 0, then the odd slots (scattered: gathered into the staging arena) and the even
    // ones finish at step 1.
    const run = async (ex: Executor) => {
      const slots = Int32Array.from({ length: 6 }, (_, i) => i);
      const rows = Array.from(slots, (i) => ({
        pixelValues: new Float32Array(shapes.views * 3 * shapes.imageHeight * shapes.imageWidth).fill((i % 5) / 5 - 0.4),
        inputIds: BigInt64Array.from({ length: shapes.textTokens }, (_, t) => BigInt((i + t) % 16)),
        attentionMask: new BigInt64Array(shapes.textTokens).fill(1n),
        state: new Float32Array(shapes.stateDim).fill(0.1 * i),
        embodimentId: 0,
        noise: initialNoise(BigInt(i + 1), shapes.horizon * shapes.actionDim, shapes.futureTokens * shapes.futureDim),
      }));
      const vlm = await ex.runVlm(packVlmBatch(rows, slots, [], shapes));
      await ex.step(
        packStepBatch(
          Array.from(slots, (slot) => ({ slot, i: 0, counts })),
          [],
        ),
      );
      const odd = await ex.step(
        packStepBatch(
          [1, 3, 5].map((slot) => ({ slot, i: 1, counts })),
          [],
        ),
      );
      const even = await ex.step(
        packStepBatch(
          [0, 2, 4].map((slot) => ({ slot, i: 1, counts })),
          [],
        ),
      );
      return { vlm, odd, even };
    };
    try {
      expect(native.graphChecks.length).toBeGreaterThan(0);
      expect(native.graphChecks.filter((c) => !c.ok)).toEqual([]);
      const [got, want] = [await run(native), await run(reference)];
      expect([got.vlm.obsEmbedding.length, got.odd.future.length, got.even.future.length]).toEqual([0, 0, 0]);
      for (const k of ['odd', 'even'] as const) {
        expect(got[k].actions).toHaveLength(3 * shapes.horizon * shapes.actionDim);
        expect(got[k].actions.reduce((m, x, j) => Math.max(m, Math.abs(x - want[k].actions[j])), 0)).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await Promise.all([native.close(), reference.close()]);
    }
  });

  WITH_NUMPY.it('tells an openpi client a future of 0 x 0 and answers it without a future embedding', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${servers.get('onnxruntime-node')!.server.openpiPort}/?model=dust-tiny@2&robot_id=openpi-1`);
    const frames: Buffer[] = [];
    let arrived: () => void = () => {};
    ws.on('message', (data: Buffer) => {
      frames.push(data);
      arrived();
    });
    // A refused upgrade or a closed connection fails the test at once instead of at its timeout.
    const ended = new Promise<never>((_, reject) => {
      ws.once('error', reject);
      ws.once('close', (code: number, reason: Buffer) => reject(new Error(`the connection closed: ${code} ${reason.toString()}`)));
    });
    ended.catch(() => {});
    const next = async () => {
      while (frames.length === 0) await Promise.race([new Promise<void>((resolve) => (arrived = resolve)), ended]);
      // ndarray maps carry their keys as msgpack bin, as openpi_client's packer writes them.
      const text = (k: unknown) => (typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString('utf8'));
      return decode(frames.shift()!, { mapKeyConverter: text, useBigInt64: true }) as Record<string, any>;
    };
    try {
      const meta = await next();
      expect(meta).toMatchObject({ model: 'dust-tiny', version: 2, future_tokens: 0, future_dim: 0 });
      const image = { __ndarray__: true, data: new Uint8Array(64 * 64 * 3).fill(120), dtype: '|u1', shape: [64, 64, 3] };
      const state = new Float32Array([0, 1, 0, -2, 0, 2.5, 0.5, 0.02]);
      ws.send(
        encode({
          'observation/image': image,
          'observation/wrist_image': image,
          'observation/state': { __ndarray__: true, data: new Uint8Array(state.buffer), dtype: '<f4', shape: [8] },
          prompt: 'push the red block left',
        }),
      );
      const reply = await next();
      expect(reply.actions.shape).toEqual([16, 8]);
      expect(reply).not.toHaveProperty('future_embedding');
    } finally {
      ws.close();
    }
  });
});
