/** The real-time chunking verdict (rtc-sweep.ts), on made-up cells: each clause must be able to fail. */
import { describe, expect, it } from 'vitest';
import { verdict, type SweepCell } from './rtc-sweep.js';

const cell = (method: SweepCell['method'], delay: number, rate: number, disc: number): SweepCell => ({
  method,
  delay,
  episodes: 200,
  successes: Math.round(rate * 200),
  success_rate: rate,
  ci95: [rate - 0.05, rate + 0.05],
  mean_boundary_discontinuity: disc,
  switches: 1000,
  mean_jerk: 1,
  latency_p50_ms: 10,
  wall_s: 60,
});

describe('verdict', () => {
  it('is met when rtc keeps success within 5 points, naive loses twice as much, and the discontinuity falls 3x', () => {
    const v = verdict([cell('rtc', 0, 0.7, 0.02), cell('rtc', 4, 0.67, 0.03), cell('naive', 0, 0.7, 0.1), cell('naive', 4, 0.6, 0.12)], 4);
    expect(v).toMatchObject({ within_5_points: true, naive_drop_at_least_twice: true, discontinuity_3x_lower: true, met: true });
    expect(v!.success_drop.rtc).toBeCloseTo(0.03, 6);
    expect(v!.discontinuity_ratio_naive_over_method).toBe(4);
  });

  it('fails each clause on its own', () => {
    const base = (rtc4: number, naive4: number, rtcDisc: number) =>
      verdict([cell('rtc', 0, 0.7, 0.02), cell('rtc', 4, rtc4, rtcDisc), cell('naive', 0, 0.7, 0.1), cell('naive', 4, naive4, 0.12)], 4)!;
    expect(base(0.6, 0.3, 0.03)).toMatchObject({ within_5_points: false, met: false });
    expect(base(0.67, 0.66, 0.03)).toMatchObject({ naive_drop_at_least_twice: false, met: false });
    expect(base(0.67, 0.6, 0.05)).toMatchObject({ discontinuity_3x_lower: false, met: false });
    // Neither loses anything: naive has not lost twice as much as nothing.
    expect(base(0.7, 0.7, 0.03)).toMatchObject({ naive_drop_at_least_twice: false, met: false });
  });

  it('judges the condition method the same way, from its own cells', () => {
    const cells = [cell('rtc', 0, 0.7, 0.02), cell('rtc', 4, 0.4, 0.02), cell('naive', 0, 0.7, 0.1), cell('naive', 4, 0.6, 0.12)];
    expect(verdict(cells, 4, 'condition')).toBeUndefined();
    const v = verdict([...cells, cell('condition', 0, 0.72, 0.03), cell('condition', 4, 0.7, 0.03)], 4, 'condition')!;
    expect(v).toMatchObject({ method: 'condition', within_5_points: true, met: true });
    expect(verdict(cells, 4)).toMatchObject({ method: 'rtc', within_5_points: false, met: false });
  });

  it('gives no verdict without both methods at delay 0 and at the verdict delay', () => {
    expect(verdict([cell('rtc', 0, 0.7, 0.02), cell('rtc', 4, 0.7, 0.02)], 4)).toBeUndefined();
  });
});
