/**
 * The serving-free limit: the server's executor (the one its --device, --executor and --cuda-graphs flags choose,
 * by the server's own rule in engine/executor-selection.ts: the native executor on cuda, and on the CPU where the
 * addon loads; the same ONNX sessions, options and arena the server's inference worker uses) driven in a tight
 * loop on this thread, with no gRPC, no preprocessing, no scheduler and no thread hop. Per iteration: one VLM call for B requests in slots 0..B-1, then their N_o
 * denoiser steps with tau/dt from the real stepPlan (docs/sampling.md), all B finishing at the last step. Tried at
 * several B; the best is the limit. With a mix, iterations cycle through the classes, so every class gets
 * the same share of requests as in the served runs (robots are assigned classes round-robin).
 */
import path from 'node:path';
import { DEFAULT_SERVE_OPTIONS, sliceOf } from '../src/config/index.js';
import { OPTION_TABLE } from '../src/config/option-table.js';
import { OnnxExecutor, shapesOf, type ModelShapes, type VlmBatch } from '../src/engine/index.js';
import type { Executor } from '../src/engine/executor.js';
import { selectExecutor, type ExecutorKind, type ExecutorRequest } from '../src/engine/executor-selection.js';
import { nativeStatus } from '../src/engine/native-ort.js';
import { NativeExecutor, type CudaGraphsOption } from '../src/engine/native-executor.js';
import { PromptTokenizer } from '../src/preprocess/index.js';
import { initialNoise, stepPlan } from '../src/sampling/index.js';
import { OFFLINE_DESCRIPTION } from './modes.js';
import type { Progress } from './progress.js';
import { INSTRUCTION, type ModelLocation } from './requests.js';
import { deviceOf, serverFlag } from './results.js';
import { hostCpuSeconds } from './server-process.js';
import { meanOf, round } from './stats.js';
import type { RequestClass } from './workload.js';

export const DEFAULT_OFFLINE_BATCHES: readonly number[] = [1, 8, 16, 32, 64];

export interface OfflineBatchResult {
  readonly batch: number;
  readonly iterations: number;
  readonly requests: number;
  readonly throughputRps: number;
  /** ONNX Runtime time of one VLM call at this batch size (worker-measured). */
  readonly meanVlmMs: number;
  /** ONNX Runtime + worker host time of one denoiser step at this batch size. */
  readonly meanStepMs: number;
}

export interface OfflineResult {
  readonly mode: 'offline';
  readonly description: string;
  readonly threads: number;
  /** The device and the executor that ran the graphs. */
  readonly device: string;
  readonly executor: ExecutorKind;
  readonly classSpec: readonly string[];
  readonly secondsPerBatch: number;
  readonly batches: readonly OfflineBatchResult[];
  readonly bestBatch: number;
  /** Requests/s at the best batch size: the serving-free limit. */
  readonly throughputRps: number;
  /** process.cpuUsage() over the timed loops, in cores (ONNX Runtime's threads included). */
  readonly benchCores: number;
  /** Cores busy with other processes over the timed loops (see CpuResult.otherCores). */
  readonly otherCores: number;
}

/** What the server's flags choose to run the graphs (bench/results.ts serverFlag reads them). */
export interface OfflineEngine {
  readonly device: 'cpu' | 'cuda' | 'webgpu';
  readonly executor: ExecutorRequest;
  readonly cudaGraphs: CudaGraphsOption;
}

/**
 * The engine the server's flags choose (--device, else DUST_DEVICE, else the default; --executor; --cuda-graphs),
 * parsed by the options' own schemas. `auto` devices need the server's probe, which offline does not run.
 */
export function offlineEngine(serverArgs: readonly string[]): OfflineEngine {
  const device = OPTION_TABLE.device.schema.parse(deviceOf(serverArgs));
  if (device === 'auto') throw new Error('offline mode runs on one device: give --device cpu, cuda or webgpu in --server-args');
  const executor = OPTION_TABLE.executor.schema.parse(serverFlag(serverArgs, 'executor') ?? DEFAULT_SERVE_OPTIONS.executor);
  const cudaGraphs = OPTION_TABLE.cudaGraphs.schema.parse(serverFlag(serverArgs, 'cuda-graphs') ?? DEFAULT_SERVE_OPTIONS.cudaGraphs);
  return { device, executor, cudaGraphs };
}

export interface OfflineOptions {
  readonly model: ModelLocation;
  readonly engine: OfflineEngine;
  readonly classes: readonly RequestClass[];
  readonly threads: number;
  readonly batches: readonly number[];
  readonly secondsPerBatch: number;
  readonly progress: Progress;
  readonly label: string;
}

/** Inputs of one VLM batch, built once (the executor copies what it keeps into its arena). */
type Template = Omit<VlmBatch, 'moves' | 'slots'>;

async function template(model: ModelLocation, s: ModelShapes, B: number): Promise<Template> {
  const m = model.manifest;
  const tokenizer = await PromptTokenizer.fromFile(path.join(model.dir, m.text.tokenizer), m.text, sliceOf(DEFAULT_SERVE_OPTIONS, 'tokenizer'));
  const prompt = await tokenizer.encode(INSTRUCTION);
  const ids = Object.values(m.embodiments).map((e) => BigInt(e.id));
  const pixelLen = s.views * 3 * s.imageHeight * s.imageWidth;
  const pixelRows = Array.from({ length: B }, (_, b) => Float32Array.from({ length: pixelLen }, (_, i) => Math.sin((b * pixelLen + i) * 0.37)));
  const aLen = s.horizon * s.actionDim;
  const oLen = s.futureTokens * s.futureDim;
  const actions0 = new Float32Array(B * aLen);
  const futureRows: Float32Array[] = [];
  const inputIds = new BigInt64Array(B * s.textTokens);
  const attentionMask = new BigInt64Array(B * s.textTokens);
  for (let b = 0; b < B; b++) {
    const noise = initialNoise(BigInt(b + 1), aLen, oLen);
    actions0.set(noise.actions, b * aLen);
    futureRows.push(noise.future);
    inputIds.set(prompt.inputIds, b * s.textTokens);
    attentionMask.set(prompt.attentionMask, b * s.textTokens);
  }
  return {
    pixelRows,
    inputIds,
    attentionMask,
    state: new Float32Array(B * s.stateDim),
    embodimentIds: BigInt64Array.from({ length: B }, (_, b) => ids[b % ids.length]),
    actions0,
    futureRows,
  };
}

/** One iteration: B requests of one class, VLM then N_o steps. Returns ONNX times for the report. */
async function iteration(executor: Executor, t: Template, B: number, cls: RequestClass): Promise<{ vlmMs: number; stepMs: number[] }> {
  const slots = () => Int32Array.from({ length: B }, (_, b) => b);
  const vlm = await executor.runVlm({ moves: [], slots: slots(), ...t });
  const counts = { actionSteps: cls.actionSteps, visionSteps: cls.visionSteps };
  const stepMs: number[] = [];
  for (let i = 0; i < counts.visionSteps; i++) {
    const plan = stepPlan(i, counts);
    const last = i + 1 === counts.visionSteps;
    const r = await executor.step({
      moves: [],
      slots: slots(),
      tauA: new Float32Array(B).fill(plan.tauA),
      tauO: new Float32Array(B).fill(plan.tauO),
      dtA: new Float32Array(B).fill(plan.dtA),
      dtO: new Float32Array(B).fill(plan.dtO),
      finishing: last ? slots() : new Int32Array(0),
    });
    stepMs.push(r.runMs + r.hostMs);
  }
  return { vlmMs: vlm.runMs, stepMs };
}

export async function runOffline(o: OfflineOptions): Promise<OfflineResult> {
  const m = o.model.manifest;
  const s = shapesOf(m);
  const capacity = Math.max(...o.batches);
  const { executor: kind } = selectExecutor(o.engine.executor, o.engine.device, nativeStatus);
  o.progress.note(`[${o.label}] loading the graphs on ${o.engine.device} (${kind} executor, --threads ${o.threads}), batches ${o.batches.join(',')}`);
  const init = {
    vlmPath: path.join(o.model.dir, 'vlm.onnx'),
    denoiserPath: path.join(o.model.dir, 'denoiser.onnx'),
    device: o.engine.device,
    threads: o.threads,
    capacity,
    shapes: s,
  };
  const executor: Executor =
    kind === 'native'
      ? await NativeExecutor.create({ ...init, maxBatch: capacity, cudaGraphs: o.engine.cudaGraphs, graphHazards: m.architecture.cuda_graph_hazards })
      : await OnnxExecutor.create(init);
  const results: OfflineBatchResult[] = [];
  let cpuSeconds = 0;
  let hostSeconds = 0;
  let timedSeconds = 0;
  try {
    for (const B of o.batches) {
      const t = await template(o.model, s, B);
      // One untimed iteration per class: first-call allocations and ORT's per-shape caches.
      for (const cls of o.classes) await iteration(executor, t, B, cls);
      const vlmMs: number[] = [];
      const stepMs: number[] = [];
      let iterations = 0;
      const cpu0 = process.cpuUsage();
      const host0 = hostCpuSeconds().busy;
      const t0 = performance.now();
      const until = t0 + o.secondsPerBatch * 1000;
      while (performance.now() < until || iterations % o.classes.length !== 0) {
        const r = await iteration(executor, t, B, o.classes[iterations % o.classes.length]);
        vlmMs.push(r.vlmMs);
        stepMs.push(...r.stepMs);
        iterations++;
        const elapsed = (performance.now() - t0) / 1000;
        o.progress.update(
          `[${o.label}] B=${B} ${elapsed.toFixed(1)}/${o.secondsPerBatch} s, ${iterations * B} done, ${((iterations * B) / elapsed).toFixed(0)} req/s`,
        );
      }
      const elapsedS = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      cpuSeconds += (cpu.user + cpu.system) / 1e6;
      hostSeconds += hostCpuSeconds().busy - host0;
      timedSeconds += elapsedS;
      results.push({
        batch: B,
        iterations,
        requests: iterations * B,
        throughputRps: round((iterations * B) / elapsedS, 2),
        meanVlmMs: meanOf(vlmMs),
        meanStepMs: meanOf(stepMs),
      });
    }
  } finally {
    o.progress.done();
    await executor.close();
  }
  const best = results.reduce((a, b) => (b.throughputRps > a.throughputRps ? b : a));
  return {
    mode: 'offline',
    description: OFFLINE_DESCRIPTION,
    threads: o.threads,
    device: o.engine.device,
    executor: kind,
    classSpec: o.classes.map((c) => c.label),
    secondsPerBatch: o.secondsPerBatch,
    batches: results,
    bestBatch: best.batch,
    throughputRps: best.throughputRps,
    benchCores: round(cpuSeconds / timedSeconds, 3),
    otherCores: round(Math.max(0, hostSeconds - cpuSeconds) / timedSeconds, 3),
  };
}
