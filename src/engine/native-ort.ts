/**
 * The typed face of the native addon (native/src/dust_ort.cc, built by `npm run build:native`): ONNX Runtime's C API
 * for what onnxruntime-node cannot do on CUDA, namely tensors that stay on the device between calls, I/O binding
 * and CUDA graphs (BENCHMARKS.md, "CUDA on one H200"). The addon links nothing: it opens the libonnxruntime.so.1
 * that onnxruntime-node already loaded, so the process holds one ONNX Runtime. native-executor.ts is its user.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onnxRuntimeBinDir } from './device-probe.js';
import { BUILD_NATIVE_FIX, type NativeStatus } from './executor-selection.js';

export type NativeDevice = 'cpu' | 'cuda';
export type DType = 'float32' | 'int64' | 'int32' | 'float16' | 'uint8';

export interface ValueMetadata {
  readonly name: string;
  /** 'float32', 'int64', ... or 'non-tensor'. */
  readonly type: string;
  /** Sizes, and symbols' names for symbolic axes. */
  readonly shape: readonly (number | string)[];
}

export interface SessionOptions {
  readonly device: NativeDevice;
  /** Intra-op threads. */
  readonly threads: number;
  /** ONNX Runtime's CUDA graphs (enable_cuda_graph): a run with a graph id replays what its first run captured. */
  readonly cudaGraph?: boolean;
  readonly deviceId?: number;
  /** ONNX Runtime's session log severity (0 verbose .. 4 fatal): 0 logs where each node was placed. */
  readonly logSeverity?: number;
  /** ONNX Runtime session configuration entries (AddSessionConfigEntry), e.g. session.disable_cpu_ep_fallback. */
  readonly config?: Readonly<Record<string, string>>;
}

export interface NativeSession {
  readonly device: NativeDevice;
  inputs(): ValueMetadata[];
  outputs(): ValueMetadata[];
  /** Binds the views (I/O binding) and runs; with a graph id, ONNX Runtime captures or replays that CUDA graph. */
  run(inputs: Readonly<Record<string, NativeValue>>, outputs: Readonly<Record<string, NativeValue>>, graphId?: number): void;
  release(): void;
}

/** Memory on a session's device (zeroed host memory for a CPU session; device memory comes uninitialised). */
export interface NativeBuffer {
  readonly bytes: number;
  readonly host: boolean;
  release(): void;
}

/** A tensor over memory it does not own: a buffer at a byte offset, or a typed array. */
export interface NativeValue {
  readonly bytes: number;
  release(): void;
}

/** What the addon exports. */
export interface NativeOrt {
  init(libonnxruntimePath: string): { readonly version: string; readonly apiVersion: number };
  registerProviderLibrary(name: string, libraryPath: string): void;
  /** Copies each [src, dst] pair (equal sizes); every pair of one call goes between the same two devices. */
  copy(pairs: readonly (readonly [NativeValue, NativeValue])[]): void;
  /**
   * out[r, j] = x[r, j] + dt[r] * v[r, j] over float32 host views ([rows, len]; dt [rows]; out may be x), in double
   * rounded once, as applyStep (src/sampling/schedule.ts) computes in JavaScript. Host memory only.
   */
  axpyRows(x: NativeValue, v: NativeValue, dt: NativeValue, out: NativeValue): void;
  /** A session over a model file, or over the bytes of a model. */
  Session: new (model: string | Uint8Array, options: SessionOptions) => NativeSession;
  Buffer: new (session: NativeSession, bytes: number) => NativeBuffer;
  Value: new (memory: NativeBuffer | ArrayBufferView, byteOffset: number, dtype: DType, shape: readonly number[]) => NativeValue;
}

/** An error the addon threw: ONNX Runtime's code (ORT_FAIL, ORT_INVALID_ARGUMENT, ...) and message. */
export interface OrtError extends Error {
  readonly name: 'OrtError';
  readonly code: string;
  readonly ortCode: number;
}

export const isOrtError = (err: unknown): err is OrtError => (err as Error)?.name === 'OrtError';

export const ADDON_FILE = path.join('native', 'build', 'Release', 'dust_ort.node');

/** The package root: the first folder above this module that holds package.json (from src/ and from dist/src/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('no package.json above the native executor module');
    dir = up;
  }
  return dir;
}

/** Where the addon is: the build's output in the package (a binary carried to another host goes there too). */
export function addonPath(): string {
  return path.join(packageRoot(), ADDON_FILE);
}

/** onnxruntime-node's native library, the one ONNX Runtime of the process (importing device-probe.ts loaded it). */
export function onnxRuntimeLibrary(): string {
  return path.join(onnxRuntimeBinDir(), 'libonnxruntime.so.1');
}

export type NativeLoad =
  | { readonly ok: true; readonly ort: NativeOrt; readonly version: string; readonly path: string }
  | { readonly ok: false; readonly missing: string; readonly fix: string };

let loaded: NativeLoad | undefined;

/** Whether the addon loads here (executor-selection.ts). */
export function nativeStatus(): NativeStatus {
  const load = loadNativeOrt();
  return load.ok ? { ok: true, version: load.version } : load;
}

/** Loads and initialises the addon once per thread; says what is missing when it cannot. */
export function loadNativeOrt(): NativeLoad {
  if (loaded) return loaded;
  const file = addonPath();
  if (!existsSync(file)) {
    loaded = { ok: false, missing: `the native executor's addon (${file} was not built)`, fix: BUILD_NATIVE_FIX };
    return loaded;
  }
  let ort: NativeOrt;
  try {
    ort = createRequire(import.meta.url)(file) as NativeOrt;
  } catch (err) {
    loaded = {
      ok: false,
      missing: `a loadable native addon (${file}: ${String((err as Error).message).split('\n')[0]})`,
      fix: `${BUILD_NATIVE_FIX}; add --force to rebuild`,
    };
    return loaded;
  }
  try {
    const { version } = ort.init(onnxRuntimeLibrary());
    loaded = { ok: true, ort, version, path: file };
  } catch (err) {
    loaded = {
      ok: false,
      missing: `ONNX Runtime for the native addon (${(err as Error).message})`,
      fix: 'reinstall onnxruntime-node with `ONNXRUNTIME_NODE_INSTALL=skip npm ci` (package.json pins the release the addon is built for)',
    };
  }
  return loaded;
}
