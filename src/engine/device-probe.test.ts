import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CUDA_LIBRARY_FIX,
  CUDA_PROVIDER_FILES,
  CUDA_PROVIDER_FIX,
  DRIVER_FIX,
  diagnoseCudaError,
  onnxRuntimeBinDir,
  onnxRuntimeProbe,
  probeCuda,
  type CudaProbeEnv,
} from './device-probe.js';

const BIN = '/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64';

function env(over: Partial<CudaProbeEnv> = {}): CudaProbeEnv {
  return {
    platform: 'linux/x64',
    binDir: BIN,
    exists: () => true,
    tryRun: async () => {},
    unresolvedLibraries: async () => [],
    ortVersion: '1.29.0',
    ...over,
  };
}
const failing = (message: string) => async () => {
  throw new Error(message);
};

describe('the CUDA probe', () => {
  it('names the provider files that are missing and the command that installs them', async () => {
    const r = await probeCuda(env({ exists: (f) => !f.endsWith('libonnxruntime_providers_cuda.so') }));
    expect(r).toEqual({
      ok: false,
      missing: `ONNX Runtime's CUDA execution provider (libonnxruntime_providers_cuda.so not in ${BIN})`,
      fix: CUDA_PROVIDER_FIX,
    });
    expect(CUDA_PROVIDER_FIX).toContain('npm run setup:cuda');
    expect(CUDA_PROVIDER_FIX).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
  });

  it('names the CUDA libraries the loader cannot find when the provider fails to load', async () => {
    const r = await probeCuda(
      env({
        tryRun: failing('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'),
        unresolvedLibraries: async (f) => (f.endsWith('cuda.so') ? ['libcublasLt.so.13', 'libcublas.so.13'] : []),
      }),
    );
    expect(r).toEqual({ ok: false, missing: 'the CUDA libraries libcublasLt.so.13, libcublas.so.13', fix: CUDA_LIBRARY_FIX });
  });

  it('points at the driver when only libcuda.so.1 is missing', async () => {
    const r = await probeCuda(env({ tryRun: failing('Failed to load shared library'), unresolvedLibraries: async () => ['libcuda.so.1'] }));
    expect(r).toEqual({ ok: false, missing: 'the NVIDIA driver library libcuda.so.1', fix: DRIVER_FIX });
  });

  it("reads what is missing from ONNX Runtime's message when the loader found everything", async () => {
    const r = await probeCuda(env({ tryRun: failing('CUDNN failure: libcudnn.so.9: cannot open shared object file: No such file or directory') }));
    expect(r).toEqual({ ok: false, missing: 'the CUDA library libcudnn.so.9', fix: CUDA_LIBRARY_FIX });
    expect(diagnoseCudaError('CUDA failure 100: no CUDA-capable device is detected ; GPU=0', '1.29.0')).toMatchObject({ ok: false, fix: DRIVER_FIX });
    expect(diagnoseCudaError('onnxruntime version mismatch', '1.30.0')).toMatchObject({
      missing: expect.stringContaining('onnxruntime-node 1.30.0'),
      fix: CUDA_PROVIDER_FIX,
    });
  });

  it("passes on ONNX Runtime's first line when nothing else explains the failure", async () => {
    const r = await probeCuda(env({ tryRun: failing('something odd\nstack') }));
    expect(r).toMatchObject({ ok: false, missing: 'a working CUDA execution provider (ONNX Runtime: something odd)' });
  });

  it('accepts a provider that ran the probe model', async () => {
    await expect(probeCuda(env())).resolves.toEqual({
      ok: true,
      detail: `CUDA execution provider ran a probe model (onnxruntime-node 1.29.0, provider in ${BIN})`,
    });
  });

  it('refuses other platforms without loading anything', async () => {
    let ran = false;
    const r = await probeCuda(env({ platform: 'darwin/arm64', tryRun: async () => void (ran = true) }));
    expect(r.ok).toBe(false);
    expect(ran).toBe(false);
  });

  const installed = CUDA_PROVIDER_FILES.every((f) => existsSync(path.join(onnxRuntimeBinDir(), f)));
  it.skipIf(installed)('on a machine without the provider, the real probe says which files are missing', async () => {
    const r = await onnxRuntimeProbe('cuda');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.missing).toContain('libonnxruntime_providers_shared.so');
  });
});
