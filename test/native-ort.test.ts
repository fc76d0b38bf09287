/**
 * The native addon's primitives (src/engine/native-ort.ts) on the CPU, against onnxruntime-node on the shipped
 * package (models/dust-tiny/1): the same ONNX Runtime library answers both, the denoiser through I/O binding on
 * addon buffers gives onnxruntime-node's outputs exactly, copies move bytes, and every misuse is a JavaScript
 * exception with ONNX Runtime's code, never a crash of the process.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect } from 'vitest';
import { isOrtError, loadNativeOrt, type NativeOrt, type NativeSession } from '../src/engine/native-ort.js';
import { onnxRuntimeVersion } from '../src/engine/device-probe.js';
import { applyStep } from '../src/sampling/index.js';
import { requireTool } from './support/requires.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const denoiserPath = join(root, 'models', 'dust-tiny', '1', 'denoiser.onnx');
const load = loadNativeOrt();
const addon = requireTool('the native addon', load.ok, load.ok ? '' : `${load.missing}; ${load.fix}`);

const B = 3;
const SHAPES: Record<string, number[]> = {
  vl_embs: [B, 48, 128],
  state: [B, 64],
  actions: [B, 16, 32],
  future: [B, 16, 32],
  tau_a: [B],
  tau_o: [B],
  embodiment_id: [B],
};
const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function inputs(): Record<string, Float32Array | BigInt64Array> {
  let x = 7;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Object.fromEntries(
    Object.entries(SHAPES).map(([name, shape]) => [
      name,
      name === 'embodiment_id'
        ? new BigInt64Array(count(shape))
        : Float32Array.from({ length: count(shape) }, () => (name.startsWith('tau') ? (next() + 1) / 2 : next())),
    ]),
  );
}

addon.describe('the native addon on the CPU', () => {
  let native: NativeOrt;
  let session: NativeSession;
  let reference: ort.InferenceSession;

  beforeAll(async () => {
    if (!load.ok) return;
    native = load.ort;
    session = new native.Session(denoiserPath, { device: 'cpu', threads: 1 });
    reference = await ort.InferenceSession.create(denoiserPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  });
  afterAll(async () => {
    session?.release();
    await reference?.release();
  });

  addon.it("runs onnxruntime-node's own ONNX Runtime, whose API version its header was compiled for", () => {
    expect(load.ok && load.version).toBe(onnxRuntimeVersion());
    const header = readFileSync(join(root, 'native', 'include', 'onnxruntime', 'onnxruntime_c_api.h'), 'utf8');
    const apiVersion = Number(/#define ORT_API_VERSION (\d+)/.exec(header)?.[1]);
    expect(apiVersion).toBe(Number(onnxRuntimeVersion().split('.')[1]));
  });

  addon.it("reports the graph's inputs and outputs as onnxruntime-node does", () => {
    const meta = (list: readonly ort.InferenceSession.ValueMetadata[]) =>
      list.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor', shape: m.isTensor ? [...m.shape] : [] }));
    expect(session.inputs()).toEqual(meta(reference.inputMetadata));
    expect(session.outputs()).toEqual(meta(reference.outputMetadata));
    expect(session.device).toBe('cpu');
  });

  addon.it("gives onnxruntime-node's outputs exactly, read from host arrays and written into its own buffers", async () => {
    const data = inputs();
    const feeds = Object.fromEntries(
      Object.entries(data).map(([name, a]) => [name, new ort.Tensor(a instanceof BigInt64Array ? 'int64' : 'float32', a, SHAPES[name])]),
    );
    const expected = await reference.run(feeds);

    const len = count(SHAPES.actions);
    const out = new native.Buffer(session, 2 * len * 4);
    const vA = new native.Value(out, 0, 'float32', SHAPES.actions);
    const vO = new native.Value(out, len * 4, 'float32', SHAPES.future);
    const views = Object.fromEntries(
      Object.entries(data).map(([name, a]) => [name, new native.Value(a, 0, a instanceof BigInt64Array ? 'int64' : 'float32', SHAPES[name])]),
    );
    session.run(views, { v_actions: vA, v_future: vO });
    const host = new Float32Array(2 * len);
    native.copy([
      [vA, new native.Value(host.subarray(0, len), 0, 'float32', SHAPES.actions)],
      [vO, new native.Value(host.subarray(len), 0, 'float32', SHAPES.future)],
    ]);
    expect(host.subarray(0, len)).toEqual(expected.v_actions.data);
    expect(host.subarray(len)).toEqual(expected.v_future.data);
  });

  addon.it('allocates zeroed buffers, and views at an offset see what was copied there', () => {
    const buffer = new native.Buffer(session, 64);
    const back = new Float32Array(16).fill(9);
    native.copy([[new native.Value(buffer, 0, 'float32', [16]), new native.Value(back, 0, 'float32', [16])]]);
    expect([...back]).toEqual(new Array(16).fill(0));
    native.copy([[new native.Value(Float32Array.of(1, 2, 3), 0, 'float32', [3]), new native.Value(buffer, 20, 'float32', [3])]]);
    native.copy([[new native.Value(buffer, 0, 'float32', [16]), new native.Value(back, 0, 'float32', [16])]]);
    expect([...back.subarray(4, 8)]).toEqual([0, 1, 2, 3]);
  });

  addon.it("steps rows as the sampler's applyStep does, bit for bit, in place", () => {
    const rows = 3;
    const len = 40;
    let x = 11;
    const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
    const a = Float32Array.from({ length: rows * len }, next);
    const v = Float32Array.from({ length: rows * len }, next);
    const dt = Float32Array.of(1 / 3, 0, 1 / 64);
    const expected = Float32Array.from(a);
    for (let r = 0; r < rows; r++)
      applyStep(
        { dtA: 0, dtO: dt[r] },
        new Float32Array(0),
        expected.subarray(r * len, (r + 1) * len),
        new Float32Array(0),
        v.subarray(r * len, (r + 1) * len),
      );
    const view = (arr: Float32Array) => new native.Value(arr, 0, 'float32', [arr.length]);
    const inPlace = view(a);
    native.axpyRows(inPlace, view(v), view(dt), inPlace);
    expect(a).toEqual(expected);
    // Rows that do not divide the values.
    expect(() => native.axpyRows(view(a), view(v), view(new Float32Array(7)), view(a))).toThrow(RangeError);
  });

  addon.it('turns misuse into exceptions with ONNX Runtime codes, and the process goes on', () => {
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err as Error & { code?: string };
      }
      throw new Error('did not throw');
    };
    const missing = thrown(() => new native.Session(join(root, 'models', 'no-such.onnx'), { device: 'cpu', threads: 1 }));
    expect(isOrtError(missing) && missing.code).toBe('ORT_NO_SUCHFILE');

    const data = inputs();
    const views = Object.fromEntries(
      Object.entries(data).map(([name, a]) => [name, new native.Value(a, 0, a instanceof BigInt64Array ? 'int64' : 'float32', SHAPES[name])]),
    );
    const out = new native.Buffer(session, 2 * count(SHAPES.actions) * 4);
    const outputs = {
      v_actions: new native.Value(out, 0, 'float32', SHAPES.actions),
      v_future: new native.Value(out, count(SHAPES.actions) * 4, 'float32', SHAPES.future),
    };
    // embodiment_id given float32 data.
    const wrongType = thrown(() => session.run({ ...views, embodiment_id: new native.Value(new Float32Array(B), 0, 'float32', [B]) }, outputs));
    expect(isOrtError(wrongType) && wrongType.code).toBe('ORT_INVALID_ARGUMENT');
    expect(wrongType.message).toMatch(/int64/);

    expect(thrown(() => new native.Value(out, 8, 'float32', [2 * count(SHAPES.actions)]))).toBeInstanceOf(RangeError);
    expect(thrown(() => session.run({ ...views, state: {} as never }, outputs))).toBeInstanceOf(TypeError);
    expect(thrown(() => new native.Value(new Float32Array(4), 0, 'complex' as never, [4]))).toBeInstanceOf(TypeError);
    expect(thrown(() => native.copy([[views.state, views.actions]]))).toBeInstanceOf(RangeError);

    // Still serving after all of that.
    session.run(views, outputs);
  });

  addon.it('passes session configuration entries to ONNX Runtime', () => {
    // The entry the native executor sets on a CUDA-graph denoiser session: with it, a session with any node on the
    // CPU is refused at load, which on a CPU-only session is every node.
    expect(() => new native.Session(denoiserPath, { device: 'cpu', threads: 1, config: { 'session.disable_cpu_ep_fallback': '1' } })).toThrow(
      /assigned to the default CPU EP, but fallback to CPU EP has been explicitly disabled/,
    );
    const kept = new native.Session(denoiserPath, { device: 'cpu', threads: 1, config: { 'session.disable_cpu_ep_fallback': '0' } });
    expect(kept.inputs().map((m) => m.name)).toContain('tau_a');
    kept.release();
  });
});
