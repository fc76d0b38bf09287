import { describe, expect, it } from 'vitest';
import { GaussianNoise, initialNoise } from './index.js';

describe('seeded noise', () => {
  it('implements xoshiro128** and splitmix64 as published', () => {
    // Reference outputs: xoshiro128** from state {1, 2, 3, 4}; splitmix64's first output for seed 0.
    const g = GaussianNoise.fromState([1, 2, 3, 4]);
    expect([g.nextUint32(), g.nextUint32(), g.nextUint32(), g.nextUint32()]).toEqual([11520, 0, 5927040, 70819200]);
    expect(GaussianNoise.splitmix64First(0n)).toBe(0xe220a8397b1dcdafn);
  });

  it('reproduces the same noise for the same seed and differs across seeds', () => {
    const a = initialNoise(42n, 16 * 32, 64);
    const b = initialNoise(42n, 16 * 32, 64);
    const c = initialNoise(43n, 16 * 32, 64);
    expect(a.actions).toEqual(b.actions);
    expect(a.future).toEqual(b.future);
    expect(a.actions).not.toEqual(c.actions);
    // Full uint64 seeds are honoured: seeds differing only in the high 32 bits differ.
    expect(initialNoise(1n << 40n, 8, 8).actions).not.toEqual(initialNoise(0n, 8, 8).actions);
  });

  it('is standard normal', () => {
    const x = new GaussianNoise(7n).fill(new Float32Array(200_000));
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    const tail = x.filter((v) => Math.abs(v) > 1.96).length / x.length;
    expect(tail).toBeGreaterThan(0.045);
    expect(tail).toBeLessThan(0.055);
  });

  it('fill() draws exactly what nextGaussian() does, odd lengths and a pending spare included', () => {
    const one = new GaussianNoise(99n);
    const want = Float32Array.from({ length: 1 + 3 + 6 + 5 }, () => one.nextGaussian());
    const g = new GaussianNoise(99n);
    const got = [Float32Array.of(g.nextGaussian()), g.fill(new Float32Array(3)), g.fill(new Float32Array(6)), g.fill(new Float32Array(5))];
    expect(Float32Array.from(got.flatMap((a) => [...a]))).toEqual(want);
    expect(g.nextGaussian()).toBe(one.nextGaussian());
  });
});
