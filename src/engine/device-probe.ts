/**
 * The real DeviceProbe: can ONNX Runtime run a model on CUDA or WebGPU in this process? It loads the provider
 * and runs a one-Conv model (probe-model.ts) on it; when that fails it finds out what is missing, in this
 * order: the provider's files next to onnxruntime-node's native library, the shared libraries they need (`ldd`),
 * then ONNX Runtime's own message. Each answer carries the command that fixes it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { DeviceProbe, GpuDevice, ProbeResult } from './device-selection.js';
import { PROBE_INPUT_SHAPE, probeModel } from './probe-model.js';

/** The onnxruntime-node release the CUDA 13 provider of `npm run setup:cuda` is built for (package.json pins it). */
export const CUDA_PROVIDER_ORT_VERSION = '1.29.0';
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

export const CUDA_PROVIDER_FIX =
  'on a CUDA 13 host run `npm run setup:cuda` in the dust-serve directory; on a CUDA 12 host run ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` (docs/gpu.md)';
export const CUDA_LIBRARY_FIX =
  "install the CUDA 13 runtime libraries the provider links (cuBLAS, cuRAND, cudart; cuDNN 9 for the VLM's " +
  'convolutions), e.g. `pip install nvidia-cublas nvidia-curand nvidia-cuda-runtime nvidia-cudnn-cu13`, and put ' +
  'their lib folders on LD_LIBRARY_PATH; or build the GPU image (`docker build --build-arg DEVICE=cuda ...`)';
export const DRIVER_FIX =
  'install the NVIDIA driver on the host; in a container, run it with the NVIDIA container toolkit ' +
  '(`docker run --gpus all`, or a Kubernetes pod that requests nvidia.com/gpu)';
export const WEBGPU_FIX =
  "install the Vulkan loader and the GPU's Vulkan driver (Debian: `apt-get install libvulkan1`; NVIDIA: set " +
  "VK_DRIVER_FILES to the driver's nvidia_icd.json), or choose --device cuda or cpu";

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** Folder of onnxruntime-node's native library for this platform, where ONNX Runtime looks for providers. */
export function onnxRuntimeBinDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

export function onnxRuntimeVersion(): string {
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

/** Libraries `ldd` reports as "not found" for a shared object; [] when ldd is missing or found them all. */
export async function unresolvedLibraries(file: string): Promise<string[]> {
  try {
    const { stdout } = await run('ldd', [file], { timeout: 10_000 });
    return [...stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
  } catch {
    return [];
  }
}

/** Loads the provider and runs the probe model on it; rejects with ONNX Runtime's error. */
async function runOn(device: GpuDevice): Promise<void> {
  const session = await ort.InferenceSession.create(probeModel(), { executionProviders: [device], logSeverityLevel: 3 });
  try {
    const n = PROBE_INPUT_SHAPE.reduce((a, b) => a * b, 1);
    await session.run({ x: new ort.Tensor('float32', new Float32Array(n).fill(1), [...PROBE_INPUT_SHAPE]) });
  } finally {
    await session.release();
  }
}

/** ONNX Runtime's message without its source location and failed-check prefix. */
const firstLine = (err: unknown) =>
  String((err as Error)?.message ?? err)
    .split('\n')[0]
    .replace(/^\S*onnxruntime_src\S* .*? was false\. /, '')
    .trim();

/** What an ONNX Runtime error says is missing, when it says so plainly. */
export function diagnoseCudaError(message: string, ortVersion: string): ProbeResult | undefined {
  const lib = /(lib[\w+.-]+\.so(?:\.\d+)*): cannot open shared object file/.exec(message)?.[1];
  if (lib === 'libcuda.so.1') return { ok: false, missing: 'the NVIDIA driver library libcuda.so.1', fix: DRIVER_FIX };
  if (lib) return { ok: false, missing: `the CUDA library ${lib}`, fix: CUDA_LIBRARY_FIX };
  if (/version mismatch/i.test(message)) {
    return { ok: false, missing: `a CUDA provider built for onnxruntime-node ${ortVersion} (${firstLine(message)})`, fix: CUDA_PROVIDER_FIX };
  }
  if (/no CUDA-capable device|cudaErrorNoDevice|CUDA driver version is insufficient|cudaErrorInsufficientDriver/i.test(message)) {
    return { ok: false, missing: `a usable NVIDIA GPU (${firstLine(message)})`, fix: DRIVER_FIX };
  }
  return undefined;
}

/** What the CUDA probe touches, injectable so that its diagnosis can be tested without a GPU. */
export interface CudaProbeEnv {
  readonly platform: string;
  readonly binDir: string;
  readonly exists: (file: string) => boolean;
  /** Loads the provider and runs the probe model; rejects with ONNX Runtime's error. */
  readonly tryRun: () => Promise<void>;
  readonly unresolvedLibraries: (file: string) => Promise<string[]>;
  readonly ortVersion: string;
}

export function realCudaProbeEnv(): CudaProbeEnv {
  return {
    platform: `${process.platform}/${process.arch}`,
    binDir: onnxRuntimeBinDir(),
    exists: existsSync,
    tryRun: () => runOn('cuda'),
    unresolvedLibraries,
    ortVersion: onnxRuntimeVersion(),
  };
}

export async function probeCuda(env: CudaProbeEnv): Promise<ProbeResult> {
  if (env.platform !== 'linux/x64') {
    return { ok: false, missing: `a CUDA provider for ${env.platform} (dust-serve sets it up on linux/x64)`, fix: 'use --device cpu or webgpu' };
  }
  const absent = CUDA_PROVIDER_FILES.filter((f) => !env.exists(path.join(env.binDir, f)));
  if (absent.length > 0) {
    return { ok: false, missing: `ONNX Runtime's CUDA execution provider (${absent.join(', ')} not in ${env.binDir})`, fix: CUDA_PROVIDER_FIX };
  }
  try {
    await env.tryRun();
  } catch (err) {
    // ONNX Runtime logs the loader's error and throws a generic one ("Failed to load shared library"), so ask
    // the loader which library it could not find.
    for (const file of CUDA_PROVIDER_FILES) {
      const unresolved = await env.unresolvedLibraries(path.join(env.binDir, file));
      if (unresolved.length > 0) {
        const driverOnly = unresolved.every((l) => l.startsWith('libcuda.so'));
        return driverOnly
          ? { ok: false, missing: `the NVIDIA driver library ${unresolved.join(', ')}`, fix: DRIVER_FIX }
          : { ok: false, missing: `the CUDA libraries ${unresolved.join(', ')}`, fix: CUDA_LIBRARY_FIX };
      }
    }
    const message = String((err as Error)?.message ?? err);
    return (
      diagnoseCudaError(message, env.ortVersion) ?? {
        ok: false,
        missing: `a working CUDA execution provider (ONNX Runtime: ${firstLine(message)})`,
        fix: `${CUDA_PROVIDER_FIX}; check that \`nvidia-smi\` sees the GPU`,
      }
    );
  }
  return { ok: true, detail: `CUDA execution provider ran a probe model (onnxruntime-node ${env.ortVersion}, provider in ${env.binDir})` };
}

async function probeWebGpu(): Promise<ProbeResult> {
  try {
    await runOn('webgpu');
  } catch (err) {
    return { ok: false, missing: `a WebGPU adapter (ONNX Runtime: ${firstLine(err)})`, fix: WEBGPU_FIX };
  }
  return { ok: true, detail: `WebGPU execution provider ran a probe model (onnxruntime-node ${onnxRuntimeVersion()})` };
}

export const onnxRuntimeProbe: DeviceProbe = (device) => (device === 'cuda' ? probeCuda(realCudaProbeEnv()) : probeWebGpu());
