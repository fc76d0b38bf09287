/**
 * Decode worker thread: per request, the camera images to the pixel_values row (sharp, normalisation) and
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
import { initialNoise, randomSeed } from '../sampling/index.js';
import type { Decoded, DecoderInit, DecodeRequest, FromDecoder, ToDecoder } from './decode-protocol.js';
import { lowerThisThread } from './thread-priority.js';

const port = parentPort!;
const init = workerData as DecoderInit;

async function decode(request: DecodeRequest): Promise<Decoded> {
  // sharp decodes and resizes on libuv's threads: this thread draws the noise meanwhile (2 ms for the paper-size
  // model's latents on the 2-core machine) instead of after the images.
  const pixels = decodeViews(request.images, request.spec);
  const seed = request.seed ?? randomSeed(randomBytes);
  const noise = initialNoise(seed, request.noise.actions, request.noise.future);
  return { pixelValues: await pixels, noise, seed };
}

lowerThisThread(init.niceness);
let tail: Promise<void> = Promise.resolve();
port.on('message', ({ id, request }: ToDecoder) => {
  tail = tail.then(() =>
    decode(request).then(
      (decoded) => {
        const buffers = new Set([decoded.pixelValues.buffer, decoded.noise.actions.buffer, decoded.noise.future.buffer] as ArrayBuffer[]);
        port.postMessage({ kind: 'decoded', id, decoded } satisfies FromDecoder, [...buffers]);
      },
      (err: unknown) => port.postMessage({ kind: 'failed', id, error: errorToWire(err) } satisfies FromDecoder),
    ),
  );
});
