import { describe, expect, it } from 'vitest';
import type { PredictResult } from '@dust-serve/client';
import { actionTable, formatPredict, predictHeader, predictJson } from './predict-output.js';

const result: PredictResult = {
  requestId: 'req-1',
  modelName: 'dust-tiny',
  modelVersion: 1,
  variant: '',
  actions: { shape: [2, 3], data: Float32Array.from([0.1, -0.25, 1, 2, 3, -4.5]) },
  sampling: { actionSteps: 4, visionSteps: 8, seed: 18446744073709551615n, budgetMs: 0, budgetMet: true, budgetFeasible: true, plannedTotalMs: 0 },
  timing: { queueMs: 0.2, vlmMs: 12.34, denoiseMs: 5, totalMs: 17.6, vlmBatchSize: 1, meanDenoiseBatch: 1, preprocessMs: 0.1 },
};

describe('predict output', () => {
  it('heads the table with model@version, steps used, seed and timing', () => {
    const line = predictHeader(result);
    expect(line).toContain('dust-tiny@1');
    expect(line).toContain('steps: action 4, vision 8');
    expect(line).toContain('seed 18446744073709551615');
    expect(line).toContain('vlm 12.3 ms');
    expect(line).toContain('total 17.6 ms');
    expect(line).not.toContain('budget');
    expect(predictHeader({ ...result, sampling: { ...result.sampling, budgetMs: 20, budgetMet: false }, worldModelSurprise: 0.5 })).toMatch(
      /budget 20 ms missed .*surprise 0\.5000/,
    );
  });

  it('prints one row per action step with columns a0..aN', () => {
    const lines = actionTable(result).split('\n');
    const header = lines.find((l) => l.includes('a0'))!;
    expect(header).toMatch(/step.*a0.*a1.*a2/);
    expect(header).not.toContain('a3');
    expect(lines.some((l) => /\b0\b.*0\.1000.*-0\.2500.*1\.0000/.test(l))).toBe(true);
    expect(lines.some((l) => /\b1\b.*2\.0000.*3\.0000.*-4\.5000/.test(l))).toBe(true);
    // No ANSI colours when piped.
    expect(actionTable(result)).not.toContain('\u001b[');
  });

  it('mentions a future embedding the table does not show', () => {
    expect(formatPredict(result)).not.toContain('future');
    expect(formatPredict({ ...result, futureEmbedding: { shape: [4, 16], data: new Float32Array(64) } })).toContain('future embedding: shape [4, 16]');
  });

  it('prints the full response as JSON with nested arrays and the seed as a string', () => {
    const json = JSON.parse(JSON.stringify(predictJson(result)));
    expect(json.actions).toEqual([
      [0.1, -0.25, 1],
      [2, 3, -4.5],
    ]);
    expect(json.sampling.seed).toBe('18446744073709551615');
    expect(json).toMatchObject({ requestId: 'req-1', modelName: 'dust-tiny', modelVersion: 1, futureEmbedding: null, worldModelSurprise: null });
    expect(json.timing.vlmMs).toBe(12.34);
  });
});
