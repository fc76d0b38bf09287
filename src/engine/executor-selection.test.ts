import { describe, expect, it } from 'vitest';
import { ExecutorUnavailableError } from '../errors/index.js';
import type { DeviceProbe } from './device-selection.js';
import { selectDevice } from './device-selection.js';
import { selectExecutor, withExecutorRequirement, type NativeStatus } from './executor-selection.js';

const built: () => NativeStatus = () => ({ ok: true, version: '1.29.0' });
const unbuilt: () => NativeStatus = () => ({ ok: false, missing: "the native executor's addon (not built)", fix: 'run `npm run build:native`' });
const gpusWork: DeviceProbe = () => Promise.resolve({ ok: true, detail: 'works' });

describe('executor selection', () => {
  it('auto takes the native executor where the addon loads, onnxruntime-node otherwise and for webgpu', () => {
    expect(selectExecutor('auto', 'cpu', built)).toMatchObject({ executor: 'native' });
    expect(selectExecutor('auto', 'cuda', built)).toMatchObject({ executor: 'native' });
    const fallback = selectExecutor('auto', 'cpu', unbuilt);
    expect(fallback.executor).toBe('onnxruntime-node');
    expect(fallback.reason).toMatch(/not built.*npm run build:native/);
    expect(selectExecutor('auto', 'webgpu', built)).toMatchObject({ executor: 'onnxruntime-node' });
  });

  it('refuses an explicit executor that cannot run, naming what is missing and the fix', () => {
    expect(() => selectExecutor('native', 'cpu', unbuilt)).toThrow(ExecutorUnavailableError);
    expect(() => selectExecutor('native', 'cpu', unbuilt)).toThrow(
      /--executor native cannot run here: missing the native executor's addon.*npm run build:native/,
    );
    expect(() => selectExecutor('native', 'webgpu', built)).toThrow(/webgpu.*--executor onnxruntime-node or auto/);
    expect(() => selectExecutor('onnxruntime-node', 'cuda', built)).toThrow(/--executor native or auto/);
    expect(selectExecutor('onnxruntime-node', 'cpu', built)).toMatchObject({ executor: 'onnxruntime-node' });
  });

  it('--device cuda needs the native executor: refused without the addon, skipped by --device auto', async () => {
    await expect(selectDevice('cuda', withExecutorRequirement(gpusWork, 'auto', unbuilt))).rejects.toThrow(
      /--device cuda cannot run here: missing the native executor, which cuda runs on: .*not built.*npm run build:native/,
    );
    await expect(selectDevice('cuda', withExecutorRequirement(gpusWork, 'onnxruntime-node', built))).rejects.toThrow(/--executor native or auto/);
    const auto = await selectDevice('auto', withExecutorRequirement(gpusWork, 'auto', unbuilt));
    expect(auto.device).toBe('webgpu');
    expect(auto.reason).toMatch(/skipped cuda \(missing the native executor/);
    expect((await selectDevice('cuda', withExecutorRequirement(gpusWork, 'auto', built))).device).toBe('cuda');
  });
});
