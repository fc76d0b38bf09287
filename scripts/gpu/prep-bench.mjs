#!/usr/bin/env node
// Where a batch-1 request's time goes before its VLM call starts (the server reports it as queue_ms): the
// server's own preprocessing functions, one request at a time, on this host's CPU, with the package's shapes.
// The bench's robots send one 64x64 JPEG per camera; the server resizes each to the manifest's size.
//
//   node scripts/gpu/prep-bench.mjs --app /tmp/app --package /tmp/gpu8/repo32/dust-paper/1 [--iters 30] --out prep.json
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { app, option as opt } from './cli.mjs';

const pkg = path.resolve(opt('package', 'models/dust-tiny/1'));
const iters = Number(opt('iters', '30'));
const { require, load } = app();
const sharp = require('sharp');
const { decodeViews, normalizeState, PromptTokenizer } = await load('dist/src/preprocess/index.js');
const { initialNoise, randomSeed } = await load('dist/src/sampling/index.js');
const { parseManifest } = await load('dist/src/model/index.js');

const manifest = parseManifest(JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8')), pkg);
const side = 64;
const px = Buffer.alloc(side * side * 3);
for (let i = 0; i < px.length; i++) px[i] = (i * 7 + (i >> 6)) & 255;
const jpeg = await sharp(px, { raw: { width: side, height: side, channels: 3 } })
  .jpeg({ quality: 85 })
  .toBuffer();
const images = manifest.cameras.map((camera) => ({ camera, encoding: 'JPEG', width: side, height: side, data: jpeg }));
const tokenizer = await PromptTokenizer.fromFile(path.join(pkg, manifest.text.tokenizer), manifest.text);
const [embodimentName, embodiment] = Object.entries(manifest.embodiments)[0];

async function median(fn) {
  for (let i = 0; i < 3; i++) await fn();
  const t = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return { p50_ms: Number(t[Math.floor(t.length / 2)].toFixed(3)), min_ms: Number(t[0].toFixed(3)) };
}

const noiseLength = [manifest.action.horizon * manifest.action.dim, manifest.future.tokens * manifest.future.dim];
const result = {
  package: pkg,
  cameras: manifest.cameras.length,
  image: `${side}x${side} JPEG -> ${manifest.image.width}x${manifest.image.height}`,
  noiseFloats: noiseLength[0] + noiseLength[1],
  decodeViews: await median(() => decodeViews(images, manifest)),
  tokenize: await median(() => tokenizer.encode('pick up the red block and place it in the bowl')),
  initialNoise: await median(() => initialNoise(randomSeed(randomBytes), noiseLength[0], noiseLength[1])),
  normalizeState: await median(() => normalizeState(new Array(embodiment.state_dim).fill(0), embodiment, manifest.state.dim, embodimentName)),
};
writeFileSync(opt('out', 'prep.json'), JSON.stringify(result, null, 1));
console.log(JSON.stringify(result));
