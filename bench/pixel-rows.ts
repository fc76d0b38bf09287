#!/usr/bin/env node
/**
 * `npm run bench:pixel-rows`: what a package whose VLM takes uint8 pixel_values (docs/model-package.md, "Images") saves
 * on the host per request against a float32 one, at the paper-size VLM's image shapes by default (3 cameras at
 * 224 x 224): the decode threads' work per request (decodeViews on the same JPEGs, for each pixel type), the bytes of
 * the row that travels to the inference thread and the device, and the copy of a VLM batch's rows to where the VLM
 * reads them, done as each executor does it: the native executor's (an addon view over each row and one CopyTensors
 * call into a buffer on the VLM's session: a memcpy on the CPU, the host-to-device copy on a GPU) and
 * onnxruntime-node's (the rows packed into one kept host array, wrapped in a Tensor). Medians of --runs runs of the
 * mean of --calls calls, the two types taking turns call by call; JSON as bench/results.ts writes it.
 */
import os from 'node:os';
import { Command } from 'commander';
import * as ortNode from 'onnxruntime-node';
import sharp from 'sharp';
import { copyModel } from '../src/engine/executor-graphs.js';
import { loadNativeOrt, type NativeOrt, type NativeValue } from '../src/engine/native-ort.js';
import { decodeViews, emptyPixelRow, type ImageInput, type ImageSpec, type PixelDtype, type PixelRow } from '../src/preprocess/index.js';
import { number } from './cli-args.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { median, round } from './stats.js';

const sizes = (v: string) =>
  v.split(',').map((s) => {
    const [w, h = w] = s.split('x').map(Number);
    return { width: w, height: h };
  });

const program = new Command('bench-pixel-rows')
  .option('--cameras <n>', 'camera views per request', number(1, true), 3)
  .option('--size <n>', "the model's image side (H = W)", number(1, true), 224)
  .option('--sources <list>', 'camera frame sizes sent (WxH, comma separated): at the model size, and larger (resized)', sizes, sizes('224x224,640x480'))
  .option('--batch <n>', 'rows in the VLM batch whose copy-in is timed', number(1, true), 16)
  .option('--runs <n>', 'runs per measurement; the median is reported', number(1, true), 7)
  .option('--calls <n>', 'calls per run', number(1, true), 20);
addResultOptions(program).parse();
const opts = program.opts<{
  cameras: number;
  size: number;
  sources: Array<{ width: number; height: number }>;
  batch: number;
  runs: number;
  calls: number;
  out?: string;
  save?: boolean;
  json?: boolean;
}>();

const DTYPES: readonly PixelDtype[] = ['float32', 'uint8'];

/** Mean ms of `calls` calls per run and type, the types taking turns call by call (alternating which goes first). */
async function measure(f: (dtype: PixelDtype) => unknown): Promise<Record<PixelDtype, number>> {
  for (const d of DTYPES) await f(d);
  const samples: Record<PixelDtype, number[]> = { float32: [], uint8: [] };
  for (let r = 0; r < opts.runs; r++) {
    const total = { float32: 0, uint8: 0 };
    for (let c = 0; c < opts.calls; c++) {
      for (const d of c % 2 === 0 ? DTYPES : [...DTYPES].reverse()) {
        const t0 = performance.now();
        await f(d);
        total[d] += performance.now() - t0;
      }
    }
    for (const d of DTYPES) samples[d].push(total[d] / opts.calls);
  }
  return { float32: round(median(samples.float32)), uint8: round(median(samples.uint8)) };
}

/** One JPEG per camera of the given size, each with its own content (quality 85, as a camera stream might send). */
async function cameraFrames(cameras: readonly string[], width: number, height: number): Promise<ImageInput[]> {
  return Promise.all(
    cameras.map(async (camera, v) => {
      const px = Buffer.alloc(width * height * 3);
      for (let i = 0; i < px.length; i++) px[i] = (i * (7 + v) + (i >> 9)) & 255;
      const data = await sharp(px, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer();
      return { camera, encoding: 'JPEG' as const, width, height, data };
    }),
  );
}

/** The native executor's copy of a batch's rows into the VLM's staging buffer (native-executor.ts vlmCall). */
function nativeCopy(ort: NativeOrt, rows: readonly PixelRow[], dtype: PixelDtype): { copy: () => void; release: () => void } {
  const session = new ort.Session(copyModel(dtype), { device: 'cpu', threads: 1 });
  const len = rows[0].length;
  const rowBytes = rows[0].byteLength;
  const buffer = new ort.Buffer(session, rows.length * rowBytes);
  const staged = rows.map((_, b) => new ort.Value(buffer, b * rowBytes, dtype, [len]));
  return {
    copy() {
      const views: NativeValue[] = rows.map((row) => new ort.Value(row, 0, dtype, [len]));
      try {
        ort.copy(views.map((v, b) => [v, staged[b]] as const));
      } finally {
        for (const v of views) v.release();
      }
    },
    release() {
      for (const v of staged) v.release();
      buffer.release();
      session.release();
    },
  };
}

/** onnxruntime-node's copy of a batch's rows into its kept host buffer (onnx-executor.ts packPixels). */
function onnxruntimeNodePack(rows: readonly PixelRow[], dtype: PixelDtype, dims: readonly number[]): () => ortNode.Tensor {
  const buffer = emptyPixelRow(dtype, rows.length * rows[0].length);
  return () => {
    rows.forEach((row, b) => buffer.set(row, b * row.length));
    return buffer instanceof Uint8Array ? new ortNode.Tensor('uint8', buffer, dims) : new ortNode.Tensor('float32', buffer, dims);
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const load = loadNativeOrt();
  if (!load.ok) throw new Error(`the native addon cannot run: missing ${load.missing}. To fix: ${load.fix}`);
  const cameras = Array.from({ length: opts.cameras }, (_, v) => `camera${v}`);
  const image = { height: opts.size, width: opts.size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;
  const specs: Record<PixelDtype, ImageSpec> = {
    float32: { cameras, image: { ...image, pixel_dtype: 'float32' } },
    uint8: { cameras, image: { ...image, pixel_dtype: 'uint8' } },
  };

  const decode: Record<string, Record<PixelDtype, number>> = {};
  for (const { width, height } of opts.sources) {
    const frames = await cameraFrames(cameras, width, height);
    decode[`${width}x${height}`] = await measure((d) => decodeViews(frames, specs[d]));
    process.stderr.write(`decode ${width}x${height}: ${JSON.stringify(decode[`${width}x${height}`])}\n`);
  }

  // Distinct rows, as a batch of requests has: the copy reads each from its own memory.
  const frames = await cameraFrames(cameras, opts.size, opts.size);
  const rows: Record<PixelDtype, PixelRow[]> = { float32: [], uint8: [] };
  for (const d of DTYPES) for (let b = 0; b < opts.batch; b++) rows[d].push(await decodeViews(frames, specs[d]));
  const rowBytes = { float32: rows.float32[0].byteLength, uint8: rows.uint8[0].byteLength };
  const native = { float32: nativeCopy(load.ort, rows.float32, 'float32'), uint8: nativeCopy(load.ort, rows.uint8, 'uint8') };
  const dims = [opts.batch, opts.cameras, 3, opts.size, opts.size];
  const pack = { float32: onnxruntimeNodePack(rows.float32, 'float32', dims), uint8: onnxruntimeNodePack(rows.uint8, 'uint8', dims) };
  const copyIn = {
    native: await measure((d) => native[d].copy()),
    onnxruntimeNode: await measure((d) => pack[d]()),
  };
  process.stderr.write(`copy-in at batch ${opts.batch}: ${JSON.stringify(copyIn)}\n`);
  for (const n of Object.values(native)) n.release();

  const result = {
    host: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, onnxRuntime: load.version },
    shapes: { cameras: opts.cameras, height: opts.size, width: opts.size },
    runs: opts.runs,
    callsPerRun: opts.calls,
    unit: 'ms per call, median of runs',
    rowBytes,
    decodePerRequest: decode,
    copyIn: { batch: opts.batch, batchBytes: { float32: opts.batch * rowBytes.float32, uint8: opts.batch * rowBytes.uint8 }, ...copyIn },
  };
  const lines = [
    `row: float32 ${rowBytes.float32} B, uint8 ${rowBytes.uint8} B`,
    ...Object.entries(decode).map(([src, t]) => `decode per request, ${src} frames: float32 ${t.float32} ms, uint8 ${t.uint8} ms`),
    `copy-in of ${opts.batch} rows: native float32 ${copyIn.native.float32} ms, uint8 ${copyIn.native.uint8} ms; onnxruntime-node float32 ${copyIn.onnxruntimeNode.float32} ms, uint8 ${copyIn.onnxruntimeNode.uint8} ms`,
  ];
  writeResult(resultMeta('pixel-rows', { serverArgs: ['--device', 'cpu'], startedAt }), result, opts, lines);
}

await main();
