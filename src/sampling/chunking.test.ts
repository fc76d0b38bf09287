import { describe, expect, it } from 'vitest';
import { applyStep, blendPrefix, ensembleWeights, estimateDelay, inpaintStep, inpaintWeights, stepPlan, type PrefixGuide } from './index.js';

describe('real-time chunking masks (docs/sampling.md, "Real-time chunking")', () => {
  it("is RTC's soft mask: hard before d, exponentially decaying over the overlap, 0 beyond it", () => {
    const w = inpaintWeights(8, 2, 6);
    expect(Array.from(w.subarray(0, 2))).toEqual([1, 1]);
    // c_i = (L - i) / (L - d + 1) for d <= i < L, weight c (e^c - 1) / (e - 1)
    for (let i = 2; i < 6; i++) {
      const c = (6 - i) / 5;
      expect(w[i]).toBeCloseTo((c * (Math.exp(c) - 1)) / (Math.E - 1), 6);
      expect(w[i]).toBeLessThan(w[i - 1]);
      expect(w[i]).toBeGreaterThan(0);
    }
    expect(Array.from(w.subarray(6))).toEqual([0, 0]);
  });

  it('handles d = 0, d = L and an overlap beyond the horizon', () => {
    expect(inpaintWeights(4, 0, 4)[0]).toBeLessThan(1);
    expect(Array.from(inpaintWeights(4, 3, 3))).toEqual([1, 1, 1, 0]);
    expect(Array.from(inpaintWeights(3, 1, 10)).every((x) => x > 0)).toBe(true);
    expect(Array.from(ensembleWeights(5, 1, 3))).toEqual([1, 0.5, 0.5, 0, 0]);
  });

  it('estimates d from the latency and the control period, capped at the overlap, the whole overlap without a measure', () => {
    expect(estimateDelay(45, 20, 10)).toBe(3);
    expect(estimateDelay(40, 20, 10)).toBe(2);
    expect(estimateDelay(0, 20, 10)).toBe(0);
    expect(estimateDelay(1000, 20, 10)).toBe(10);
    expect(estimateDelay(undefined, 20, 7)).toBe(7);
  });
});

describe('guidance-free inpainting through the Euler updates', () => {
  const horizon = 6;
  const dim = 2;
  const guideFor = (delay: number, overlap: number): PrefixGuide => {
    const target = new Float32Array(horizon * dim);
    for (let j = 0; j < overlap * dim; j++) target[j] = 0.1 * (j + 1) - 0.5;
    const noise = Float32Array.from({ length: horizon * dim }, (_, j) => Math.sin(j + 1));
    return { target, noise, weights: inpaintWeights(horizon, delay, overlap), actionDim: dim };
  };

  /** The executors' order: the Euler update, then (on action steps) the guide at the new flow time. */
  const sample = (guide: PrefixGuide | undefined, velocity: number, counts = { actionSteps: 4, visionSteps: 8 }) => {
    const actions = Float32Array.from(guide?.noise ?? new Float32Array(horizon * dim));
    const future = new Float32Array(1);
    for (let i = 0; i < counts.visionSteps; i++) {
      const p = stepPlan(i, counts);
      applyStep(p, actions, future, new Float32Array(horizon * dim).fill(velocity), new Float32Array(1));
      if (guide && p.dtA > 0) inpaintStep(guide, (Math.floor(i / (counts.visionSteps / counts.actionSteps)) + 1) / counts.actionSteps, actions);
    }
    return actions;
  };

  it('ends with the hard-masked positions equal to the committed actions, whatever the denoiser says', () => {
    const guide = guideFor(2, 4);
    for (const v of [-3, 0, 0.7]) {
      const a = sample(guide, v);
      for (let j = 0; j < 2 * dim; j++) expect(a[j]).toBe(guide.target[j]);
    }
  });

  it('pulls the soft positions part of the way and leaves the positions beyond the overlap to the denoiser', () => {
    const guide = guideFor(1, 4);
    const free = sample({ ...guide, weights: new Float32Array(horizon) }, 0.7);
    const a = sample(guide, 0.7);
    for (let i = 1; i < 4; i++) {
      for (let j = i * dim; j < (i + 1) * dim; j++) {
        const between = (a[j] - free[j]) * (guide.target[j] - free[j]);
        expect(between).toBeGreaterThan(0);
        expect(Math.abs(a[j] - guide.target[j])).toBeLessThan(Math.abs(free[j] - guide.target[j]));
      }
    }
    for (let j = 4 * dim; j < horizon * dim; j++) expect(a[j]).toBe(free[j]);
  });

  it('blends the final chunk for temporal ensembling', () => {
    const target = Float32Array.from([1, 1, 1, 1, 0, 0]);
    const a = Float32Array.from([0, 0, 0, 3, 3, 3]);
    blendPrefix({ target, weights: ensembleWeights(3, 1, 2), actionDim: 2 }, a);
    // The overlap averages the chunk as it would be executed (clipped to [-1, 1]); beyond it, the chunk is kept.
    expect(Array.from(a)).toEqual([1, 1, 0.5, 1, 3, 3]);
  });
});
