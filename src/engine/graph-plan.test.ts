/** When the native executor captures CUDA graphs: the cudaGraphs option against what the package records. */
import { describe, expect, it } from 'vitest';
import { graphPlan } from './native-executor.js';

const HAZARD = 'Concat /denoiser/Concat: 2 pieces of sizes [1, 16] along axis 1';

describe('graphPlan', () => {
  it('never captures off CUDA or when the option is off', () => {
    for (const option of [true, false, 'auto'] as const) expect(graphPlan(option, 'cpu', [])).toEqual({ capture: false });
    expect(graphPlan(false, 'cuda', [])).toEqual({ capture: false });
  });

  it('captures a package that records no hazard, under auto and true', () => {
    expect(graphPlan('auto', 'cuda', [])).toEqual({ capture: true });
    expect(graphPlan(true, 'cuda', [])).toEqual({ capture: true });
  });

  it('refuses a package that records hazards whatever the option, naming them', () => {
    for (const option of [true, 'auto'] as const) {
      const plan = graphPlan(option, 'cuda', [HAZARD]);
      expect(plan.capture).toBe(false);
      expect(plan.note?.level).toBe('warn');
      expect(plan.note?.message).toMatch(/records 1 nodes .*export it again/);
      expect(plan.note?.fields).toEqual({ hazards: [HAZARD] });
    }
  });

  it('tries a package without a record only when asked to (true), and says why auto does not', () => {
    expect(graphPlan(true, 'cuda', undefined)).toEqual({ capture: true });
    const auto = graphPlan('auto', 'cuda', undefined);
    expect(auto.capture).toBe(false);
    expect(auto.note?.message).toMatch(/does not record .* --cuda-graphs true tries them/);
  });
});
