/** Messages between the main thread's DecodePool and its decode worker threads. */
import type { WireError } from '../errors/index.js';
import type { ImageInput, ImageSpec, PixelRow } from '../preprocess/index.js';
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
  /** The request's pixel_values row [V, 3, H, W], of the type `spec.image.pixel_dtype` names (decodeViews). */
  readonly pixelValues: PixelRow;
  readonly noise: InitialNoise;
  /** The seed the noise was drawn from. */
  readonly seed: bigint;
}

export interface DecoderInit {
  /** Nice value the decode thread lowers itself to (Linux), so the event loop wins a contended core; 0 = leave it. */
  readonly niceness: number;
}

/** The initial noise alone, of a seed already drawn: one request's work split over two idle threads. */
export interface NoiseRequest {
  readonly seed: bigint;
  readonly noise: { readonly actions: number; readonly future: number };
}

/** A whole request (images and noise), or its images alone (`imagesOnly`), or its noise alone. */
export type ToDecoder =
  { readonly id: number; readonly request: DecodeRequest; readonly imagesOnly?: boolean } | { readonly id: number; readonly noise: NoiseRequest };

export type FromDecoder =
  | { readonly kind: 'decoded'; readonly id: number; readonly decoded: Decoded }
  | { readonly kind: 'noise'; readonly id: number; readonly noise: InitialNoise }
  | { readonly kind: 'failed'; readonly id: number; readonly error: WireError };
