import { describe, expect, it } from 'vitest';
import {
  applyStep,
  blendPrefix,
  broadcastTimes,
  conditionWeights,
  ensembleWeights,
  estimateDelay,
  inpaintStep,
  inpaintWeights,
  pinCommitted,
  positionTimes,
  stepPlan,
  type PrefixGuide,
} from './index.js';

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

describe('the condition method (a model trained with prefix conditioning)', () => {
  const horizon = 5;
  const dim = 2;
  const target = Float32Array.from({ length: horizon * dim }, (_, j) => 0.1 * j - 0.3);
  const noise = Float32Array.from({ length: horizon * dim }, (_, j) => Math.cos(j));
  const guide: PrefixGuide = { target, noise, weights: conditionWeights(horizon, 2), actionDim: dim, clean: true };

  it('commits exactly the first d positions, none for d = 0, all for d = horizon', () => {
    expect(Array.from(conditionWeights(horizon, 2))).toEqual([1, 1, 0, 0, 0]);
    expect(Array.from(conditionWeights(horizon, 0))).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(conditionWeights(horizon, 9))).toEqual([1, 1, 1, 1, 1]);
  });

  it('starts the committed positions at the clean prefix and keeps them there through every update', () => {
    const actions = Float32Array.from(noise);
    pinCommitted(guide, actions);
    expect(Array.from(actions.subarray(0, 2 * dim))).toEqual(Array.from(target.subarray(0, 2 * dim)));
    expect(Array.from(actions.subarray(2 * dim))).toEqual(Array.from(noise.subarray(2 * dim)));
    // Inpainting would put them at tau Y + (1 - tau) eps; a clean guide resets them to Y at every flow time.
    applyStep({ dtA: 0.25, dtO: 0 }, actions, new Float32Array(1), new Float32Array(horizon * dim).fill(2), new Float32Array(1));
    inpaintStep(guide, 0.25, actions);
    for (let j = 0; j < 2 * dim; j++) expect(actions[j]).toBe(target[j]);
    for (let j = 2 * dim; j < horizon * dim; j++) expect(actions[j]).toBeCloseTo(noise[j] + 0.5, 6);
  });

  it("gives the committed positions flow time 1 and every other position the row's tau_A", () => {
    const out = new Float32Array(horizon);
    positionTimes(0.25, guide, out);
    expect(Array.from(out)).toEqual([1, 1, 0.25, 0.25, 0.25]);
    positionTimes(0.5, { ...guide, clean: false }, out);
    expect(Array.from(out)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5]);
    positionTimes(0.75, undefined, out);
    expect(Array.from(out)).toEqual([0.75, 0.75, 0.75, 0.75, 0.75]);
    expect(Array.from(broadcastTimes(Float32Array.from([0, 0.5]), 2))).toEqual([0, 0, 0.5, 0.5]);
  });
});
