import { describe, expect, it } from 'vitest';
import { sampleJoint, stepCountProblem, stepPlan } from './index.js';

/** A denoiser that records what it was fed and returns constant velocities. */
function recordingDenoiser(dimA: number, dimO: number) {
  const calls: Array<{ tauA: number; tauO: number; a0: number; o0: number }> = [];
  const f = async (a: Float32Array, o: Float32Array, tauA: number, tauO: number) => {
    calls.push({ tauA, tauO, a0: a[0], o0: o[0] });
    return { vActions: new Float32Array(dimA).fill(1), vFuture: new Float32Array(dimO).fill(1) };
  };
  return { f, calls };
}

describe('asynchronous joint sampling schedule (docs/sampling.md)', () => {
  it('makes exactly N_o evaluations and N_A action updates, ending both modalities at tau = 1', async () => {
    for (const [na, no] of [
      [4, 4],
      [4, 16],
      [2, 8],
      [1, 3],
      [3, 12],
    ] as const) {
      const { f, calls } = recordingDenoiser(2, 3);
      const r = await sampleJoint(f, new Float32Array(2), new Float32Array(3), { actionSteps: na, visionSteps: no });
      expect(r.evaluations).toBe(no);
      expect(calls).toHaveLength(no);
      // With v = 1 everywhere, each modality integrates to exactly 1 (from tau 0 to tau 1).
      expect(r.actions[0]).toBeCloseTo(1, 6);
      expect(r.future[0]).toBeCloseTo(1, 6);
      const actionUpdates = new Set(calls.map((c) => c.a0)).size;
      expect(actionUpdates).toBe(na);
    }
  });

  it('feeds each modality its true noise level; the action steps at the end of each block of q', () => {
    const counts = { actionSteps: 2, visionSteps: 8 };
    const plans = Array.from({ length: 8 }, (_, i) => stepPlan(i, counts));
    expect(plans.map((p) => p.tauO)).toEqual([0, 1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8]);
    expect(plans.map((p) => p.tauA)).toEqual([0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5]);
    expect(plans.map((p) => p.dtA)).toEqual([0, 0, 0, 0.5, 0, 0, 0, 0.5]);
    expect(plans.every((p) => p.dtO === 1 / 8)).toBe(true);
  });

  it('q = 1 is plain synchronous Euler', () => {
    const plans = Array.from({ length: 4 }, (_, i) => stepPlan(i, { actionSteps: 4, visionSteps: 4 }));
    expect(plans.map((p) => [p.tauA, p.tauO, p.dtA, p.dtO])).toEqual([
      [0, 0, 0.25, 0.25],
      [0.25, 0.25, 0.25, 0.25],
      [0.5, 0.5, 0.25, 0.25],
      [0.75, 0.75, 0.25, 0.25],
    ]);
  });

  it('the action update uses the velocity from the last evaluation of its block, when vision is ahead', async () => {
    // v_A = tau_O at the time of the call: the action moves by dtA * tau_O of the block's last evaluation.
    const f = async (_a: Float32Array, _o: Float32Array, _tA: number, tO: number) => ({
      vActions: new Float32Array([tO]),
      vFuture: new Float32Array([0]),
    });
    const r = await sampleJoint(f, new Float32Array(1), new Float32Array(1), { actionSteps: 2, visionSteps: 4 });
    // blocks end at i = 1 (tau_o = 1/4) and i = 3 (tau_o = 3/4): A = 0.5 * 0.25 + 0.5 * 0.75
    expect(r.actions[0]).toBeCloseTo(0.5, 7);
  });

  it('explains invalid step counts', () => {
    expect(stepCountProblem({ actionSteps: 4, visionSteps: 6 }, 64)).toMatch(/multiple of action_steps/);
    expect(stepCountProblem({ actionSteps: 4, visionSteps: 2 }, 64)).toMatch(/multiple/);
    expect(stepCountProblem({ actionSteps: 4, visionSteps: 128 }, 64)).toMatch(/max_vision_steps 64/);
    expect(stepCountProblem({ actionSteps: 0, visionSteps: 4 }, 64)).toMatch(/action_steps must be/);
    expect(stepCountProblem({ actionSteps: 4, visionSteps: 16 }, 64)).toBeUndefined();
  });
});
