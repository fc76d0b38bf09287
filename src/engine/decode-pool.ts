/**
 * The decode pool: worker threads that turn a request's camera images into its pixel_values row and draw its
 * initial noise (decode-worker.ts), so the gRPC event loop only does I/O. Sized to the cores left after the
 * inference threads; a request goes to the thread with the fewest requests in flight. When two threads are idle
 * and the noise is large, one decodes the images while the other draws the noise (the seed drawn here first), so
 * a lone robot waits for the longer of the two rather than their sum. A thread that dies is replaced; the
 * requests it held fail with UNAVAILABLE (safe to retry).
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { errorFromWire, UnavailableError } from '../errors/index.js';
import { randomSeed, type InitialNoise } from '../sampling/index.js';
import type { Decoded, DecoderInit, DecodeRequest, FromDecoder, ToDecoder } from './decode-protocol.js';
import { workerScript } from './worker-script.js';

/**
 * Noise elements from which a request's noise goes to a second idle thread: about 0.4 ms of drawing on the 2-core
 * machine (the paper-size model's 74,240 take 1.8 ms there), against some 0.1 ms for the extra message.
 */
export const SPLIT_NOISE_FROM = 16_384;

export interface DecodePoolOptions {
  readonly threads: number;
  /** Nice value the threads lower themselves to (the decodeNiceness option); 0 = normal priority. */
  readonly niceness: number;
}

interface Pending {
  readonly resolve: (result: Decoded | InitialNoise) => void;
  readonly reject: (e: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

export class DecodePool {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;
  private readonly init: DecoderInit;

  constructor(options: DecodePoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError(`decode threads must be a positive integer, got ${options.threads}`);
    this.init = { niceness: options.niceness };
    for (let i = 0; i < options.threads; i++) this.threads.push(this.spawn(i));
  }

  get size(): number {
    return this.threads.length;
  }

  /**
   * Decodes on the least busy thread, the noise on a second one when both are idle and the noise is large (the
   * module comment). Image bytes are copied once into buffers that move to that thread.
   */
  decode(request: DecodeRequest): Promise<Decoded> {
    if (this.closed) return Promise.reject(new UnavailableError('the server is shutting down'));
    const images = request.images.map((img) => (img.data instanceof Uint8Array ? { ...img, data: new Uint8Array(img.data) } : img));
    const transfer = images.map((img) => img.data.buffer).filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    const idle = this.threads.filter((t) => t.pending.size === 0);
    if (idle.length >= 2 && request.noise.actions + request.noise.future >= SPLIT_NOISE_FROM) {
      const seed = request.seed ?? randomSeed(randomBytes);
      const pixels = this.send(idle[0], (id) => ({ id, request: { ...request, images, seed }, imagesOnly: true }), transfer) as Promise<Decoded>;
      const noise = this.send(idle[1], (id) => ({ id, noise: { seed, noise: request.noise } })) as Promise<InitialNoise>;
      return Promise.all([pixels, noise]).then(([decoded, drawn]) => ({ pixelValues: decoded.pixelValues, noise: drawn, seed }));
    }
    const thread = idle[0] ?? this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return this.send(thread, (id) => ({ id, request: { ...request, images } }), transfer) as Promise<Decoded>;
  }

  private send(thread: Thread, message: (id: number) => ToDecoder, transfer: ArrayBuffer[] = []): Promise<Decoded | InitialNoise> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(message(id), transfer);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private spawn(index: number): Thread {
    const worker = new Worker(workerScript('decode-worker'), { workerData: this.init });
    worker.unref();
    const thread: Thread = { worker, pending: new Map() };
    worker.on('message', (msg: FromDecoder) => {
      const p = thread.pending.get(msg.id);
      if (!p) return;
      thread.pending.delete(msg.id);
      if (msg.kind === 'decoded') p.resolve(msg.decoded);
      else if (msg.kind === 'noise') p.resolve(msg.noise);
      else p.reject(errorFromWire(msg.error));
    });
    let gone = false;
    const onLost = (why: string) => {
      if (gone) return;
      gone = true;
      const err = new UnavailableError(`an image decoding thread stopped (${why}); retry the request`);
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
      if (!this.closed) this.threads[index] = this.spawn(index);
    };
    worker.on('error', (err) => onLost(err.message));
    worker.on('exit', (code) => onLost(`exit code ${code}`));
    return thread;
  }
}
