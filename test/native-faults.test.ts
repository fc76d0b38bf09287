/**
 * The native executor's failures, injected on the CPU (docs/architecture.md, "Executors"): device memory that runs
 * out while a bucket's buffers are allocated or its CUDA graph is captured costs that bucket and larger ones, with a
 * warning, and the server keeps serving every batch size; a device that is lost under a run fails the version
 * (FAILED, health NOT_SERVING) and its in-flight requests with UNAVAILABLE, instead of restarting on it.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, expect } from 'vitest';
import { packStepBatch, packVlmBatch } from '../src/engine/batch-packer.js';
import type { Executor } from '../src/engine/executor.js';
import { OnnxExecutor, shapesOf } from '../src/engine/index.js';
import { INJECTED_DEVICE_LOST, withFaults, type FaultHooks } from '../src/engine/fault-injection.js';
import { loadNativeOrt, type NativeOrt } from '../src/engine/native-ort.js';
import { DeviceLostError, NativeExecutor, type NativeExecutorInit } from '../src/engine/native-executor.js';
import type { Manifest } from '../src/model/index.js';
import { initialNoise } from '../src/sampling/index.js';
import { eventually } from './support/eventually.js';
import { predict, predictError, startTestServer, TINY_DIR, validRequest } from './support/harness.js';
import { requireTool } from './support/requires.js';
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const shapes = shapesOf(manifest);
const load = loadNativeOrt();
const addon = requireTool('the native addon', load.ok, load.ok ? '' : `${load.missing}; ${load.fix}`);

const init: NativeExecutorInit = {
  vlmPath: path.join(TINY_DIR, 'vlm.onnx'),
  denoiserPath: path.join(TINY_DIR, 'denoiser.onnx'),
  device: 'cpu',
  threads: 1,
  capacity: 12,
  shapes,
  maxBatch: 8,
  cudaGraphs: true,
};
const VL_ROW_BYTES = shapes.condTokens * shapes.condDim * 4;

const OOM = 'allocating: CUDA failure 2: out of memory ; GPU=0 ; hostname=test ; expr=cudaMalloc(&p, size);';

/** The addon with faults: `allocate` and `run` may throw before reaching it (the worker's device-lost drill uses the same wrapper). */
function faulty(hooks: FaultHooks): NativeOrt {
  return withFaults(load.ok ? load.ort : (undefined as never), hooks);
}

function request(id: number) {
  const s = shapes;
  return {
    pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth).fill((id % 5) / 5),
    inputIds: BigInt64Array.from({ length: s.textTokens }, (_, t) => BigInt((id + t) % 16)),
    attentionMask: new BigInt64Array(s.textTokens).fill(1n),
    state: new Float32Array(s.stateDim).fill(0.1 * (id % 3)),
    embodimentId: 0,
    noise: initialNoise(BigInt(id + 1), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
  };
}

/** 10 rows join and take 2 steps together (more than the largest bucket left), then the results. */
async function tenRows(ex: Executor): Promise<Float32Array[]> {
  const slots = Int32Array.from({ length: 10 }, (_, i) => i);
  await ex.runVlm(
    packVlmBatch(
      Array.from({ length: 10 }, (_, i) => request(i)),
      slots,
      [],
      shapes,
    ),
  );
  const counts = { actionSteps: 1, visionSteps: 2 };
  await ex.step(
    packStepBatch(
      Array.from(slots, (slot) => ({ slot, i: 0, counts })),
      [],
    ),
  );
  const last = await ex.step(
    packStepBatch(
      Array.from(slots, (slot) => ({ slot, i: 1, counts })),
      [],
    ),
  );
  return [last.actions, last.future];
}

const executors: Executor[] = [];
afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
});

async function reference(): Promise<Float32Array[]> {
  const ex = await OnnxExecutor.create(init);
  executors.push(ex);
  return tenRows(ex);
}

const maxDiff = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, k) => Math.max(...x.map((v, j) => Math.abs(v - b[k][j])))));

addon.describe('the native executor when device memory runs out', () => {
  addon.it('drops a bucket whose buffers do not fit, warns, and runs larger steps as several calls', async () => {
    // The staging arena of 8 rows is the first allocation of the largest bucket.
    const ort = faulty({ allocate: (bytes) => (bytes === 8 * VL_ROW_BYTES ? OOM : undefined) });
    const ex = await NativeExecutor.create(init, { ort, forceGraphIds: true });
    executors.push(ex);
    expect(ex.buckets).toEqual([1, 2, 4]);
    const warning = ex.notes.find((n) => n.level === 'warn');
    expect(warning?.message).toMatch(/out of cpu memory allocating its buffers for batch 8: the denoiser runs batches of at most 4 rows/);
    expect(warning?.fields?.error).toMatch(/out of memory/);
    expect(maxDiff(await tenRows(ex), await reference())).toBeLessThanOrEqual(1e-6);
  });

  addon.it('drops a bucket whose CUDA graph capture runs out of memory, and the buckets above it', async () => {
    // Graph ids: 1 + 2 * bucket index (+1 for the staging binding); bucket 4 is index 2.
    const ort = faulty({ run: (id) => (id === 5 ? OOM : undefined) });
    const ex = await NativeExecutor.create(init, { ort, forceGraphIds: true });
    executors.push(ex);
    expect(ex.buckets).toEqual([1, 2]);
    expect(ex.captures.map((c) => `${c.bucket} ${c.mode}`)).toEqual(['1 prefix', '1 staging', '2 prefix', '2 staging']);
    expect(ex.notes.find((n) => n.level === 'warn')?.message).toMatch(/capturing its CUDA graph for batch 4: the denoiser runs batches of at most 2 rows/);
    expect(maxDiff(await tenRows(ex), await reference())).toBeLessThanOrEqual(1e-6);
  });

  addon.it("fails to load with ONNX Runtime's own error when a capture fails for another reason", async () => {
    const ort = faulty({ run: (id) => (id === 3 ? 'run: the graph has nodes on the CPU' : undefined) });
    await expect(NativeExecutor.create(init, { ort, forceGraphIds: true })).rejects.toThrow(/the graph has nodes on the CPU/);
  });

  addon.it('fails to load when even the smallest bucket does not fit', async () => {
    const ort = faulty({ run: (id) => (id === 1 ? OOM : undefined) });
    await expect(NativeExecutor.create(init, { ort, forceGraphIds: true })).rejects.toThrow(/out of memory/);
  });
});

addon.describe("the native executor's check of its CUDA graphs", () => {
  addon.it('checks every captured replay against a regular run and keeps the graphs when they match', async () => {
    const ex = await NativeExecutor.create(init, { ort: faulty({}), forceGraphIds: true, rowOps: 'graphs' });
    executors.push(ex);
    // Per bucket: prefix (denoiser, update) and staging (gather, denoiser, update).
    expect(ex.graphChecks.map((c) => `${c.bucket} ${c.mode} ${c.component}`)).toEqual(
      [1, 2, 4, 8].flatMap((b) => [`${b} prefix denoiser`, `${b} prefix update`, `${b} staging gather`, `${b} staging denoiser`, `${b} staging update`]),
    );
    expect(ex.graphChecks.every((c) => c.ok && c.relL2 === 0)).toBe(true);
    expect(ex.graphsInUse).toBe(true);
    expect(maxDiff(await tenRows(ex), await reference())).toBeLessThanOrEqual(1e-6);
  });

  addon.it('turns the graphs off when one replay differs, names it, and serves the right values', async () => {
    // Graph id 5 is bucket 4's prefix binding: its replays (every run with that id) come back zeroed.
    const ids: (number | undefined)[] = [];
    const ort = faulty({
      corrupt: (id) => {
        ids.push(id);
        return id === 5;
      },
    });
    const ex = await NativeExecutor.create(init, { ort, forceGraphIds: true, rowOps: 'graphs' });
    executors.push(ex);
    expect(ex.graphChecks.filter((c) => !c.ok).map((c) => `${c.bucket} ${c.mode} ${c.component}`)).toEqual(['4 prefix denoiser', '4 prefix update']);
    expect(ex.graphsInUse).toBe(false);
    const warning = ex.notes.find((n) => n.level === 'warn');
    expect(warning?.message).toMatch(/2 of 20 CUDA graph replays differ from regular runs .*: serving without CUDA graphs/);
    ids.length = 0;
    expect(maxDiff(await tenRows(ex), await reference())).toBeLessThanOrEqual(1e-6);
    // After the check every step run says it is a regular one (the VLM's session has no graphs and names no id), so
    // a session made with CUDA graphs captures nothing more.
    expect(ids).toContain(-1);
    expect(ids.filter((id) => id !== undefined && id !== -1)).toEqual([]);
  });

  addon.it('serves the zeroed replays when the check is skipped (what the check prevents)', async () => {
    const ort = faulty({ corrupt: (id) => id !== undefined && id > 0 });
    const ex = await NativeExecutor.create(init, { ort, forceGraphIds: true, verifyGraphs: false });
    executors.push(ex);
    expect(ex.graphChecks).toEqual([]);
    expect(maxDiff(await tenRows(ex), await reference())).toBeGreaterThan(1e-2);
  });
});

addon.describe('the native executor when the device is lost', () => {
  addon.it('reports the lost device and throws DeviceLostError, on a run as on a copy-free call', async () => {
    let lost = false;
    const lostErrors: Error[] = [];
    const ort = faulty({ run: () => (lost ? INJECTED_DEVICE_LOST : undefined) });
    const ex = await NativeExecutor.create({ ...init, cudaGraphs: false }, { ort, onDeviceLost: (err) => lostErrors.push(err) });
    executors.push(ex);
    await ex.runVlm(packVlmBatch([request(1)], Int32Array.of(0), [], shapes));
    lost = true;
    const step = ex.step(packStepBatch([{ slot: 0, i: 0, counts: { actionSteps: 1, visionSteps: 2 } }], []));
    await expect(step).rejects.toBeInstanceOf(DeviceLostError);
    await expect(step).rejects.toThrow(/device failed and cannot be used any more: run: CUDA failure 999/);
    expect(lostErrors).toHaveLength(1);
  });

  addon.it(
    'fails the version under load: in-flight requests get UNAVAILABLE, health goes NOT_SERVING and stays, no restart',
    async () => {
      const s = await startTestServer({ warmup: false });
      const protoLoader = await import('@grpc/proto-loader');
      const { protoPath } = await import('grpc-health-check');
      const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
      const health = new def.grpc.health.v1.Health(s.address, grpc.credentials.createInsecure());
      const statuses: string[] = [];
      const watch = health.Watch({ service: 'dust-tiny@1' });
      watch.on('data', (r: { status: string }) => statuses.push(r.status));
      watch.on('error', () => undefined);
      try {
        const entry = () => s.server.registry.list()[0];
        expect(entry().runtime?.executor).toBe('native');
        await predict(s.client, await validRequest());
        const worker = entry().runtime!.worker;
        // Long requests, so that they are in the denoiser stage when the device goes.
        const inflight = Array.from({ length: 4 }, async (_, i) =>
          predictError(s.client, await validRequest({ robot_id: `robot-${i}`, sampling: { action_steps: 4, vision_steps: 64 } })),
        );
        await eventually(() => worker.stats().then((st) => st.active >= 4), { what: '4 rows in the denoiser stage', timeoutMs: 30_000 });
        worker.injectDeviceLost();
        const errors = await Promise.all(inflight);
        expect(errors.map((e) => grpc.status[e.code])).toEqual(Array(4).fill('UNAVAILABLE'));
        await eventually(() => entry().state === 'FAILED', { what: 'the version FAILED', timeoutMs: 30_000 });
        expect(entry().reason).toMatch(/the cpu device failed: .*CUDA failure 999/);
        await eventually(() => statuses.at(-1) === 'NOT_SERVING', { what: 'health NOT_SERVING', timeoutMs: 10_000 });
        const after = await predictError(s.client, await validRequest());
        expect(after.code).toBe(grpc.status.UNAVAILABLE);
        expect(statuses.at(-1)).toBe('NOT_SERVING');
      } finally {
        watch.cancel();
        health.close();
        await s.close();
      }
    },
    60_000,
  );
});
