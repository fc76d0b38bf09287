/**
 * The native executor (src/engine/native-executor.ts) against the onnxruntime-node executor on the CPU, on the
 * shipped package: the same sequences of VLM calls and steps (rows joining, stepping at their own plans, leaving
 * with the moves the slot table records, scattered subsets gathered through the staging arena, batches padded to
 * buckets and split when larger than the largest) give the same observation embeddings, action chunks and future
 * embeddings within 1e-6. Padding rows and rows left out of a step are other requests' live rows, so any write of
 * a padded or unstepped row would show as a difference in those requests' results.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { OnnxExecutor, shapesOf } from '../src/engine/index.js';
import { packStepBatch, packVlmBatch } from '../src/engine/batch-packer.js';
import type { Executor, StepResult } from '../src/engine/executor.js';
import { loadNativeOrt } from '../src/engine/native-ort.js';
import { NativeExecutor, type NativeExecutorDeps } from '../src/engine/native-executor.js';
import { SlotTable } from '../src/engine/slot-table.js';
import type { Manifest } from '../src/model/index.js';
import { initialNoise, inpaintWeights, type PrefixGuide, type StepCounts } from '../src/sampling/index.js';
import { TINY_DIR } from './support/harness.js';
import { requireTool } from './support/requires.js';

const manifest = JSON.parse(readFileSync(path.join(TINY_DIR, 'manifest.json'), 'utf8')) as Manifest;
const shapes = shapesOf(manifest);
const load = loadNativeOrt();
const addon = requireTool('the native addon', load.ok, load.ok ? '' : `${load.missing}; ${load.fix}`);
const TOLERANCE = 1e-6;
const CAPACITY = 12;

const base = {
  vlmPath: path.join(TINY_DIR, 'vlm.onnx'),
  denoiserPath: path.join(TINY_DIR, 'denoiser.onnx'),
  device: 'cpu' as const,
  threads: 1,
  capacity: CAPACITY,
  shapes,
};

interface Row {
  readonly id: number;
  i: number;
  readonly counts: StepCounts;
  /** Every third request carries a committed prefix (real-time chunking), with its own delay. */
  readonly guide: PrefixGuide | undefined;
}

function guideOf(id: number): PrefixGuide | undefined {
  if (id % 3 !== 1) return undefined;
  const s = shapes;
  const overlap = 4 + (id % 5);
  const target = new Float32Array(s.horizon * s.actionDim);
  for (let j = 0; j < overlap * s.actionDim; j++) target[j] = Math.sin(id + j);
  return { target, weights: inpaintWeights(s.horizon, id % overlap, overlap), noise: request(id).noise.actions, actionDim: s.actionDim };
}

/** A request's inputs, from its id alone. */
function request(id: number) {
  const s = shapes;
  let x = id * 7919 + 1;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const tokens = 5 + (id % 7);
  return {
    pixelValues: Float32Array.from({ length: s.views * 3 * s.imageHeight * s.imageWidth }, next),
    inputIds: BigInt64Array.from({ length: s.textTokens }, (_, t) => (t < tokens ? BigInt((id * 3 + t) % 16) : 0n)),
    attentionMask: BigInt64Array.from({ length: s.textTokens }, (_, t) => (t < tokens ? 1n : 0n)),
    state: Float32Array.from({ length: s.stateDim }, (_, d) => (d < 8 ? next() : 0)),
    embodimentId: 0,
    noise: initialNoise(BigInt(1000 + id), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
  };
}

const COUNTS: readonly StepCounts[] = [
  { actionSteps: 2, visionSteps: 4 },
  { actionSteps: 1, visionSteps: 2 },
  { actionSteps: 2, visionSteps: 2 },
  { actionSteps: 4, visionSteps: 8 },
  { actionSteps: 1, visionSteps: 3 },
];

/** Every output of one scripted session, in call order. */
type Trace = Float32Array[];

/**
 * Rows join in VLM batches and step with the scheduler's bookkeeping (slot table, moves, step plans); `pick`
 * chooses each step's rows (all of them, or a scattered subset).
 */
async function script(ex: Executor, pick: (rows: readonly Row[], call: number) => readonly Row[]): Promise<Trace> {
  const table = new SlotTable<Row>(CAPACITY);
  const trace: Trace = [];
  let nextId = 0;
  const join = async (n: number) => {
    const rows = Array.from({ length: n }, (): Row => ({ id: nextId, i: 0, counts: COUNTS[nextId % COUNTS.length], guide: guideOf(nextId++) }));
    const slots = Int32Array.from(rows.map((r) => table.add(r)));
    const out = await ex.runVlm(
      packVlmBatch(
        rows.map((r) => request(r.id)),
        slots,
        table.takeMoves(),
        shapes,
      ),
    );
    trace.push(out.obsEmbedding);
  };
  const step = async (call: number) => {
    const picked = [...pick(table.values(), call)].sort((a, b) => table.slotOf(a) - table.slotOf(b));
    const batch = packStepBatch(
      picked.map((r) => ({ slot: table.slotOf(r), i: r.i, counts: r.counts, guide: r.guide })),
      table.takeMoves(),
    );
    const out: StepResult = await ex.step(batch);
    trace.push(out.actions, out.future);
    for (const r of picked) r.i++;
    for (const r of picked.filter((r) => r.i === r.counts.visionSteps)) table.remove(r);
  };
  await join(3);
  await step(0);
  await join(4);
  for (let call = 1; call < 4; call++) await step(call);
  await join(5);
  for (let call = 4; table.size > 0; call++) {
    await step(call);
    if (call === 6) await join(2);
  }
  return trace;
}

const all = (rows: readonly Row[]) => rows;
/** The first rows only, on alternate calls: a prefix whose padding rows are other requests' live rows. */
const firstHalf = (rows: readonly Row[], call: number) => (call % 2 === 1 ? rows.slice(0, Math.ceil(rows.length / 2)) : rows);
/** Every other row from the second on: scattered slots, through the staging arena. */
const scattered = (rows: readonly Row[], call: number) => (call % 2 === 1 ? rows.filter((_, k) => k % 2 === 1) : rows);

function expectSame(native: Trace, reference: Trace): void {
  expect(native.length).toBe(reference.length);
  let worst = 0;
  native.forEach((a, k) => {
    expect(a.length, `output ${k}`).toBe(reference[k].length);
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - reference[k][j]));
  });
  expect(worst).toBeLessThanOrEqual(TOLERANCE);
}

const executors: Executor[] = [];
afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
});

async function pair(maxBatch: number, deps: NativeExecutorDeps = {}): Promise<{ native: NativeExecutor; reference: OnnxExecutor }> {
  const native = await NativeExecutor.create({ ...base, maxBatch, cudaGraphs: false }, deps);
  const reference = await OnnxExecutor.create(base);
  executors.push(native, reference);
  return { native, reference };
}

/**
 * Rows gathered by copies and stepped by axpyRows on the host (the CPU's default), and gathered and stepped by the
 * gather and update graphs (what a GPU runs), each against onnxruntime-node.
 */
for (const rowOps of ['host', 'graphs'] as const) {
  addon.describe(
    `the native executor on the CPU, rows through ${rowOps === 'host' ? 'host copies and arithmetic' : 'graphs'}, against onnxruntime-node`,
    () => {
      addon.it('gives the same results when every step takes the whole arena prefix, padded to buckets', async () => {
        const { native, reference } = await pair(8, { rowOps });
        expect(native.buckets).toEqual([1, 2, 4, 8]);
        expectSame(await script(native, all), await script(reference, all));
      });

      addon.it("gives the same results when a step's padding rows are rows it does not step", async () => {
        const { native, reference } = await pair(8, { rowOps });
        expectSame(await script(native, firstHalf), await script(reference, firstHalf));
      });

      addon.it('gives the same results when steps take scattered rows (gathered and scattered back)', async () => {
        const { native, reference } = await pair(8, { rowOps });
        expectSame(await script(native, scattered), await script(reference, scattered));
      });

      addon.it('gives the same results when a step is larger than the largest bucket (run as several calls)', async () => {
        const { native, reference } = await pair(4, { rowOps });
        expectSame(await script(native, all), await script(reference, all));
        expectSame(await script(native, scattered), await script(reference, scattered));
      });
    },
  );
}

addon.describe('the native executor on the CPU, against onnxruntime-node', () => {
  addon.it('gives the same results when it copies through Identity graphs (where CopyTensors cannot reach a device)', async () => {
    const { native, reference } = await pair(4, { copy: 'identity-graphs', rowOps: 'graphs' });
    expect(native.copyPath).toBe('identity-graphs');
    expectSame(await script(native, scattered), await script(reference, scattered));
  });

  addon.it('copies a VLM batch whose slots are not contiguous row by row into the arena', async () => {
    const { native, reference } = await pair(8);
    const run = async (ex: Executor) => {
      const slots = Int32Array.of(5, 2);
      const vlm = await ex.runVlm(packVlmBatch([request(40), request(41)], slots, [], shapes));
      const counts = { actionSteps: 1, visionSteps: 1 };
      const step = await ex.step(
        packStepBatch(
          [
            { slot: 2, i: 0, counts },
            { slot: 5, i: 0, counts },
          ],
          [],
        ),
      );
      return [vlm.obsEmbedding, step.actions, step.future];
    };
    expectSame(await run(native), await run(reference));
  });
});
