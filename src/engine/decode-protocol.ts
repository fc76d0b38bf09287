/** Messages between the main thread's DecodePool and its decode worker threads. */
import type { WireError } from '../errors/index.js';
import type { ImageInput, ImageSpec } from '../preprocess/index.js';
import type { InitialNoise } from '../sampling/index.js';

export interface DecodeRequest {
  readonly images: readonly ImageInput[];
  readonly spec: ImageSpec;
  /** The request's seed; the worker draws one when undefined. */
  readonly seed: bigint | undefined;
  /** Elements of A_0 and O_0. */
  readonly noise: { readonly actions: number; readonly future: number };
}

export interface Decoded {
  /** The request's pixel_values row [V, 3, H, W]. */
  readonly pixelValues: Float32Array;
  readonly noise: InitialNoise;
  /** The seed the noise was drawn from. */
  readonly seed: bigint;
}

export interface DecoderInit {
  /** Nice value the decode thread lowers itself to (Linux), so the event loop wins a contended core; 0 = leave it. */
  readonly niceness: number;
}

export type ToDecoder = { readonly id: number; readonly request: DecodeRequest };

export type FromDecoder =
  { readonly kind: 'decoded'; readonly id: number; readonly decoded: Decoded } | { readonly kind: 'failed'; readonly id: number; readonly error: WireError };
