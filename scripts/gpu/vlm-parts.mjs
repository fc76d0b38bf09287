#!/usr/bin/env node
// Times what scripts/gpu/vlm_parts.py wrote (the VLM cut after each part, and the VLM with its patch-embedding Conv
// as a MatMul) next to the package's own vlm.onnx, through onnxruntime-node with the server's session options, at
// each batch size: medians of wall-clock session.run() after one warm call. Consecutive prefixes' differences are
// each part's cost. The rewritten VLM is first checked against the original on the same inputs (relative L2 of
// both outputs), so a faster variant is known to compute the same thing. JSON to --out.
//
//   node scripts/gpu/vlm-parts.mjs --app /tmp/app --package /tmp/gpu8/repo16/dust-paper/1 --parts /tmp/gpu8/vlm-parts
//        [--device cuda] [--batches 1,8,64] [--runs 10] --out /tmp/gpu8/vlm-parts.json
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { app, median, option as opt, relL2 } from './cli.mjs';

const pkg = path.resolve(opt('package', 'models/dust-tiny/1'));
const parts = path.resolve(opt('parts', '/tmp/gpu8/vlm-parts'));
const device = opt('device', 'cuda');
const batches = opt('batches', '1,8,64').split(',').map(Number);
const runs = Number(opt('runs', '10'));
const outFile = opt('out', 'vlm-parts.json');
const { require, load } = app();
const ort = require('onnxruntime-node');
const { sessionOptions } = await load('dist/src/engine/index.js');

const log = (msg) => process.stderr.write(`[vlm-parts ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const round = (x) => Number(x.toFixed(3));
const manifest = JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8'));
const result = { package: pkg, device, batches, runs, timing: 'wall clock of session.run(), median', models: {} };
const save = () => writeFileSync(outFile, JSON.stringify(result, null, 1));

function feeds(batch, seed = 1) {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const { cameras, image } = manifest;
  const tokens = manifest.text?.max_tokens ?? manifest.tokenizer?.max_tokens ?? 108;
  const n = batch * cameras.length * 3 * image.height * image.width;
  // A uint8-pixel package takes the camera bytes and normalises them in its graph (docs/model-package.md, "Images").
  const uint8 = image.pixel_dtype === 'uint8';
  const px = uint8 ? Uint8Array.from({ length: n }, () => Math.floor(256 * rand())) : Float32Array.from({ length: n }, () => 2 * rand() - 1);
  const ids = BigInt64Array.from({ length: batch * tokens }, (_, i) => BigInt(1 + (i % 13)));
  const mask = BigInt64Array.from({ length: batch * tokens }, (_, i) => (i % tokens < tokens - 8 ? 1n : 0n));
  return {
    pixel_values: new ort.Tensor(uint8 ? 'uint8' : 'float32', px, [batch, cameras.length, 3, image.height, image.width]),
    input_ids: new ort.Tensor('int64', ids, [batch, tokens]),
    attention_mask: new ort.Tensor('int64', mask, [batch, tokens]),
  };
}

async function open(file) {
  return ort.InferenceSession.create(file, sessionOptions({ device, threads: 1 }));
}

/** The feeds a session takes (a prefix may not use every VLM input). */
const take = (session, all) => Object.fromEntries(session.inputNames.map((n) => [n, all[n]]));

const listed = JSON.parse(readFileSync(path.join(parts, 'parts.json'), 'utf8'));
const models = [...listed.map((p) => [p.file, path.join(parts, p.file)]), ['vlm.onnx', path.join(pkg, 'vlm.onnx')]];

// The rewrite against the original first: same inputs, both outputs.
{
  const a = await open(path.join(pkg, 'vlm.onnx'));
  const b = await open(path.join(parts, 'conv-as-matmul.onnx'));
  const f = feeds(2, 7);
  const [ra, rb] = [await a.run(take(a, f)), await b.run(take(b, f))];
  result.convAsMatmulVsOriginal = Object.fromEntries(a.outputNames.map((n) => [n, Number(relL2(rb[n].data, ra[n].data).toExponential(3))]));
  log(`conv-as-matmul against vlm.onnx (rel. L2): ${JSON.stringify(result.convAsMatmulVsOriginal)}`);
  await a.release();
  await b.release();
  save();
}

for (const [name, file] of models) {
  const session = await open(file);
  const entry = (result.models[name] = {});
  for (const batch of batches) {
    const f = take(session, feeds(batch));
    const t0 = performance.now();
    await session.run(f);
    const firstMs = performance.now() - t0;
    const times = [];
    for (let r = 0; r < runs; r++) {
      const t1 = performance.now();
      await session.run(f);
      times.push(performance.now() - t1);
    }
    entry[batch] = { firstMs: round(firstMs), p50Ms: round(median(times)), minMs: round(Math.min(...times)) };
  }
  log(`${name}: ${JSON.stringify(entry)}`);
  await session.release();
  save();
}
log(`done: ${outFile}`);
