/**
 * Shadow requests rank below primary ones at the main thread's admission (ModelWorker over a real inference
 * worker thread running dust-tiny): a shadow is shed while a primary request is admitted and not started, and
 * a primary request that finds the queue full takes the place of the newest shadow one, whether that one is
 * still being prepared on this thread or already queued in the worker.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, sliceOf } from '../src/config/index.js';
import { ModelWorker, shapesOf, type JobInput, type JobResult } from '../src/engine/index.js';
import { OverloadedError } from '../src/errors/index.js';
import type { Manifest } from '../src/model/index.js';
import { eventually } from './support/eventually.js';
import { TINY_DIR } from './support/harness.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const s = shapesOf(manifest);
const workers: ModelWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});

/**
 * maxQueue 2 (or `maxQueue`); the worker waits up to 2 s for a VLM batch to fill while another admitted request is
 * still decoding, so queued jobs stay queued a while.
 */
async function start(maxQueue = 2): Promise<ModelWorker> {
  const executor = {
    kind: 'onnxruntime-node' as const,
    maxBatch: 16,
    cudaGraphs: false,
    vlmPath: path.join(TINY_DIR, 'vlm.onnx'),
    denoiserPath: path.join(TINY_DIR, 'denoiser.onnx'),
    device: 'cpu' as const,
    threads: 1,
    capacity: 16,
    shapes: s,
  };
  const worker = await ModelWorker.start({
    executor,
    scheduler: { ...sliceOf(DEFAULT_SERVE_OPTIONS, 'scheduler'), maxQueue, maxQueueDelayMs: 2000 },
    niceness: 0,
  });
  workers.push(worker);
  return worker;
}

function job(i: number): JobInput {
  return {
    requestId: `r${i}`,
    robotId: `robot-${i}`,
    embodimentId: 0,
    pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth),
    inputIds: new BigInt64Array(s.textTokens).fill(2n),
    attentionMask: new BigInt64Array(s.textTokens).fill(1n),
    state: new Float32Array(s.stateDim),
    noise: { actions: new Float32Array(s.horizon * s.actionDim), future: new Float32Array(s.futureTokens * s.futureDim) },
    actionSteps: manifest.sampling.action_steps,
    visionSteps: manifest.sampling.vision_steps,
    budgetMs: 0,
    receivedAt: performance.now(),
    deadline: Infinity,
  };
}

/** Submits a request whose preparation (decoding) ends when `ready` is called. */
function submit(worker: ModelWorker, i: number, priority: 'primary' | 'shadow') {
  let ready!: () => void;
  const prepared = new Promise<void>((resolve) => (ready = resolve));
  const out: { result?: JobResult; error?: unknown } = {};
  const done = worker
    .submit({ receivedAt: performance.now(), deadline: Infinity, actionSteps: manifest.sampling.action_steps, priority }, async () => {
      await prepared;
      return { ...job(i), priority };
    })
    .then(
      (r) => (out.result = r),
      (e: unknown) => (out.error = e),
    );
  return { out, ready, done };
}

const shedReason = (e: unknown) => (e instanceof OverloadedError ? e.reason : String(e));

describe('ModelWorker admission: shadow requests never delay primary ones', () => {
  it('sheds a shadow while a primary one waits; a primary at a full queue takes the place of a shadow still preparing', async () => {
    const worker = await start();
    const s1 = submit(worker, 1, 'shadow');
    const p1 = submit(worker, 2, 'primary');
    const s2 = submit(worker, 3, 'shadow');
    await s2.done;
    expect(shedReason(s2.out.error)).toBe('shadow_shed');
    const p2 = submit(worker, 4, 'primary'); // the queue holds s1 and p1: s1 gives its place
    const p3 = submit(worker, 5, 'primary'); // full of primaries: refused
    await p3.done;
    expect(shedReason(p3.out.error)).toBe('queue_full');
    for (const r of [s1, p1, p2]) r.ready();
    await Promise.all([s1.done, p1.done, p2.done]);
    expect(shedReason(s1.out.error)).toBe('shadow_shed');
    expect(p1.out.result?.actions.length).toBe(s.horizon * s.actionDim);
    expect(p2.out.result?.actions.length).toBe(s.horizon * s.actionDim);
  });

  it('a primary at a full queue takes the place of a shadow already queued in the worker, which never runs', async () => {
    const worker = await start(3);
    // A shadow still decoding keeps the idle worker waiting for its batch to fill (nobody waits when nothing else
    // is coming), and fills the third place of the queue; a primary one would shed the other shadows at admission.
    const decoding = submit(worker, 0, 'shadow');
    const s1 = submit(worker, 1, 'shadow');
    const s2 = submit(worker, 2, 'shadow');
    s1.ready();
    s2.ready();
    // Both in the worker, which waits for its VLM batch to fill.
    await eventually(
      async () => {
        const st = await worker.stats();
        return st.waiting + st.active === 2;
      },
      { what: 'both shadows to reach the worker', intervalMs: 2 },
    );
    const p = submit(worker, 3, 'primary');
    p.ready();
    await s2.done;
    expect(shedReason(s2.out.error)).toBe('shadow_shed');
    decoding.ready();
    await Promise.all([s1.done, p.done, decoding.done]);
    expect(s1.out.result).toBeDefined();
    expect(p.out.result).toBeDefined();
    expect(decoding.out.result).toBeDefined();
    expect((await worker.stats()).completed).toBe(3);
  });
});
