#!/usr/bin/env node
// Latency of a package's two graphs in onnxruntime-node, the runtime the server uses. Prints JSON.
// Usage: node models/toolchain/scripts/ort-latency.mjs [packageDir] [--threads 1,2] [--batches 1,32] [--iters 200]
// Inputs are random with the declared shapes (ids/embodiments in range); the numbers are wall-clock per call,
// after warm-up, with intra-op threads as given and inter-op 1 (sequential execution).
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const dir = args[0] && !args[0].startsWith('--') ? args[0] : 'models/dust-tiny/1';
const threads = opt('threads', '1,2').split(',').map(Number);
const batches = opt('batches', '1,32').split(',').map(Number);
const iters = Number(opt('iters', '200'));

function feedsFor(session, batch) {
  const feeds = {};
  for (const meta of session.inputMetadata) {
    const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : batch));
    const n = shape.reduce((a, b) => a * b, 1);
    if (meta.type === 'int64') {
      const data = new BigInt64Array(n);
      // Every id valid: embodiment 0/1, token ids small, attention mask all ones.
      for (let i = 0; i < n; i++) data[i] = meta.name === 'embodiment_id' ? BigInt(i % 2) : meta.name === 'attention_mask' ? 1n : BigInt(2 + (i % 7));
      feeds[meta.name] = new ort.Tensor('int64', data, shape);
    } else {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = meta.name.startsWith('tau') ? (i % 4) / 4 : Math.sin(i * 12.9898) * 0.5;
      feeds[meta.name] = new ort.Tensor('float32', data, shape);
    }
  }
  return feeds;
}

async function time(session, feeds, n) {
  for (let i = 0; i < Math.min(20, n); i++) await session.run(feeds);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  return { mean_ms: +mean.toFixed(4), p50_ms: +samples[Math.floor(n / 2)].toFixed(4), p90_ms: +samples[Math.floor(n * 0.9)].toFixed(4) };
}

const results = [];
for (const graph of ['denoiser', 'vlm']) {
  for (const t of threads) {
    const session = await ort.InferenceSession.create(join(dir, `${graph}.onnx`), {
      intraOpNumThreads: t,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    for (const b of batches) {
      const n = graph === 'vlm' && b > 8 ? Math.max(20, Math.floor(iters / 4)) : iters;
      results.push({ graph, threads: t, batch: b, iters: n, ...(await time(session, feedsFor(session, b), n)) });
    }
    await session.release();
  }
}
console.log(JSON.stringify({ package: dir, node: process.version, results }, null, 1));
