#!/usr/bin/env node
// Paper-size DUST through onnxruntime-node on the GPU host (scripts/gpu/reproduce.sh, stage `ort`): the VLM and
// one denoiser step at each batch size for each configuration (CUDA float32, CUDA float16, WebGPU float32), with
// the server's own session options (engine/onnx-executor.ts); the first call at each batch size separately (it
// pays for per-shape set-up); the host-to-device copy of the conditioning through a graph that only reads it;
// whether GPU-resident outputs work on CUDA; parity against the PyTorch float32 reference of torch_bench.py; and
// sampling (docs/sampling.md, N_A = N_o = 4 and N_o = 16) of each configuration against the first. JSON to --out.
//
//   node scripts/gpu/ort-bench.mjs --app /tmp/app --work /tmp/gpu8 [--configs cuda-fp32,cuda-fp16,webgpu-fp32]
//        [--batches 1,8,32,64,128] [--budget-s 0.8] [--deadline-s 420] [--threads 1] --out /tmp/gpu8/ort.json
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { app, median, option as opt, relL2 } from './cli.mjs';

const work = path.resolve(opt('work', '/tmp/gpu8'));
const configs = opt('configs', 'cuda-fp32,cuda-fp16,webgpu-fp32').split(',');
const batches = opt('batches', '1,8,32,64,128').split(',').map(Number);
const budgetMs = Number(opt('budget-s', '0.8')) * 1000;
const deadline = performance.now() + Number(opt('deadline-s', '420')) * 1000;
const threads = Number(opt('threads', '1'));
const outFile = opt('out', path.join(work, 'ort.json'));
// With --profile-batch B: ONNX Runtime's own profile of PROFILE_RUNS denoiser calls at batch B per configuration.
const profileBatch = opt('profile-batch', '') ? Number(opt('profile-batch', '')) : undefined;
const PROFILE_RUNS = 10;

const { require, load } = app();
const ort = require('onnxruntime-node');
const { sessionOptions } = await load('dist/src/engine/index.js');
const { sampleJoint } = await load('dist/src/sampling/index.js');

const log = (msg) => process.stderr.write(`[ort ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const round = (x, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const result = {
  onnxruntimeNode: require('onnxruntime-node/package.json').version,
  threads,
  batches,
  configs: {},
  timing: 'wall clock of session.run(), median',
};
const save = () => writeFileSync(outFile, JSON.stringify(result, null, 1));

/** A deterministic pseudo-random stream (values do not matter to the timing; they must be valid). */
function filler(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function feedsFor(session, batch, manifest) {
  const next = filler(batch * 7919);
  const feeds = {};
  for (const m of session.inputMetadata) {
    const shape = m.shape.map((d) => (typeof d === 'number' ? d : batch));
    const n = shape.reduce((a, b) => a * b, 1);
    if (m.type === 'int64') {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        data[i] =
          m.name === 'attention_mask'
            ? 1n
            : m.name === 'embodiment_id'
              ? BigInt(i % 2)
              : BigInt(2 + Math.floor(next() * (manifest.architecture.vlm.vocab_size - 2)));
      }
      feeds[m.name] = new ort.Tensor('int64', data, shape);
    } else if (m.type === 'uint8') {
      // pixel_values of a package whose VLM normalises (docs/model-package.md, "Images").
      feeds[m.name] = new ort.Tensor(
        'uint8',
        Uint8Array.from({ length: n }, () => Math.floor(next() * 256)),
        shape,
      );
    } else {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = m.name.startsWith('tau') ? next() : next() * 2 - 1;
      feeds[m.name] = new ort.Tensor('float32', data, shape);
    }
  }
  return feeds;
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  const firstMs = performance.now() - t0;
  await fn();
  const times = [];
  const start = performance.now();
  while (times.length < 40 && (times.length < 3 || performance.now() - start < budgetMs) && performance.now() < deadline) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))];
  return { first_ms: round(firstMs), p50_ms: round(q(0.5)), p10_ms: round(q(0.1)), p90_ms: round(q(0.9)), min_ms: round(times[0]), iters: times.length };
}

function decode(t) {
  const bytes = Buffer.from(t.data_b64, 'base64');
  const buf = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buf).set(bytes);
  const data = t.dtype === 'int64' ? new BigInt64Array(buf) : t.dtype === 'uint8' ? new Uint8Array(buf) : new Float32Array(buf);
  return new ort.Tensor(t.dtype, data, t.shape);
}

const reference = existsSync(path.join(work, 'reference.json')) ? JSON.parse(readFileSync(path.join(work, 'reference.json'), 'utf8')) : undefined;
const samples = {};

/**
 * ONNX Runtime's profile of a few denoiser calls: per call, its wall time (model_run) and the summed durations of
 * its nodes. On a GPU provider a node's duration is the CPU time spent issuing it (kernels run asynchronously),
 * so the sum against the wall time says whether a call is bound by issuing work or by the GPU.
 */
async function profileDenoiser(file, device, batch, manifest) {
  const prefix = path.join(work, `profile-${device}-${batch}`);
  const session = await ort.InferenceSession.create(file, { ...sessionOptions({ device, threads }), enableProfiling: true, profileFilePrefix: prefix });
  const feeds = feedsFor(session, batch, manifest);
  for (let i = 0; i < 3 + PROFILE_RUNS; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  // ONNX Runtime names the file <prefix>_<date>.json and onnxruntime-node does not return the name.
  const base = path.basename(prefix);
  const found = readdirSync(work).filter((f) => f.startsWith(base) && f.endsWith('.json'));
  if (found.length === 0) return { error: 'no profile file' };
  const json = path.join(work, found.sort().at(-1));
  const events = JSON.parse(readFileSync(json, 'utf8'));
  rmSync(json);
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(-PROFILE_RUNS);
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const first = runs[0]?.ts ?? 0;
  const inRuns = nodes.filter((e) => e.ts >= first);
  const byOp = {};
  const byProvider = {};
  for (const e of inRuns) {
    const op = e.args?.op_name ?? '?';
    byOp[op] = (byOp[op] ?? 0) + e.dur / runs.length;
    const p = e.args?.provider ?? '?';
    byProvider[p] = (byProvider[p] ?? 0) + 1 / runs.length;
  }
  const top = Object.entries(byOp)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([op, us]) => [op, round(us / 1000)]);
  return {
    batch,
    runs: runs.length,
    run_ms: round(median(runs.map((r) => r.dur / 1000))),
    node_issue_ms_per_run: round(inRuns.reduce((sum, e) => sum + e.dur, 0) / 1000 / runs.length),
    nodes_per_run: round(inRuns.length / runs.length, 1),
    nodes_by_provider: Object.fromEntries(Object.entries(byProvider).map(([k, v]) => [k, round(v, 1)])),
    top_ops_ms: top,
  };
}

/** N_o denoiser steps at batch 1 from the reference's first row (docs/sampling.md schedule, the production sampler). */
async function sample(session, m, actionSteps, visionSteps) {
  const d = reference.denoiser.inputs;
  const row = (t, len) => decode(t).data.slice(0, len);
  const S = m.conditioning.tokens * m.conditioning.dim;
  const vl = new ort.Tensor('float32', row(d.vl_embs, S), [1, m.conditioning.tokens, m.conditioning.dim]);
  const state = new ort.Tensor('float32', row(d.state, m.state.dim), [1, m.state.dim]);
  const a0 = row(d.actions, m.action.horizon * m.action.dim);
  const o0 = row(d.future, m.future.tokens * m.future.dim);
  const emb = new ort.Tensor('int64', BigInt64Array.of(0n), [1]);
  const f = async (actions, future, tauA, tauO) => {
    const out = await session.run({
      vl_embs: vl,
      state,
      actions: new ort.Tensor('float32', Float32Array.from(actions), [1, m.action.horizon, m.action.dim]),
      future: new ort.Tensor('float32', Float32Array.from(future), [1, m.future.tokens, m.future.dim]),
      tau_a: new ort.Tensor('float32', Float32Array.of(tauA), [1]),
      tau_o: new ort.Tensor('float32', Float32Array.of(tauO), [1]),
      embodiment_id: emb,
    });
    return { vActions: out.v_actions.data, vFuture: out.v_future.data };
  };
  return sampleJoint(f, a0, o0, { actionSteps, visionSteps });
}

// The conditioning's host-to-device copy on the first configuration's device (CUDA on the GPU host): a graph that
// only reads its input (ReduceSum to a scalar).
const probe = path.join(work, 'copy_probe.onnx');
const probeDevice = configs[0].split('-')[0];
if (existsSync(probe))
  try {
    const m = JSON.parse(readFileSync(path.join(work, 'repo32', 'dust-paper', '1', 'manifest.json'), 'utf8'));
    const S = m.conditioning.tokens;
    const D = m.conditioning.dim;
    const kvWidth = Number(opt('kv-width', String(D * 32)));
    const session = await ort.InferenceSession.create(probe, sessionOptions({ device: probeDevice, threads }));
    const copy = (result.conditioning_copy = { device: probeDevice, conditioning: {}, cached_kv_via_host: {}, kv_width: kvWidth });
    for (const b of batches) {
      const x = new ort.Tensor('float32', new Float32Array(b * S * D).fill(0.5), [b, S, D]);
      const t = await timed(() => session.run({ x }));
      copy.conditioning[b] = { ...t, mb: round((b * S * D * 4) / 1e6, 1), gb_per_s: round((b * S * D * 4) / 1e6 / t.p50_ms, 2) };
    }
    for (const b of batches.filter((b) => b <= 8)) {
      const x = new ort.Tensor('float32', new Float32Array(b * S * kvWidth).fill(0.5), [b, S, kvWidth]);
      const t = await timed(() => session.run({ x }));
      copy.cached_kv_via_host[b] = { ...t, mb: round((b * S * kvWidth * 4) / 1e6, 1) };
    }
    await session.release();
    // Can onnxruntime-node keep a CUDA output on the device (IO binding)? Its gpu-buffer location is WebGPU's.
    try {
      const s2 = await ort.InferenceSession.create(probe, { ...sessionOptions({ device: probeDevice, threads }), preferredOutputLocation: 'gpu-buffer' });
      const out = await s2.run({ x: new ort.Tensor('float32', new Float32Array(S * D).fill(1), [1, S, D]) });
      result.gpu_buffer_output = { ok: true, location: out.y.location };
      await s2.release();
    } catch (err) {
      result.gpu_buffer_output = { ok: false, error: String(err?.message ?? err).split('\n')[0] };
    }
    log(`conditioning copy: ${JSON.stringify(copy.conditioning)}; gpu-buffer output: ${JSON.stringify(result.gpu_buffer_output)}`);
  } catch (err) {
    result.conditioning_copy = { error: String(err?.message ?? err).split('\n')[0] };
  }

for (const name of configs) {
  const [device, precision] = name.split('-');
  const repo = path.join(work, precision === 'fp16' ? 'repo16' : 'repo32', 'dust-paper', '1');
  const manifest = JSON.parse(readFileSync(path.join(repo, 'manifest.json'), 'utf8'));
  const entry = (result.configs[name] = { device, precision, package: repo });
  for (const graph of ['vlm', 'denoiser']) {
    if (performance.now() > deadline) {
      entry[graph] = { skipped: 'deadline' };
      continue;
    }
    const g = (entry[graph] = { batches: {} });
    const t0 = performance.now();
    let session;
    try {
      session = await ort.InferenceSession.create(path.join(repo, `${graph}.onnx`), sessionOptions({ device, threads }));
    } catch (err) {
      g.error = String(err?.message ?? err).split('\n')[0];
      log(`${name} ${graph}: ${g.error}`);
      continue;
    }
    g.create_ms = round(performance.now() - t0, 0);
    log(`${name} ${graph}: session created in ${g.create_ms} ms`);
    for (const b of batches) {
      if (performance.now() > deadline) break;
      const feeds = feedsFor(session, b, manifest);
      try {
        g.batches[b] = await timed(() => session.run(feeds));
      } catch (err) {
        g.batches[b] = { error: String(err?.message ?? err).split('\n')[0] };
      }
      log(`${name} ${graph} batch ${b}: ${JSON.stringify(g.batches[b])}`);
      save();
    }
    if (graph === 'denoiser' && profileBatch !== undefined && performance.now() < deadline) {
      try {
        g.profile = await profileDenoiser(path.join(repo, 'denoiser.onnx'), device, profileBatch, manifest);
      } catch (err) {
        g.profile = { error: String(err?.message ?? err).split('\n')[0] };
      }
      log(`${name} denoiser profile: ${JSON.stringify(g.profile)}`);
    }
    if (reference && performance.now() < deadline) {
      const ref = reference[graph];
      const feeds = Object.fromEntries(Object.entries(ref.inputs).map(([k, v]) => [k, decode(v)]));
      const out = await session.run(feeds);
      g.parity_vs_pytorch_fp32 = Object.fromEntries(Object.entries(ref.outputs).map(([k, v]) => [k, round(relL2(out[k].data, decode(v).data), 7)]));
      log(`${name} ${graph} parity (rel. L2 vs PyTorch fp32): ${JSON.stringify(g.parity_vs_pytorch_fp32)}`);
      if (graph === 'denoiser') {
        samples[name] = { '4:4': await sample(session, manifest, 4, 4), '4:16': await sample(session, manifest, 4, 16) };
      }
    }
    await session.release();
    save();
  }
}

// Sampling of each configuration against the first one (CUDA float32 on the GPU host), the same inputs and noise.
const base = samples[configs[0]];
if (base) {
  result.sampling_vs_first_config = { first: configs[0] };
  for (const [name, s] of Object.entries(samples)) {
    if (name === configs[0]) continue;
    result.sampling_vs_first_config[name] = Object.fromEntries(
      Object.entries(s).map(([cls, r]) => [
        cls,
        { actions: round(relL2(r.actions, base[cls].actions), 7), future: round(relL2(r.future, base[cls].future), 7) },
      ]),
    );
  }
}

result.deadline_hit = performance.now() > deadline;
save();
log(`written ${outFile}`);
