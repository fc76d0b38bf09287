/**
 * The model package manifest, format_version 1 (docs/model-package.md).
 * Types describe the JSON as parsed; `parseManifest` (manifest-schema.ts) checks a parsed value against them and fills
 * in what an absent optional section means where the rest of the server would otherwise ask each time (`future`).
 */

export interface MinMax {
  readonly min: readonly number[];
  readonly max: readonly number[];
}

export interface EmbodimentSpec {
  /** Row value fed to the denoiser's `embodiment_id` input. */
  readonly id: number;
  /** The embodiment's real state width; the graph's state is zero-padded to `state.dim`. */
  readonly state_dim: number;
  /** The embodiment's real action width; only these columns are returned to the robot. */
  readonly action_dim: number;
  /** Min-max statistics; normalization maps [min, max] to [-1, 1] per dimension (GR00T convention). */
  readonly normalization: { readonly state: MinMax; readonly action: MinMax };
}

export interface Manifest {
  readonly format_version: 1;
  readonly name: string;
  readonly version: number;
  readonly description?: string;
  readonly architecture: Readonly<Record<string, unknown>> & {
    readonly family: string;
    /** What would break a CUDA-graph replay of the denoiser (the toolchain's check; [] = nothing); absent in older packages. */
    readonly cuda_graph_hazards?: readonly string[];
  };
  readonly image: {
    readonly height: number;
    readonly width: number;
    readonly mean: readonly [number, number, number];
    readonly std: readonly [number, number, number];
    /**
     * Element type of vlm.onnx's `pixel_values` (docs/model-package.md, "Images"), as the toolchain read it from the
     * graph: `uint8` takes the resized pixels and normalises them in the graph. Absent (packages written before the
     * field) = float32. The loader checks it against the graph's declared input (checkGraphs).
     */
    readonly pixel_dtype?: 'float32' | 'uint8';
  };
  /** Camera names; the order is the order of the `V` axis of `pixel_values`. The first is the main camera. */
  readonly cameras: readonly string[];
  readonly text: {
    readonly max_tokens: number;
    readonly tokenizer: string;
    readonly prompt_template: string;
  };
  readonly conditioning: { readonly tokens: number; readonly dim: number };
  readonly action: { readonly horizon: number; readonly dim: number };
  readonly state: { readonly dim: number };
  /**
   * The future-observation stream's sizes, T_o and d_o; { tokens: 0, dim: 0 } (NO_FUTURE_STREAM) for an action-only
   * package, whose manifest has no `future` (docs/model-package.md, "Action-only packages"). Ask hasFutureStream.
   */
  readonly future: { readonly tokens: number; readonly dim: number };
  readonly sampling: {
    readonly action_steps: number;
    readonly vision_steps: number;
    readonly max_vision_steps: number;
  };
  readonly embodiments: Readonly<Record<string, EmbodimentSpec>>;
  /**
   * The real-time chunking methods the package answers a committed prefix with (docs/model-package.md); absent =
   * every guidance-free method (none needs training), [] = a prefix is refused. Listing `condition` (a model
   * trained with prefix conditioning) also means the denoiser takes per-position action times (`action_times`).
   */
  readonly realtime_chunking?: readonly RealtimeChunkingMethod[];
  readonly training?: Readonly<Record<string, unknown>>;
  /** File name -> "sha256:<hex>". */
  readonly files: Readonly<Record<string, string>>;
}

/** What parseManifest records for a manifest without `future`: zero-length future rows everywhere they are sized. */
export const NO_FUTURE_STREAM: Manifest['future'] = Object.freeze({ tokens: 0, dim: 0 });

/**
 * Whether the package predicts future observations (a DUST policy) or is action-only (docs/model-package.md,
 * "Action-only packages"): only then do its graphs have obs_embedding, future, tau_o and v_future, and its responses
 * a future embedding and world-model surprise.
 */
export function hasFutureStream(m: Pick<Manifest, 'future'>): boolean {
  return m.future.tokens > 0;
}

/** The methods of docs/sampling.md, "Real-time chunking" (src/sampling/chunking.ts implements them). */
export type RealtimeChunkingMethod = 'condition' | 'inpaint' | 'naive' | 'ensemble';
