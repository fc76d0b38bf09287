#!/usr/bin/env node
// Where a graph's device time goes, op by op: ONNX Runtime's profiler (enableProfiling) on a session with the
// server's options, run with CUDA_LAUNCH_BLOCKING=1 so that each kernel launch waits for its kernel and the
// profiler's per-node host times are the nodes' device times (plus a few microseconds of synchronisation each).
// Without it the CUDA provider only queues kernels and the per-node times say nothing. Per batch size: the wall
// clock of a profiled run (slowed by the blocking launches), and the node times summed per op type and for the
// slowest nodes, medians over --runs runs. JSON to --out.
//
//   CUDA_LAUNCH_BLOCKING=1 node scripts/gpu/op-profile.mjs --app /tmp/app --package /tmp/gpu8/repo16/dust-paper/1
//        [--graph vlm|denoiser] [--device cuda] [--batches 1,64] [--runs 3] [--top 25] --out /tmp/gpu8/op-profile.json
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { app, median, option as opt } from './cli.mjs';

const pkg = path.resolve(opt('package', 'models/dust-tiny/1'));
const graph = opt('graph', 'vlm');
const device = opt('device', 'cuda');
const batches = opt('batches', '1,64').split(',').map(Number);
const runs = Number(opt('runs', '3'));
const top = Number(opt('top', '25'));
const outFile = opt('out', 'op-profile.json');
const { require, load } = app();
const ort = require('onnxruntime-node');
const { sessionOptions } = await load('dist/src/engine/index.js');

const log = (msg) => process.stderr.write(`[op-profile ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const round = (x) => Number(x.toFixed(3));
const manifest = JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8'));
const result = {
  package: pkg,
  graph,
  device,
  launchBlocking: process.env.CUDA_LAUNCH_BLOCKING === '1',
  runs,
  timing: 'ONNX Runtime profiler node events (kernel_time), ms; medians over runs',
  batches: {},
};
const save = () => writeFileSync(outFile, JSON.stringify(result, null, 1));
if (!result.launchBlocking && device === 'cuda') log('CUDA_LAUNCH_BLOCKING is not 1: node times are launch times, not device times');

let seed = 1;
const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const floats = (n) => Float32Array.from({ length: n }, () => 2 * rand() - 1);

function feeds(session, batch) {
  const { cameras, image } = manifest;
  const tokens = manifest.text.max_tokens;
  const f = {};
  for (const name of session.inputNames) {
    if (name === 'pixel_values' && image.pixel_dtype === 'uint8')
      f[name] = new ort.Tensor(
        'uint8',
        Uint8Array.from(floats(batch * cameras.length * 3 * image.height * image.width), (x) => Math.floor((x + 1) * 127.5)),
        [batch, cameras.length, 3, image.height, image.width],
      );
    else if (name === 'pixel_values')
      f[name] = new ort.Tensor('float32', floats(batch * cameras.length * 3 * image.height * image.width), [
        batch,
        cameras.length,
        3,
        image.height,
        image.width,
      ]);
    else if (name === 'input_ids')
      f[name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: batch * tokens }, (_, i) => BigInt(1 + (i % 13))),
        [batch, tokens],
      );
    else if (name === 'attention_mask')
      f[name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: batch * tokens }, (_, i) => (i % tokens < tokens - 8 ? 1n : 0n)),
        [batch, tokens],
      );
    else if (name === 'vl_embs')
      f[name] = new ort.Tensor('float32', floats(batch * manifest.conditioning.tokens * manifest.conditioning.dim), [
        batch,
        manifest.conditioning.tokens,
        manifest.conditioning.dim,
      ]);
    else if (name === 'state') f[name] = new ort.Tensor('float32', floats(batch * manifest.state.dim), [batch, manifest.state.dim]);
    else if (name === 'actions')
      f[name] = new ort.Tensor('float32', floats(batch * manifest.action.horizon * manifest.action.dim), [batch, manifest.action.horizon, manifest.action.dim]);
    else if (name === 'future')
      f[name] = new ort.Tensor('float32', floats(batch * manifest.future.tokens * manifest.future.dim), [batch, manifest.future.tokens, manifest.future.dim]);
    else if (name === 'tau_a' || name === 'tau_o')
      f[name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: batch }, () => 0.25 + 0.5 * rand()),
        [batch],
      );
    else if (name === 'action_times')
      f[name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: batch * manifest.action.horizon }, () => 0.5),
        [batch, manifest.action.horizon],
      );
    else if (name === 'embodiment_id') f[name] = new ort.Tensor('int64', new BigInt64Array(batch), [batch]);
    else throw new Error(`no feed for input ${name}`);
  }
  return f;
}

const dir = path.join(os.tmpdir(), `op-profile-${process.pid}`);
mkdirSync(dir, { recursive: true });
for (const batch of batches) {
  // A session per batch size: ONNX Runtime writes one profile per session, when profiling ends.
  const prefix = path.join(dir, `b${batch}`);
  const session = await ort.InferenceSession.create(path.join(pkg, `${graph}.onnx`), {
    ...sessionOptions({ device, threads: 1 }),
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const f = feeds(session, batch);
  await session.run(f); // warm: allocations, cuDNN/cuBLAS choices
  const wall = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await session.run(f);
    wall.push(performance.now() - t0);
  }
  // ONNX Runtime names the file <prefix>_<date>.json; onnxruntime-node's endProfiling does not return the name.
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.startsWith(`b${batch}_`) && f.endsWith('.json'));
  if (!file) throw new Error(`no profile was written for batch ${batch} in ${dir}`);
  const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  // Node events: name "<node>_kernel_time", args.op_name; the first run (warm) is dropped by keeping the last
  // `runs` events of each node.
  const perNode = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !String(e.name).endsWith('_kernel_time')) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    const entry = perNode.get(name) ?? { op: e.args?.op_name ?? '?', provider: e.args?.provider ?? '?', durs: [] };
    entry.durs.push(e.dur / 1000);
    perNode.set(name, entry);
  }
  const nodes = [...perNode.entries()].map(([name, e]) => ({ name, op: e.op, provider: e.provider, ms: median(e.durs.slice(-runs)) }));
  const byOp = {};
  for (const n of nodes) {
    const o = (byOp[n.op] ??= { nodes: 0, ms: 0 });
    o.nodes++;
    o.ms += n.ms;
  }
  const total = nodes.reduce((s, n) => s + n.ms, 0);
  result.batches[batch] = {
    wallMs: round(median(wall)),
    nodeMs: round(total),
    nodes: nodes.length,
    byOp: Object.fromEntries(
      Object.entries(byOp)
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([op, o]) => [op, { nodes: o.nodes, ms: round(o.ms) }]),
    ),
    slowest: nodes
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((n) => ({ ...n, ms: round(n.ms) })),
  };
  log(
    `${graph} batch ${batch}: wall ${result.batches[batch].wallMs} ms, nodes ${result.batches[batch].nodeMs} ms; top ops ${JSON.stringify(Object.entries(result.batches[batch].byOp).slice(0, 6))}`,
  );
  save();
}
rmSync(dir, { recursive: true, force: true });
log(`done: ${outFile}`);
