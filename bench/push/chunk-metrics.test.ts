import { describe, expect, it } from 'vitest';
import { boundaryDiscontinuity, committedPrefix, lateSwitchFraction, meanJerk, switchStep } from './chunk-metrics.js';

const rows = (...values: number[][]) => values.map((v) => Float32Array.from(v));

describe('real-time chunking in the fleet', () => {
  it('commits the rest of the executing chunk from the observed tick, and a delay it can honour', () => {
    const chunk = rows([0], [1], [2], [3], [4]);
    expect(committedPrefix(chunk, 2, 16, 1)).toEqual({ actions: rows([2], [3], [4]), delaySteps: 1 });
    expect(committedPrefix(chunk, 3, 16, 4)!.delaySteps).toBe(2);
    expect(committedPrefix(chunk, 1, 2, 0)!.actions).toHaveLength(2);
    expect(committedPrefix(chunk, 5, 16, 1)).toBeUndefined();
  });

  it('commits only the actions that run before the switch when asked to, and nothing at delay 0', () => {
    const chunk = rows([0], [1], [2], [3], [4]);
    expect(committedPrefix(chunk, 1, 16, 2, 'delay')).toEqual({ actions: rows([1], [2]), delaySteps: 2 });
    expect(committedPrefix(chunk, 3, 16, 4, 'delay')).toEqual({ actions: rows([3], [4]), delaySteps: 2 });
    expect(committedPrefix(chunk, 1, 16, 0, 'delay')).toBeUndefined();
  });

  it("measures the switch's jump between the new chunk's action and the old chunk's, for the same tick", () => {
    const old = rows([0, 0], [1, 0], [2, 0], [3, 0]);
    const fresh = rows([9, 9], [9, 9], [2, 4], [5, 5]);
    // Requested at old row 1; the switch 1 tick later takes fresh row 1 against old row 2.
    expect(boundaryDiscontinuity(fresh, old, 1, 1)).toBeCloseTo(Math.hypot(7, 9), 6);
    expect(boundaryDiscontinuity(fresh, old, 0, 2)).toBe(4);
    expect(boundaryDiscontinuity(fresh, old, 3, 1)).toBeUndefined();
    // The executed step at the switch is defined even there.
    expect(switchStep(fresh, 2, old[3])).toBeCloseTo(Math.hypot(1, 4), 6);
    expect(switchStep(fresh, 2, undefined)).toBeUndefined();
  });

  it('gives a straight or constant-acceleration trajectory no jerk, and a step a jerk', () => {
    expect(meanJerk(rows([0], [1], [2], [3], [4]), 0.1)).toBe(0);
    expect(meanJerk(rows([0], [1], [4], [9], [16]), 0.1)).toBeCloseTo(0, 6);
    expect(meanJerk(rows([0], [0], [0], [1]), 0.5)).toBe(8);
    expect(meanJerk(rows([0], [1]), 0.1)).toBe(0);
  });

  it('counts a switch as late only when it came after the d the server assumed, over switches with a prefix', () => {
    // Switches at 2, 3, 1 and 4 ticks; assumed 2, 2, 2 and none (no prefix: not counted).
    expect(lateSwitchFraction([2, 3, 1, 4], [2, 2, 2, -1])).toBeCloseTo(1 / 3, 12);
    expect(lateSwitchFraction([1, 1], [1, 1])).toBe(0);
    expect(lateSwitchFraction([5], [-1])).toBeNaN();
  });
});
