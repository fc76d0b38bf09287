#!/usr/bin/env node
/**
 * `npm run bench:native`: the native executor against onnxruntime-node's on the CPU, on the shipped package
 * (models/dust-tiny/1), in this process: a denoiser step at a few batch sizes (the arena prefix, and scattered rows
 * gathered through staging) and a VLM call at a few batch sizes. Each measurement is the mean of --calls calls,
 * the executors taking turns call by call, --runs times; the medians of the runs (and of their ratios) are printed
 * as JSON (bench/results.ts: --out writes it to a file, --save keeps it in bench/results/native-executor/). The wall clock of executor.step() / runVlm(): ONNX Runtime and the executor's own work (copies,
 * Euler update, gathers). docs/architecture.md, "Executors"; numbers in BENCHMARKS.md.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { packStepBatch, packVlmBatch } from '../src/engine/batch-packer.js';
import type { Executor, ModelShapes } from '../src/engine/executor.js';
import { OnnxExecutor, shapesOf } from '../src/engine/index.js';
import { NativeExecutor } from '../src/engine/native-executor.js';
import { nativeStatus } from '../src/engine/native-ort.js';
import type { Manifest } from '../src/model/index.js';
import { initialNoise } from '../src/sampling/index.js';
import { number } from './cli-args.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { nativeSummary } from './summaries.js';
import { median, round } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const list = (v: string) => v.split(',').map(Number);

const program = new Command('bench-native')
  .option('--package <dir>', 'model package', path.resolve(here, '..', '..', 'models', 'dust-tiny', '1'))
  .option('--steps <list>', 'denoiser batch sizes', list, [1, 4, 16, 64])
  .option('--vlm <list>', 'VLM batch sizes', list, [1, 4, 16])
  .option('--threads <n>', 'ONNX Runtime intra-op threads', number(1, true), 1)
  .option('--runs <n>', 'runs per measurement (each executor in turn); the median is reported', number(1, true), 7)
  .option('--calls <n>', 'calls per run', number(1, true), 20);
addResultOptions(program).parse();
const opts = program.opts<{
  package: string;
  steps: number[];
  vlm: number[];
  threads: number;
  runs: number;
  calls: number;
  out?: string;
  save?: boolean;
  json?: boolean;
}>();

function request(id: number, s: ModelShapes) {
  let x = id * 7919 + 1;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return {
    pixelValues: Float32Array.from({ length: s.views * 3 * s.imageHeight * s.imageWidth }, next),
    inputIds: BigInt64Array.from({ length: s.textTokens }, (_, t) => BigInt((id + t) % 16)),
    attentionMask: new BigInt64Array(s.textTokens).fill(1n),
    state: Float32Array.from({ length: s.stateDim }, next),
    embodimentId: 0,
    noise: initialNoise(BigInt(id + 1), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const native = nativeStatus();
  if (!native.ok) throw new Error(`the native executor cannot run: missing ${native.missing}. To fix: ${native.fix}`);
  const manifest = JSON.parse(readFileSync(path.join(opts.package, 'manifest.json'), 'utf8')) as Manifest;
  const shapes = shapesOf(manifest);
  const maxStep = Math.max(...opts.steps);
  const rows = 2 * maxStep;
  const init = {
    vlmPath: path.join(opts.package, 'vlm.onnx'),
    denoiserPath: path.join(opts.package, 'denoiser.onnx'),
    device: 'cpu' as const,
    threads: opts.threads,
    capacity: rows,
    shapes,
  };
  const executors: Record<string, Executor> = {
    native: await NativeExecutor.create({ ...init, maxBatch: maxStep, cudaGraphs: false }),
    onnxruntimeNode: await OnnxExecutor.create(init),
  };
  const requests = Array.from({ length: rows }, (_, i) => request(i, shapes));
  const vlmBatch = (first: number, n: number) =>
    packVlmBatch(
      requests.slice(first, first + n),
      Int32Array.from({ length: n }, (_, b) => first + b),
      [],
      shapes,
    );
  // Rows that never finish: steps at the start of a long schedule.
  const counts = { actionSteps: 1, visionSteps: 1_000_000 };
  const stepBatch = (slots: number[]) =>
    packStepBatch(
      slots.map((slot) => ({ slot, i: 0, counts })),
      [],
    );

  /**
   * Mean ms of `calls` calls of f per run and executor, the executors taking turns call by call (so that the load
   * of a shared machine drifts alike for both); the median run per executor, and the median of the runs' ratios.
   */
  async function measure(f: (ex: Executor) => Promise<unknown>): Promise<Record<string, number>> {
    const names = Object.keys(executors);
    for (const ex of Object.values(executors)) await f(ex);
    const samples: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
    const ratios: number[] = [];
    for (let r = 0; r < opts.runs; r++) {
      const total: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
      for (let c = 0; c < opts.calls; c++) {
        // Alternate which goes first, too.
        for (const name of c % 2 === 0 ? names : [...names].reverse()) {
          const t0 = performance.now();
          await f(executors[name]);
          total[name] += performance.now() - t0;
        }
      }
      for (const name of names) samples[name].push(total[name] / opts.calls);
      ratios.push(total.native / total.onnxruntimeNode);
    }
    const out = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v))]));
    return { ...out, nativeOverOnnxruntimeNode: round(median(ratios)) };
  }

  const result = {
    host: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, onnxRuntime: native.version },
    package: manifest.name,
    threads: opts.threads,
    runs: opts.runs,
    callsPerRun: opts.calls,
    unit: 'ms per call, median of runs',
    step: { prefix: {} as Record<number, Record<string, number>>, scattered: {} as Record<number, Record<string, number>> },
    vlm: {} as Record<number, Record<string, number>>,
  };
  for (const ex of Object.values(executors))
    for (let first = 0; first < rows; first += maxStep) await ex.runVlm(vlmBatch(first, Math.min(maxStep, rows - first)));
  for (const B of opts.steps) {
    const prefix = stepBatch(Array.from({ length: B }, (_, b) => b));
    const scattered = stepBatch(Array.from({ length: B }, (_, b) => 2 * b + 1));
    result.step.prefix[B] = await measure((ex) => ex.step(prefix));
    result.step.scattered[B] = await measure((ex) => ex.step(scattered));
    process.stderr.write(`step ${B}: ${JSON.stringify(result.step.prefix[B])} ${JSON.stringify(result.step.scattered[B])}\n`);
  }
  for (const B of opts.vlm) {
    result.vlm[B] = await measure((ex) => ex.runVlm(vlmBatch(0, B)));
    process.stderr.write(`vlm ${B}: ${JSON.stringify(result.vlm[B])}\n`);
  }
  await Promise.all(Object.values(executors).map((ex) => ex.close()));
  writeResult(resultMeta('native-executor', { serverArgs: ['--device', 'cpu'], startedAt }), result, opts, nativeSummary(result));
}

await main();
