/** Messages between the scheduler's WorkerExecutor and the inference worker thread. */
import type { GraphInfo } from '../model/index.js';
import type { ModelShapes, StepBatch, VlmBatch } from './executor.js';

export type Device = 'cpu' | 'webgpu' | 'cuda';

export interface WorkerInit {
  readonly vlmPath: string;
  readonly denoiserPath: string;
  readonly device: Device;
  readonly threads: number;
  readonly capacity: number;
  readonly shapes: ModelShapes;
}

export type WorkerRequest =
  | { readonly id: number; readonly kind: 'vlm'; readonly batch: VlmBatch }
  | { readonly id: number; readonly kind: 'step'; readonly batch: StepBatch }
  | { readonly id: number; readonly kind: 'close' };

export type WorkerReply =
  | { readonly kind: 'ready'; readonly vlm: GraphInfo; readonly denoiser: GraphInfo }
  | { readonly kind: 'vlm'; readonly obsEmbedding: Float32Array; readonly runMs: number }
  | { readonly kind: 'step'; readonly actions: Float32Array; readonly future: Float32Array; readonly runMs: number; readonly hostMs: number }
  | { readonly kind: 'closed' }
  | { readonly kind: 'error'; readonly message: string; readonly stack?: string };
