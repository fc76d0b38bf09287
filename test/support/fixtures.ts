/**
 * The toolchain's fixture files (parity.json, golden-sampling.json; models/toolchain/README.md "golden") as ONNX
 * Runtime tensors, and the golden sampler loop over a denoiser session.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { sampleJoint, type Denoise } from '../../src/sampling/index.js';

export interface EncodedTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  data_b64: string;
}
export interface ParityCase {
  graph: 'vlm' | 'denoiser';
  batch: number;
  prompts?: string[];
  inputs: Record<string, EncodedTensor>;
  outputs: Record<string, EncodedTensor>;
}
export interface GoldenCase {
  embodiment_id: number;
  action_steps: number;
  vision_steps: number;
  inputs: Record<'vl_embs' | 'state' | 'actions0' | 'future0', EncodedTensor>;
  outputs: Record<'actions' | 'future', EncodedTensor>;
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Little-endian raw bytes -> an ORT tensor (copied, so the typed array is aligned). */
export function decode(t: EncodedTensor): ort.Tensor {
  const bytes = Buffer.from(t.data_b64, 'base64');
  const buffer = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buffer).set(bytes);
  return t.dtype === 'float32' ? new ort.Tensor('float32', new Float32Array(buffer), t.shape) : new ort.Tensor('int64', new BigInt64Array(buffer), t.shape);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** ||got - want|| / ||want|| (NaN anywhere gives NaN, which fails every bound). */
export function relativeL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`lengths differ: ${got.length} vs ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

export function feedsOf(c: ParityCase): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(c.inputs).map(([name, t]) => [name, decode(t)]));
}

/**
 * One golden case through the production sampler (src/sampling: the schedule and Euler updates of docs/sampling.md)
 * over a denoiser session, batch 1.
 */
export async function sampleGolden(
  denoiser: ort.InferenceSession,
  c: GoldenCase,
  shapes: { action: { horizon: number; dim: number }; future: { tokens: number; dim: number } },
): Promise<{ actions: Float32Array; future: Float32Array; evaluations: number; calls: number }> {
  const vlEmbs = decode(c.inputs.vl_embs);
  const state = decode(c.inputs.state);
  const a = Float32Array.from(decode(c.inputs.actions0).data as Float32Array);
  const o = Float32Array.from(decode(c.inputs.future0).data as Float32Array);
  const aShape = [1, shapes.action.horizon, shapes.action.dim];
  const oShape = [1, shapes.future.tokens, shapes.future.dim];
  const embodiment = new ort.Tensor('int64', BigInt64Array.of(BigInt(c.embodiment_id)), [1]);
  let calls = 0;
  const f: Denoise = async (actions, future, tauA, tauO) => {
    calls++;
    const out = await denoiser.run({
      vl_embs: vlEmbs,
      state,
      actions: new ort.Tensor('float32', Float32Array.from(actions), aShape),
      future: new ort.Tensor('float32', Float32Array.from(future), oShape),
      tau_a: new ort.Tensor('float32', Float32Array.of(tauA), [1]),
      tau_o: new ort.Tensor('float32', Float32Array.of(tauO), [1]),
      embodiment_id: embodiment,
    });
    return { vActions: out.v_actions.data as Float32Array, vFuture: out.v_future.data as Float32Array };
  };
  const sampled = await sampleJoint(f, a, o, { actionSteps: c.action_steps, visionSteps: c.vision_steps });
  return { actions: sampled.actions, future: sampled.future, evaluations: sampled.evaluations, calls };
}
