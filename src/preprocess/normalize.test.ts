import { describe, expect, it } from 'vitest';
import { InferenceError, InvalidArgumentError, ModelPackageError } from '../errors/index.js';
import type { EmbodimentSpec } from '../model/manifest.js';
import { checkNormalization, denormalizeActions, normalizeActions, normalizeState } from './index.js';
import { MAX_NORMALIZED_STATE } from './normalize.js';

// 3 state dims (the last constant in the data), 2 action dims.
const emb: EmbodimentSpec = {
  id: 0,
  state_dim: 3,
  action_dim: 2,
  normalization: {
    state: { min: [0, -2, 5], max: [10, 2, 5] },
    action: { min: [-1, 100], max: [1, 300] },
  },
};

describe('normalizeState', () => {
  it('maps [min, max] to [-1, 1] and zero-pads to the graph width', () => {
    expect(Array.from(normalizeState([0, -2, 5], emb, 6))).toEqual([-1, -1, 0, 0, 0, 0]);
    expect(Array.from(normalizeState([10, 2, 5], emb, 6))).toEqual([1, 1, 0, 0, 0, 0]);
    expect(Array.from(normalizeState([2.5, 1, 5], emb, 4))).toEqual([-0.5, 0.5, 0, 0]);
  });

  it('maps a constant dimension to 0 whatever the value, and does not clip the others', () => {
    const row = normalizeState([20, -4, 123], emb, 3);
    expect(Array.from(row)).toEqual([3, -2, 0]);
  });

  it('names the embodiment when the length is wrong', () => {
    expect(() => normalizeState([1, 2], emb, 8, 'franka_fr3')).toThrow(new InvalidArgumentError('state: expected 3 values for embodiment franka_fr3, got 2'));
    expect(() => normalizeState([1, 2, 3, 4], emb, 8)).toThrow(InvalidArgumentError);
  });

  it('refuses a finite value so far out of range that its normalized value would not be usable', () => {
    // range 10: normalized = x / 5 - 1, so 5e6 + 5 is exactly at the bound.
    expect(normalizeState([5e6 + 5, 0, 5], emb, 3)[0]).toBe(MAX_NORMALIZED_STATE);
    for (const x of [6e6, -6e6, 3.4e38, -Number.MAX_VALUE, Number.MAX_VALUE]) {
      expect(() => normalizeState([1, x, 5], emb, 3)).toThrow(InvalidArgumentError);
      expect(() => normalizeState([x, 0, 5], emb, 3)).toThrow(/^state\[0\] = \S+ is far outside this embodiment's range \[0, 10\]/);
    }
    // A constant dimension normalizes to 0 whatever its value.
    expect(normalizeState([0, 0, 3.4e38], emb, 3)[2]).toBe(0);
  });

  it('points at the first non-finite value', () => {
    expect(() => normalizeState([1, Number.NaN, 3], emb, 8)).toThrow(new InvalidArgumentError('state[1] is NaN: every state value must be finite'));
    expect(() => normalizeState([1, 2, Number.NEGATIVE_INFINITY], emb, 8)).toThrow('state[2] is -Infinity: every state value must be finite');
  });
});

describe('denormalizeActions', () => {
  it('inverts the min-max map and drops padding columns', () => {
    // horizon 2, graph width 4: columns 2 and 3 are padding the model may fill with anything.
    const chunk = Float32Array.from([-1, 1, 0.9, -0.9, 0, 0, 0.5, 0.5]);
    const actions = denormalizeActions(chunk, 2, 4, emb);
    expect(Array.from(actions)).toEqual([-1, 300, 0, 200]);
  });

  it('clips to [-1, 1] so actions stay inside the training range', () => {
    const chunk = Float32Array.from([1.5, -3]);
    expect(Array.from(denormalizeActions(chunk, 1, 2, emb))).toEqual([1, 100]);
  });

  it('round-trips normalized values back to the original units', () => {
    const twin: EmbodimentSpec = { ...emb, action_dim: 3, normalization: { ...emb.normalization, action: emb.normalization.state } };
    const original = [7.5, 0.25, 5];
    const back = denormalizeActions(normalizeState(original, twin, 3), 1, 3, twin);
    back.forEach((v, i) => expect(v).toBeCloseTo(original[i], 5));
  });

  it('refuses a chunk of the wrong size or with a non-finite value', () => {
    expect(() => denormalizeActions(new Float32Array(7), 2, 4, emb)).toThrow(InferenceError);
    expect(() => denormalizeActions(Float32Array.from([0, Number.NaN]), 1, 2, emb)).toThrow(
      'the model produced a non-finite action (NaN) at step 0, dimension 1',
    );
  });
});

describe('checkNormalization', () => {
  it('accepts a consistent embodiment', () => {
    expect(() => checkNormalization(emb, 'franka_fr3', { stateDim: 8, actionDim: 8 })).not.toThrow();
  });

  const broken = (patch: Partial<EmbodimentSpec['normalization']>, dims?: Partial<EmbodimentSpec>): EmbodimentSpec => ({
    ...emb,
    ...dims,
    normalization: { ...emb.normalization, ...patch },
  });

  it('names the field whose length is wrong', () => {
    expect(() => checkNormalization(broken({ state: { min: [0, 0], max: [1, 1, 1] } }), 'franka_fr3')).toThrow(
      new ModelPackageError('manifest.json: embodiments.franka_fr3.normalization.state.min has 2 values, expected state_dim = 3'),
    );
    expect(() => checkNormalization(broken({ action: { min: [0, 0], max: [1] } }), 'ur5')).toThrow(
      'manifest.json: embodiments.ur5.normalization.action.max has 1 values, expected action_dim = 2',
    );
  });

  it('refuses non-finite statistics and max < min', () => {
    expect(() => checkNormalization(broken({ action: { min: [0, Number.NaN], max: [1, 1] } }), 'e')).toThrow(
      'manifest.json: embodiments.e.normalization.action.min[1] is NaN, expected a finite number',
    );
    expect(() => checkNormalization(broken({ action: { min: [0, 2], max: [1, 1] } }), 'e')).toThrow(
      'manifest.json: embodiments.e.normalization.action: max[1] = 1 is less than min[1] = 2',
    );
  });

  it('refuses an embodiment wider than the graph', () => {
    expect(() => checkNormalization(emb, 'e', { stateDim: 2, actionDim: 8 })).toThrow(
      "manifest.json: embodiments.e.state_dim is 3, larger than the graph's state.dim 2",
    );
    expect(() => checkNormalization(broken({}, { action_dim: 0 }), 'e')).toThrow(ModelPackageError);
  });
});

describe('normalizeActions (a committed prefix coming back)', () => {
  it('inverts denormalizeActions, padded to the graph width, clipped to [-1, 1], 0 where max == min', () => {
    const chunk = Float32Array.from([-1, 0.5, 0, 0, 1, -0.25, 0, 0]);
    const back = normalizeActions(denormalizeActions(chunk, 2, 4, emb), 2, 4, emb);
    back.forEach((v, i) => expect(v).toBeCloseTo(chunk[i], 6));
    expect(Array.from(normalizeActions(Float32Array.from([5, 1000]), 1, 3, emb))).toEqual([1, 1, 0]);
    const flat: EmbodimentSpec = { ...emb, normalization: { ...emb.normalization, action: { min: [2, 100], max: [2, 300] } } };
    expect(normalizeActions(Float32Array.from([7, 200]), 1, 2, flat)[0]).toBe(0);
  });
});
