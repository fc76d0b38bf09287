#!/usr/bin/env node
// The native executor on a CUDA host (docs/architecture.md, "Executors"), with the carried node binary and the
// built app (dist/ and native/build/Release/dust_ort.node, or --addon) and ONNX Runtime's CUDA provider next to
// onnxruntime-node's libonnxruntime.so.1 (`npm run setup:cuda`, or scripts/gpu/reproduce.sh's app_env). It:
//
// 1. reports the set-up: node, ONNX Runtime, the addon, the provider files, the GPU (nvidia-smi);
// 2. checks where ONNX Runtime places the denoiser's nodes (a child process creates the CUDA-graph session with
//    verbose logging; the nodes it puts on the CPU are listed) and keeps ONNX Runtime's exact error when the session
//    or a capture fails;
// 3. runs one scripted sequence (rows joining, all rows and scattered subsets stepping, rows finishing) on the CPU
//    and on CUDA, with and without CUDA graphs, and compares the outputs (max |diff|, relative L2);
// 4. captures every bucket's graphs (the executor does at load: their cost per bucket) and times a denoiser step per
//    bucket, arena prefix and scattered rows, with and without CUDA graphs, and onnxruntime-node's executor on CUDA
//    as the baseline: medians of --runs calls after one warm call, wall clock of executor.step() (the parameter
//    copy, the denoiser, the device update and the copy back) and the ONNX Runtime part of it; and a VLM call per
//    batch size (1, 8, 32, --max-batch).
//
// JSON to --out, written after every stage (a call cut short still leaves what was measured).
//
//   node scripts/gpu/native-check.mjs --app /tmp/app [--package models/dust-tiny/1] [--addon path/dust_ort.node]
//        [--device cuda] [--max-batch 64] [--runs 20] [--threads 1] [--device-id 0] [--deadline-s 500]
//        [--skip-baseline] [--copy identity-graphs] [--row-ops graphs|host] --out /tmp/native-check.json
//
// --copy identity-graphs: copy on the device through Identity graphs instead of trying CopyTensors (which needs the
// CUDA provider's library registered with ONNX Runtime's environment) first.
//
// --device cpu runs the same stages on the CPU (no graphs): a dry run of this script on a machine without a GPU.
// --timings cudaGraphs,noGraphs: which native variants the timing stage runs (default both; none: no timings), e.g. noGraphs alone
// where capturing would take the process down.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, option as opt } from './cli.mjs';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const { dir: appDir, require, load } = app();
// --addon: a binary carried here goes where the app looks for it (src/engine/native-ort.ts addonPath). Written to a
// new file renamed into place, never over the old one: a loaded library must not change under its process.
if (opt('addon', '') && !args.includes('--placement-child')) {
  const into = path.join(appDir, 'native', 'build', 'Release', 'dust_ort.node');
  const from = path.resolve(opt('addon', ''));
  if (from !== into && !(existsSync(into) && readFileSync(from).equals(readFileSync(into)))) {
    mkdirSync(path.dirname(into), { recursive: true });
    copyFileSync(from, `${into}.tmp`);
    renameSync(`${into}.tmp`, into);
  }
}
const device = opt('device', 'cuda');
const pkgDir = path.resolve(appDir, opt('package', 'models/dust-tiny/1'));
const maxBatch = Number(opt('max-batch', '64'));
const runs = Number(opt('runs', '20'));
const threads = Number(opt('threads', '1'));
const deviceId = Number(opt('device-id', '0'));
const deadline = performance.now() + Number(opt('deadline-s', '500')) * 1000;
const outFile = opt('out', 'native-check.json');
const copy = opt('copy', 'auto');
// On the CPU rows move by host copies and arithmetic unless --row-ops graphs (what a GPU runs) is given.
const rowOps = opt('row-ops', undefined);

const { NativeExecutor } = await load('dist/src/engine/native-executor.js');
const { OnnxExecutor } = await load('dist/src/engine/onnx-executor.js');
const { loadNativeOrt, onnxRuntimeLibrary, addonPath } = await load('dist/src/engine/native-ort.js');
const { shapesOf } = await load('dist/src/engine/model-runtime.js');
const { packStepBatch, packVlmBatch } = await load('dist/src/engine/batch-packer.js');
const { SlotTable } = await load('dist/src/engine/slot-table.js');
const { initialNoise } = await load('dist/src/sampling/index.js');

const log = (msg) => process.stderr.write(`[native-check ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const round = (x, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const message = (err) => String(err?.message ?? err);

// ---- the placement child: create the session with verbose logs, say whether it worked ---------------------------
if (args.includes('--placement-child')) {
  const load_ = loadNativeOrt();
  if (!load_.ok) {
    process.stdout.write(JSON.stringify({ ok: false, error: `${load_.missing}: ${load_.fix}` }));
    process.exit(0);
  }
  try {
    const s = new load_.ort.Session(path.join(pkgDir, 'denoiser.onnx'), { device, threads, deviceId, cudaGraph: device === 'cuda', logSeverity: 0 });
    s.release();
    process.stdout.write(JSON.stringify({ ok: true }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, code: err.code, error: message(err) }));
  }
  process.exit(0);
}

const result = { device, package: pkgDir, maxBatch, runs, threads, stages: {} };
const save = () => writeFileSync(outFile, JSON.stringify(result, null, 1));
const timeLeft = () => deadline - performance.now();

// ---- 1. set-up -----------------------------------------------------------------------------------------------------
const native = loadNativeOrt();
const binDir = path.dirname(onnxRuntimeLibrary());
result.setup = {
  node: process.version,
  onnxruntimeNode: require('onnxruntime-node/package.json').version,
  addon: addonPath(),
  addonLoads: native.ok ? { version: native.version } : { missing: native.missing, fix: native.fix },
  providerFiles: Object.fromEntries(
    ['libonnxruntime.so.1', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'].map((f) => [f, existsSync(path.join(binDir, f))]),
  ),
  gpu: (() => {
    try {
      return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total,memory.used', '--format=csv,noheader'], {
        encoding: 'utf8',
        timeout: 10_000,
      }).trim();
    } catch (err) {
      return `nvidia-smi: ${message(err).split('\n')[0]}`;
    }
  })(),
};
save();
if (!native.ok) {
  log(`the addon does not load: ${native.missing}`);
  process.exit(1);
}

// ---- 2. placement --------------------------------------------------------------------------------------------------
{
  log('placement: creating the denoiser session with verbose logs in a child process');
  const child = spawnSync(process.execPath, [SELF, ...args, '--placement-child'], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 512 * 1024 * 1024,
    env: process.env,
  });
  const lines = (child.stderr ?? '').split('\n');
  // ONNX Runtime's verbose log: "Node placements", then "All nodes placed on [X]", or per provider a line
  // "Node(s) placed on [X]. Number of nodes: n" followed by its nodes, all from the same logging function.
  const header = lines.find((l) => /Node placements/.test(l)) ?? '';
  const source = /\[[^\]]*\s(\S+)\]\s/.exec(header)?.[1];
  const placement = source ? lines.filter((l) => l.includes(` ${source}]`)).map((l) => l.replace(/^.*?\] /, '').trim()) : [];
  const cpuNodes = [];
  let onCpu = false;
  for (const l of placement) {
    if (/placed on \[CPUExecutionProvider\]/i.test(l)) onCpu = true;
    else if (/placed on \[/i.test(l)) onCpu = false;
    else if (onCpu && !/Node placements/.test(l)) cpuNodes.push(l);
  }
  let session;
  try {
    session = JSON.parse(child.stdout || '{}');
  } catch {
    session = { ok: false, error: `child exited ${child.status}: ${(child.stdout ?? '').slice(0, 500)}` };
  }
  result.stages.placement = {
    session,
    placement: placement.slice(0, 40),
    cpuNodes: cpuNodes.slice(0, 200),
    cpuNodeCount: cpuNodes.length,
    graphCaptureRefusal: lines.filter((l) => /graph capture|cuda graph/i.test(l)).slice(0, 10),
  };
  save();
  log(`placement: session ${session.ok ? 'created' : `failed: ${session.error}`}; ${cpuNodes.length} nodes on the CPU`);
}

// ---- shared: the package, requests, the scripted sequence -----------------------------------------------------------
const manifest = JSON.parse(readFileSync(path.join(pkgDir, 'manifest.json'), 'utf8'));
const shapes = shapesOf(manifest);
const embodimentId = Object.values(manifest.embodiments)[0].id;
const capacity = 2 * maxBatch;
const init = (extra) => ({
  vlmPath: path.join(pkgDir, 'vlm.onnx'),
  denoiserPath: path.join(pkgDir, 'denoiser.onnx'),
  threads,
  capacity,
  shapes,
  maxBatch,
  deviceId,
  ...extra,
});
const deps = { copy, rowOps };

function request(id) {
  const s = shapes;
  let x = id * 7919 + 1;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const tokens = Math.min(s.textTokens, 5 + (id % 7));
  return {
    // The package's pixel type: camera bytes for a VLM that normalises them (docs/model-package.md, "Images").
    pixelValues:
      s.pixelDtype === 'uint8'
        ? Uint8Array.from({ length: s.views * 3 * s.imageHeight * s.imageWidth }, () => Math.floor((next() + 1) * 127.5))
        : Float32Array.from({ length: s.views * 3 * s.imageHeight * s.imageWidth }, next),
    inputIds: BigInt64Array.from({ length: s.textTokens }, (_, t) => (t < tokens ? BigInt((id * 3 + t) % 16) : 0n)),
    attentionMask: BigInt64Array.from({ length: s.textTokens }, (_, t) => (t < tokens ? 1n : 0n)),
    state: Float32Array.from({ length: s.stateDim }, (_, d) => (d < 8 ? next() : 0)),
    embodimentId,
    noise: initialNoise(BigInt(1000 + id), s.horizon * s.actionDim, s.futureTokens * s.futureDim),
  };
}

const COUNTS = [
  { actionSteps: 2, visionSteps: 4 },
  { actionSteps: 1, visionSteps: 2 },
  { actionSteps: 4, visionSteps: 8 },
  { actionSteps: 1, visionSteps: 3 },
];

/** Rows join, step (all, then every other row on alternate calls) and leave; every output in call order. */
async function script(ex) {
  const table = new SlotTable(capacity);
  const trace = [];
  let nextId = 0;
  const join = async (n) => {
    const rows = Array.from({ length: n }, () => ({ id: nextId, i: 0, counts: COUNTS[nextId++ % COUNTS.length] }));
    const slots = Int32Array.from(rows.map((r) => table.add(r)));
    trace.push(
      (
        await ex.runVlm(
          packVlmBatch(
            rows.map((r) => request(r.id)),
            slots,
            table.takeMoves(),
            shapes,
          ),
        )
      ).obsEmbedding,
    );
  };
  const step = async (call) => {
    const rows = table.values();
    const picked = (call % 2 === 1 ? rows.filter((_, k) => k % 2 === 1) : [...rows]).sort((a, b) => table.slotOf(a) - table.slotOf(b));
    const out = await ex.step(
      packStepBatch(
        picked.map((r) => ({ slot: table.slotOf(r), i: r.i, counts: r.counts })),
        table.takeMoves(),
      ),
    );
    trace.push(out.actions, out.future);
    for (const r of picked) r.i++;
    for (const r of picked.filter((r) => r.i === r.counts.visionSteps)) table.remove(r);
  };
  await join(Math.min(5, maxBatch));
  await step(0);
  await join(Math.min(6, maxBatch));
  for (let call = 1; table.size > 0; call++) await step(call);
  return trace;
}

function compare(a, b) {
  let maxAbs = 0;
  let num = 0;
  let den = 0;
  a.forEach((x, k) => {
    for (let j = 0; j < x.length; j++) {
      const d = x[j] - b[k][j];
      maxAbs = Math.max(maxAbs, Math.abs(d));
      num += d * d;
      den += b[k][j] * b[k][j];
    }
  });
  return { maxAbs: Number(maxAbs.toExponential(3)), relL2: Number(Math.sqrt(num / Math.max(den, 1e-30)).toExponential(3)) };
}

async function withExecutor(label, create, body) {
  let ex;
  try {
    const t0 = performance.now();
    ex = await create();
    const createMs = performance.now() - t0;
    return await body(ex, createMs);
  } catch (err) {
    log(`${label}: ${message(err)}`);
    return { error: message(err), code: err?.code };
  } finally {
    await ex?.close().catch(() => undefined);
  }
}

const describe = (ex, createMs) => ({
  createMs: round(createMs, 1),
  buckets: ex.buckets,
  copyPath: ex.copyPath,
  captures: (ex.captures ?? []).map((c) => ({ ...c, ms: round(c.ms, 1) })),
  graphsInUse: ex.graphsInUse,
  // Each captured graph's replay against a regular run on the same inputs (the executor's check at creation).
  graphChecks: (ex.graphChecks ?? []).map((c) => ({ ...c, relL2: Number(c.relL2.toExponential(3)), maxAbs: Number(c.maxAbs.toExponential(3)) })),
  notes: ex.notes,
});

// ---- 3. parity ------------------------------------------------------------------------------------------------------
// --skip-parity: the CPU reference of a paper-size package takes minutes; check parity on a small package instead.
if (args.includes('--skip-parity')) result.stages.parity = { skipped: 'the --skip-parity flag' };
else {
  log('parity: the scripted sequence on the CPU, then on the device with and without CUDA graphs');
  const stage = {};
  let reference;
  // The CPU reference: host row operations, CopyTensors.
  stage.cpu = await withExecutor(
    'cpu',
    () => NativeExecutor.create(init({ device: 'cpu', cudaGraphs: false }), { rowOps: 'host' }),
    async (ex, ms) => {
      reference = await script(ex);
      return { createMs: round(ms, 1), outputs: reference.length };
    },
  );
  if (device === 'cpu' && reference) {
    // A dry run: the options given (--row-ops, --copy) against the reference.
    stage.options = await withExecutor(
      'options',
      () => NativeExecutor.create(init({ device: 'cpu', cudaGraphs: false }), deps),
      async (ex, ms) => ({ ...describe(ex, ms), againstCpu: compare(await script(ex), reference) }),
    );
  }
  if (device !== 'cpu' && reference) {
    // cudaGraphs: as served (each replay checked at creation, graphs off if one differs); the unchecked variants show
    // what the captured graphs compute, with CopyTensors and with copies through Identity graphs on the device's
    // own stream (which tells a copy racing a replay from a capture that is wrong by itself).
    const variants = [
      ['cudaGraphs', true, {}],
      ['cudaGraphsUnchecked', true, { verifyGraphs: false }],
      ['cudaGraphsUncheckedIdentityCopies', true, { verifyGraphs: false, copy: 'identity-graphs' }],
      ['noGraphs', false, {}],
    ];
    for (const [key, graphs, extra] of variants) {
      stage[key] = await withExecutor(
        key,
        () => NativeExecutor.create(init({ device, cudaGraphs: graphs }), { ...deps, ...extra }),
        async (ex, ms) => ({
          ...describe(ex, ms),
          againstCpu: compare(await script(ex), reference),
        }),
      );
      save();
    }
  }
  result.stages.parity = stage;
  save();
}

// ---- 4. captures and step timings per bucket -------------------------------------------------------------------------
/** Fills `rows` arena slots (VLM calls of at most maxBatch rows), then times steps over the prefix and scattered rows. */
async function timeSteps(ex, buckets) {
  const rows = Math.min(capacity, 2 * Math.max(...buckets));
  for (let start = 0; start < rows; start += maxBatch) {
    const n = Math.min(maxBatch, rows - start);
    const slots = Int32Array.from({ length: n }, (_, b) => start + b);
    await ex.runVlm(
      packVlmBatch(
        Array.from({ length: n }, (_, b) => request(start + b)),
        slots,
        [],
        shapes,
      ),
    );
  }
  // Rows that never finish: a long schedule, at its first step.
  const counts = { actionSteps: 1, visionSteps: 1_000_000 };
  const out = {};
  for (const bucket of buckets) {
    if (timeLeft() < 10_000) {
      out[bucket] = { skipped: 'deadline' };
      continue;
    }
    const modes = {
      prefix: Array.from({ length: bucket }, (_, b) => b),
      scattered: Array.from({ length: bucket }, (_, b) => 2 * b + 1).filter((s) => s < rows),
    };
    out[bucket] = {};
    for (const [mode, slots] of Object.entries(modes)) {
      if (slots.length < bucket) continue;
      const batch = packStepBatch(
        slots.map((slot) => ({ slot, i: 0, counts })),
        [],
      );
      const t0 = performance.now();
      await ex.step(batch);
      const firstMs = performance.now() - t0;
      const wall = [];
      const ort = [];
      for (let r = 0; r < runs; r++) {
        const t1 = performance.now();
        const res = await ex.step(batch);
        wall.push(performance.now() - t1);
        ort.push(res.runMs);
      }
      out[bucket][mode] = { firstMs: round(firstMs), stepMs: round(median(wall)), ortMs: round(median(ort)), minMs: round(Math.min(...wall)) };
    }
    log(`  batch ${bucket}: ${JSON.stringify(out[bucket])}`);
  }
  return out;
}

/**
 * VLM calls per batch size (1, 8, 32, maxBatch rows into arena slots 0..B-1): the executor's runMs (the VLM's run,
 * its pixels copied in and vl_embs written to the arena in place) and the whole call, medians of --runs after one
 * warm call.
 */
async function timeVlm(ex) {
  const out = {};
  for (const B of [...new Set([1, 8, 32, maxBatch].filter((b) => b <= maxBatch))]) {
    if (timeLeft() < 10_000) break;
    const batch = packVlmBatch(
      Array.from({ length: B }, (_, b) => request(b)),
      Int32Array.from({ length: B }, (_, b) => b),
      [],
      shapes,
    );
    await ex.runVlm(batch);
    const wall = [];
    const run = [];
    for (let r = 0; r < Math.max(3, Math.floor(runs / 4)); r++) {
      const t0 = performance.now();
      const res = await ex.runVlm(batch);
      wall.push(performance.now() - t0);
      run.push(res.runMs);
    }
    out[B] = { callMs: round(median(wall)), runMs: round(median(run)) };
    log(`  VLM batch ${B}: ${JSON.stringify(out[B])}`);
  }
  return out;
}

{
  const buckets = [];
  for (let b = 1; b < maxBatch; b *= 2) buckets.push(b);
  buckets.push(maxBatch);
  const stage = { buckets };
  const wanted = opt('timings', 'cudaGraphs,noGraphs').split(',');
  const variants =
    device === 'cpu'
      ? [['native', false]]
      : [
          ['cudaGraphs', true],
          ['noGraphs', false],
        ].filter(([key]) => wanted.includes(key));
  for (const [key, graphs] of variants) {
    log(`timings: native executor, ${key}`);
    stage[key] = await withExecutor(
      key,
      () => NativeExecutor.create(init({ device, cudaGraphs: graphs }), deps),
      async (ex, ms) => ({
        ...describe(ex, ms),
        steps: await timeSteps(ex, ex.buckets),
        vlm: await timeVlm(ex),
      }),
    );
    save();
  }
  if (!args.includes('--skip-baseline')) {
    log(`timings: onnxruntime-node's executor on ${device}`);
    stage.onnxruntimeNode = await withExecutor(
      'onnxruntime-node',
      () => OnnxExecutor.create(init({ device })),
      async (ex, ms) => ({
        createMs: round(ms, 1),
        steps: await timeSteps(ex, buckets),
      }),
    );
  }
  result.stages.timings = stage;
  save();
}
log(`done: ${outFile}`);
