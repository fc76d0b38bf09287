/**
 * Which executor runs a server's models, decided once at start-up beside the device (`--executor
 * auto|native|onnxruntime-node`, docs/operations.md "Configuration"):
 *
 * - `native` (native-executor.ts, the addon `npm run build:native` builds) keeps the arena on the device and
 *   captures CUDA graphs; it runs on cpu and cuda.
 * - `onnxruntime-node` (onnx-executor.ts) runs on cpu and webgpu. On cuda it would send every step's conditioning
 *   to the GPU (BENCHMARKS.md, "CUDA on one H200"), so cuda needs the native executor: the device probe reports a
 *   missing addon as something cuda is missing, which `--device auto` then skips and `--device cuda` refuses.
 * - `auto`: native where the addon loads, else onnxruntime-node; the reason says which and why.
 *
 * Pure: the addon's availability is passed in (native-ort.ts loadNativeOrt in the server, fakes in tests).
 */
import { ExecutorUnavailableError } from '../errors/index.js';
import type { Device } from './device.js';
import type { DeviceProbe } from './device-selection.js';

/** What builds the native executor's addon; it prints what is missing where it cannot. */
export const BUILD_NATIVE_FIX = 'run `npm run build:native` in the dust-serve directory (it needs g++, make and python3; it prints what is missing)';

export type ExecutorKind = 'native' | 'onnxruntime-node';
export type ExecutorRequest = ExecutorKind | 'auto';

/** Whether the native addon loads here, and if not what is missing and how to fix it. */
export type NativeStatus = { readonly ok: true; readonly version: string } | { readonly ok: false; readonly missing: string; readonly fix: string };

export interface ExecutorChoice {
  readonly executor: ExecutorKind;
  /** One line for the start-up log. */
  readonly reason: string;
}

/** The devices each executor runs on. */
export const EXECUTOR_DEVICES: Readonly<Record<ExecutorKind, readonly Device[]>> = {
  native: ['cpu', 'cuda'],
  'onnxruntime-node': ['cpu', 'webgpu'],
};

/** The device probe, with cuda also needing the native executor (so that `auto` skips cuda without it). */
export function withExecutorRequirement(probe: DeviceProbe, requested: ExecutorRequest, native: () => NativeStatus): DeviceProbe {
  return async (device) => {
    if (device === 'cuda') {
      if (requested === 'onnxruntime-node')
        return {
          ok: false,
          missing: 'an executor that keeps tensors on CUDA (--executor onnxruntime-node cannot)',
          fix: 'use --executor native or auto',
        };
      const status = native();
      if (!status.ok) return { ok: false, missing: `the native executor, which cuda runs on: ${status.missing}`, fix: status.fix };
    }
    return probe(device);
  };
}

/** @throws ExecutorUnavailableError when an explicitly requested executor cannot run the device here. */
export function selectExecutor(requested: ExecutorRequest, device: Device, native: () => NativeStatus): ExecutorChoice {
  if (requested !== 'auto') {
    if (!EXECUTOR_DEVICES[requested].includes(device))
      throw new ExecutorUnavailableError(
        requested,
        `support for --device ${device} (it runs ${EXECUTOR_DEVICES[requested].join(' and ')})`,
        executorFor(device),
      );
    if (requested === 'native') {
      const status = native();
      if (!status.ok) throw new ExecutorUnavailableError(requested, status.missing, status.fix);
      return { executor: 'native', reason: `--executor native (ONNX Runtime ${status.version})` };
    }
    return { executor: requested, reason: '--executor onnxruntime-node' };
  }
  if (device === 'webgpu') return { executor: 'onnxruntime-node', reason: '--executor auto chose onnxruntime-node: webgpu runs on it' };
  const status = native();
  if (status.ok) return { executor: 'native', reason: `--executor auto chose native (ONNX Runtime ${status.version})` };
  // cuda never gets here without the addon: the device probe refused it.
  return { executor: 'onnxruntime-node', reason: `--executor auto chose onnxruntime-node: missing ${status.missing} (${status.fix})` };
}

function executorFor(device: Device): string {
  if (device === 'webgpu') return 'use --executor onnxruntime-node or auto for --device webgpu';
  if (device === 'cuda') return `use --executor native or auto for --device cuda (${BUILD_NATIVE_FIX})`;
  return 'use --executor auto';
}
