import { describe, expect, it } from 'vitest';
import { stepPlan } from '../sampling/index.js';
import { isLastStep, packStepBatch, packVlmBatch } from './batch-packer.js';
import { TEST_SHAPES } from './testing/fakes.js';

describe('packVlmBatch', () => {
  it("lays each request's tensors out row after row", () => {
    const s = TEST_SHAPES;
    const input = (v: number, emb: number) => ({
      pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth).fill(v),
      inputIds: new BigInt64Array(s.textTokens).fill(BigInt(v)),
      attentionMask: new BigInt64Array(s.textTokens).fill(1n),
      state: new Float32Array(s.stateDim).fill(v),
      embodimentId: emb,
      noise: { actions: new Float32Array(s.horizon * s.actionDim).fill(-v), future: new Float32Array(s.futureTokens * s.futureDim).fill(v / 10) },
    });
    const moves = [{ from: 3, to: 1 }];
    const b = packVlmBatch([input(1, 0), input(2, 1)], Int32Array.from([4, 5]), moves, s);
    expect(b.moves).toBe(moves);
    expect(Array.from(b.slots)).toEqual([4, 5]);
    expect(Array.from(b.state)).toEqual([1, 1, 2, 2]);
    expect(Array.from(b.inputIds)).toEqual([1n, 1n, 2n, 2n]);
    expect(Array.from(b.embodimentIds)).toEqual([0n, 1n]);
    // Pixel rows are handed on as the decode pool made them, never packed on the host.
    const rows = [input(1, 0), input(2, 1)];
    const again = packVlmBatch(rows, Int32Array.from([4, 5]), [], s);
    expect(again.pixelRows).toHaveLength(2);
    expect(again.pixelRows[0]).toBe(rows[0].pixelValues);
    expect(again.pixelRows[1]).toBe(rows[1].pixelValues);
    expect(b.pixelRows.map((r) => r[0])).toEqual([1, 2]);
    expect(Array.from(b.actions0.subarray(4))).toEqual([-2, -2, -2, -2]);
    // So is each row's future noise.
    expect(b.futureRows).toHaveLength(2);
    expect(again.futureRows[1]).toBe(rows[1].noise.future);
    expect(b.futureRows.flatMap((r) => Array.from(r))).toEqual([0.1, 0.1, 0.2, 0.2].map(Math.fround));
  });

  it('hands on uint8 rows for a model that takes them, and refuses rows of the other type', () => {
    const len = TEST_SHAPES.views * 3 * TEST_SHAPES.imageHeight * TEST_SHAPES.imageWidth;
    const row = (pixelValues: Float32Array | Uint8Array) => ({
      pixelValues,
      inputIds: new BigInt64Array(TEST_SHAPES.textTokens),
      attentionMask: new BigInt64Array(TEST_SHAPES.textTokens),
      state: new Float32Array(TEST_SHAPES.stateDim),
      embodimentId: 0,
      noise: {
        actions: new Float32Array(TEST_SHAPES.horizon * TEST_SHAPES.actionDim),
        future: new Float32Array(TEST_SHAPES.futureTokens * TEST_SHAPES.futureDim),
      },
    });
    const uint8 = { ...TEST_SHAPES, pixelDtype: 'uint8' as const };
    const bytes = row(new Uint8Array(len).fill(200));
    expect(packVlmBatch([bytes], Int32Array.from([0]), [], uint8).pixelRows[0]).toBe(bytes.pixelValues);
    expect(() => packVlmBatch([row(new Float32Array(len))], Int32Array.from([0]), [], uint8)).toThrow(/row 0: float32 pixel values, the model takes uint8/);
    expect(() => packVlmBatch([bytes], Int32Array.from([0]), [], TEST_SHAPES)).toThrow(/row 0: uint8 pixel values, the model takes float32/);
  });

  it('refuses a pixel row of the wrong length', () => {
    const s = TEST_SHAPES;
    const bad = {
      pixelValues: new Float32Array(5),
      inputIds: new BigInt64Array(s.textTokens),
      attentionMask: new BigInt64Array(s.textTokens),
      state: new Float32Array(s.stateDim),
      embodimentId: 0,
      noise: { actions: new Float32Array(s.horizon * s.actionDim), future: new Float32Array(s.futureTokens * s.futureDim) },
    };
    expect(() => packVlmBatch([bad], Int32Array.from([0]), [], s)).toThrow(/5 pixel values, the model takes 12/);
  });

  it('refuses a future noise row of the wrong length, which the executor would copy as it is', () => {
    const s = TEST_SHAPES;
    const bad = {
      pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth),
      inputIds: new BigInt64Array(s.textTokens),
      attentionMask: new BigInt64Array(s.textTokens),
      state: new Float32Array(s.stateDim),
      embodimentId: 0,
      noise: { actions: new Float32Array(s.horizon * s.actionDim), future: new Float32Array(s.futureTokens * s.futureDim + 1) },
    };
    const oLen = s.futureTokens * s.futureDim;
    expect(() => packVlmBatch([bad], Int32Array.from([0]), [], s)).toThrow(new RegExp(`row 0: ${oLen + 1} future noise values, the model takes ${oLen}`));
  });
});

describe('packStepBatch', () => {
  it('gives each row its own flow times and step sizes, and lists the rows taking their last step', () => {
    const rows = [
      { slot: 0, i: 3, counts: { actionSteps: 4, visionSteps: 4 } },
      { slot: 2, i: 5, counts: { actionSteps: 4, visionSteps: 16 } },
      { slot: 3, i: 15, counts: { actionSteps: 2, visionSteps: 16 } },
    ];
    const b = packStepBatch(rows, []);
    expect(Array.from(b.slots)).toEqual([0, 2, 3]);
    rows.forEach((r, k) => {
      const p = stepPlan(r.i, r.counts);
      expect(b.tauA[k]).toBe(Math.fround(p.tauA));
      expect(b.tauO[k]).toBe(Math.fround(p.tauO));
      expect(b.dtA[k]).toBe(Math.fround(p.dtA));
      expect(b.dtO[k]).toBe(Math.fround(p.dtO));
    });
    expect(Array.from(b.finishing)).toEqual([0, 3]);
    expect(rows.map(isLastStep)).toEqual([true, false, true]);
  });
});

describe('packStepBatch guides (real-time chunking)', () => {
  it('gives a prefix row its guide on action steps only, at the flow time the step reaches (exactly 1 at the last)', () => {
    const guide = { target: new Float32Array(2), weights: new Float32Array(1), noise: new Float32Array(2), actionDim: 2 };
    const counts = { actionSteps: 3, visionSteps: 6 };
    const taus = Array.from(
      { length: 6 },
      (_, i) =>
        packStepBatch(
          [
            { slot: 0, i, counts, guide },
            { slot: 1, i, counts },
          ],
          [],
        ).guides?.[0]?.tau,
    );
    expect(taus).toEqual([undefined, 1 / 3, undefined, 2 / 3, undefined, 1]);
    expect(
      packStepBatch(
        [
          { slot: 0, i: 1, counts, guide },
          { slot: 1, i: 1, counts },
        ],
        [],
      ).guides?.[1],
    ).toBeUndefined();
    expect(packStepBatch([{ slot: 1, i: 1, counts }], [])).not.toHaveProperty('guides');
  });
});

describe('the condition method in the packed batches', () => {
  const horizon = 3;
  const dim = 2;
  const guide = {
    target: Float32Array.from([5, 5, 6, 6, 0, 0]),
    weights: Float32Array.from([1, 1, 0]),
    noise: new Float32Array(horizon * dim),
    actionDim: dim,
    clean: true,
  };

  it('carries per-position times for every row when one row is on it: 1 at its committed positions, tau_A elsewhere', () => {
    const counts = { actionSteps: 2, visionSteps: 4 };
    const b = packStepBatch(
      [
        { slot: 0, i: 2, counts, guide },
        { slot: 1, i: 1, counts },
      ],
      [],
    );
    expect(Array.from(b.actionTimes!)).toEqual([1, 1, 0.5, 0, 0, 0]);
    expect(packStepBatch([{ slot: 0, i: 2, counts, guide: { ...guide, clean: false } }], [])).not.toHaveProperty('actionTimes');
  });

  it("starts a condition row's committed positions at the prefix, and an inpainting row's at its noise", () => {
    const s = TEST_SHAPES;
    const aLen = s.horizon * s.actionDim;
    const input = (method: 'condition' | 'inpaint') => ({
      pixelValues: new Float32Array(s.views * 3 * s.imageHeight * s.imageWidth),
      inputIds: new BigInt64Array(s.textTokens),
      attentionMask: new BigInt64Array(s.textTokens),
      state: new Float32Array(s.stateDim),
      embodimentId: 0,
      noise: { actions: new Float32Array(aLen).fill(-1), future: new Float32Array(s.futureTokens * s.futureDim) },
      chunking: { method, target: new Float32Array(aLen).fill(7), weights: Float32Array.from({ length: s.horizon }, (_, i) => (i === 0 ? 1 : 0)) },
    });
    const b = packVlmBatch([input('condition'), input('inpaint')], Int32Array.from([0, 1]), [], s);
    const pinned = [...new Array<number>(s.actionDim).fill(7), ...new Array<number>(aLen - s.actionDim).fill(-1)];
    expect(Array.from(b.actions0.subarray(0, aLen))).toEqual(pinned);
    expect(Array.from(b.actions0.subarray(aLen))).toEqual(new Array<number>(aLen).fill(-1));
  });
});
