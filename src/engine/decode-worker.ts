/**
 * Decode worker thread: per request, the camera images to the pixel_values row (sharp; normalisation for a float32
 * package, none for a uint8 one, whose VLM normalises: docs/model-package.md, "Images") and
 * the seeded initial noise. This work used to run on the main thread and, in bursts of arrivals, kept health
 * checks waiting for tens of milliseconds; here it cannot.
 *
 * Requests are taken one at a time: sharp runs each image on libuv's threadpool, which is process-wide, so
 * without a bound a burst would put every pool thread to work on JPEGs and take cores from inference. One
 * request in flight per decode thread keeps the decoding cores at the pool's size.
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { errorToWire } from '../errors/index.js';
import { decodeViews } from '../preprocess/index.js';
import { initialNoise, randomSeed, type InitialNoise } from '../sampling/index.js';
import type { Decoded, DecoderInit, DecodeRequest, FromDecoder, ToDecoder } from './decode-protocol.js';
import { lowerThisThread } from './thread-priority.js';

const port = parentPort!;
const init = workerData as DecoderInit;

const NO_NOISE: InitialNoise = { actions: new Float32Array(0), future: new Float32Array(0) };

async function decode(request: DecodeRequest, imagesOnly: boolean): Promise<Decoded> {
  // sharp decodes and resizes on libuv's threads: this thread draws the noise meanwhile (2 ms for the paper-size
  // model's latents on the 2-core machine) instead of after the images. A plain JPEG at the model's size decodes
  // on this thread (preprocess/plain-jpeg.ts), so the pool hands the noise to another idle thread when it has one.
  const pixels = decodeViews(request.images, request.spec);
  const seed = request.seed ?? randomSeed(randomBytes);
  const noise = imagesOnly ? NO_NOISE : initialNoise(seed, request.noise.actions, request.noise.future);
  return { pixelValues: await pixels, noise, seed };
}

function send(msg: FromDecoder, arrays: readonly ArrayBufferView[]): void {
  port.postMessage(
    msg,
    [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))].filter((b) => b.byteLength > 0),
  );
}

lowerThisThread(init.niceness);
let tail: Promise<void> = Promise.resolve();
port.on('message', (msg: ToDecoder) => {
  const { id } = msg;
  const failed = (err: unknown) => port.postMessage({ kind: 'failed', id, error: errorToWire(err) } satisfies FromDecoder);
  tail = tail.then(async () => {
    try {
      if ('noise' in msg) {
        const noise = initialNoise(msg.noise.seed, msg.noise.noise.actions, msg.noise.noise.future);
        send({ kind: 'noise', id, noise }, [noise.actions, noise.future]);
        return;
      }
      const decoded = await decode(msg.request, msg.imagesOnly === true);
      send({ kind: 'decoded', id, decoded }, [decoded.pixelValues, decoded.noise.actions, decoded.noise.future]);
    } catch (err) {
      failed(err);
    }
  });
});
