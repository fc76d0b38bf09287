import { describe, expect, it } from 'vitest';
import type { ModelVersionInfo } from '@dust-serve/client';
import { formatModels, modelRow, MODEL_COLUMNS, wrap } from './models-output.js';

const ready: ModelVersionInfo = {
  name: 'dust-tiny',
  version: 1,
  state: 'READY',
  reason: '',
  lastLoadError: '',
  embodiments: [
    { name: 'franka', id: 0, stateDim: 8, actionDim: 7 },
    { name: 'aloha', id: 1, stateDim: 14, actionDim: 14 },
  ],
  cameras: ['wrist', 'top'],
  imageHeight: 224,
  imageWidth: 160,
  actionHorizon: 16,
  futureTokens: 4,
  futureDim: 64,
  defaultActionSteps: 4,
  defaultVisionSteps: 8,
  maxVisionSteps: 32,
  trafficWeight: 0.6666666,
  device: 'cpu',
};

describe('models output', () => {
  it('fills every column of a version', () => {
    const row = modelRow(ready);
    expect(row).toHaveLength(MODEL_COLUMNS.length);
    expect(Object.fromEntries(MODEL_COLUMNS.map((c, i) => [c, row[i]]))).toEqual({
      name: 'dust-tiny',
      version: '1',
      state: 'READY',
      device: 'cpu',
      embodiments: 'franka:8/7\naloha:14/14',
      cameras: 'wrist\ntop',
      'image HxW': '224x160',
      horizon: '16',
      'default steps A/o': '4/8',
      'max vision steps': '32',
      'traffic weight': '0.667',
    });
  });

  it('shows why a version FAILED', () => {
    const failed = { ...ready, version: 2, state: 'FAILED' as const, reason: 'vlm.onnx: input "pixel_values" has shape [1,3,256,256], manifest says 224x160' };
    const text = formatModels({ defaultModel: 'dust-tiny', models: [ready, failed] });
    expect(text).toMatch(/^default model: dust-tiny\n/);
    expect(text).toContain('FAILED:');
    expect(text).toContain('pixel_values');
    expect(text).not.toContain('\u001b[');
  });

  it('shows why the last reload was refused while the version keeps serving', () => {
    const row = modelRow({ ...ready, lastLoadError: 'denoiser.onnx has sha256 abc, the manifest expects def' });
    expect(row[2]).toMatch(/^READY\nlast reload refused:\ndenoiser\.onnx has sha256/);
  });

  it('says so when nothing is loaded', () => {
    expect(formatModels({ defaultModel: '', models: [] })).toBe('no models loaded\n');
  });

  it('wraps long reasons at word boundaries', () => {
    expect(wrap('aaa bbb ccc', 7)).toBe('aaa bbb\nccc');
    expect(wrap('averyveryverylongword x', 5)).toBe('averyveryverylongword\nx');
  });
});
