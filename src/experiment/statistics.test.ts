import { describe, expect, it } from 'vitest';
import { GaussianNoise } from '../sampling/index.js';
import {
  DEFAULT_ALPHA,
  INITIAL_ALWAYS_VALID,
  alwaysValidInterval,
  mixtureLogLikelihoodRatio,
  mixtureLogLikelihoodRatioAt,
  normalUpperTail,
  twoProportionZTest,
  updateAlwaysValid,
  wilsonInterval,
  type AlwaysValidState,
  type Proportion,
} from './statistics.js';

describe('wilsonInterval', () => {
  // By hand: p̂ = 0.8, z² = 3.84146, denominator 1.384146, centre 0.716740, half-width 0.226578.
  it('8 of 10', () => {
    const { low, high } = wilsonInterval({ successes: 8, trials: 10 });
    expect(low).toBeCloseTo(0.490162, 6);
    expect(high).toBeCloseTo(0.943318, 6);
  });
  // p̂ = 0: the interval starts at 0 (a Wald interval would collapse to [0, 0]); high = z²/n / (1 + z²/n).
  it('0 of 20', () => {
    const { low, high } = wilsonInterval({ successes: 0, trials: 20 });
    expect(low).toBe(0);
    expect(high).toBeCloseTo(0.161125, 6);
  });
  it('is [0, 1] without trials, and symmetric in successes and failures', () => {
    expect(wilsonInterval({ successes: 0, trials: 0 })).toEqual({ low: 0, high: 1 });
    const a = wilsonInterval({ successes: 3, trials: 17 });
    const b = wilsonInterval({ successes: 14, trials: 17 });
    expect(a.low).toBeCloseTo(1 - b.high, 12);
  });
});

describe('twoProportionZTest', () => {
  // By hand: pooled 115/200 = 0.575, variance 0.575·0.425·(1/100 + 1/100) = 0.0048875, z = 0.15/0.0699106.
  it('50/100 vs 65/100', () => {
    const { z, pValue } = twoProportionZTest({ successes: 50, trials: 100 }, { successes: 65, trials: 100 });
    expect(z).toBeCloseTo(2.145596, 5);
    expect(pValue).toBeCloseTo(0.031905, 5); // = R's prop.test(c(65, 50), c(100, 100), correct = FALSE)
  });
  it('is antisymmetric, and p = 1 without data or variance', () => {
    const a = twoProportionZTest({ successes: 30, trials: 80 }, { successes: 20, trials: 70 });
    const b = twoProportionZTest({ successes: 20, trials: 70 }, { successes: 30, trials: 80 });
    expect(a.z).toBeCloseTo(-b.z, 12);
    expect(a.pValue).toBeCloseTo(b.pValue, 12);
    expect(twoProportionZTest({ successes: 0, trials: 0 }, { successes: 3, trials: 5 }).pValue).toBe(1);
    expect(twoProportionZTest({ successes: 5, trials: 5 }, { successes: 9, trials: 9 }).pValue).toBe(1);
  });
  it('normalUpperTail matches the normal table', () => {
    expect(normalUpperTail(1.959963984540054)).toBeCloseTo(0.025, 7);
    expect(normalUpperTail(0)).toBeCloseTo(0.5, 7);
  });
});

describe('mixtureLogLikelihoodRatio', () => {
  // By hand (tau = 0.1): V = 0.0048875, V + τ² = 0.0148875,
  // log Λ = ½ ln(0.0048875/0.0148875) + 0.01·0.15² / (2·0.0048875·0.0148875) = -0.556917 + 1.546119.
  it('50/100 vs 65/100', () => {
    const logLambda = mixtureLogLikelihoodRatio({ successes: 50, trials: 100 }, { successes: 65, trials: 100 }, 0.1);
    expect(logLambda).toBeCloseTo(0.989202, 5);
    expect(Math.exp(-logLambda)).toBeCloseTo(0.371873, 5);
  });
  it('equals the paper’s equal-sample-size formula with σ² = p̄(1-p̄)', () => {
    const n = 400;
    const control = { successes: 120, trials: n };
    const candidate = { successes: 150, trials: n };
    const pooled = 270 / 800;
    const s2 = pooled * (1 - pooled);
    const tau = 0.05;
    const d = 150 / n - 120 / n;
    const paper = 0.5 * Math.log((2 * s2) / (2 * s2 + n * tau * tau)) + (n * n * tau * tau * d * d) / (4 * s2 * (2 * s2 + n * tau * tau));
    expect(mixtureLogLikelihoodRatio(control, candidate, tau)).toBeCloseTo(paper, 10);
  });
  it('is -Infinity (no evidence) without data in a group or without variance', () => {
    expect(mixtureLogLikelihoodRatio({ successes: 0, trials: 0 }, { successes: 1, trials: 1 })).toBe(-Infinity);
    expect(mixtureLogLikelihoodRatio({ successes: 0, trials: 4 }, { successes: 0, trials: 9 })).toBe(-Infinity);
  });
});

/** The project's seeded generator (xoshiro128**), so the simulations are the same on every run. */
function rng(seed: number): () => number {
  const g = new GaussianNoise(BigInt(seed));
  return () => g.nextUniform();
}

interface Run {
  naive: boolean;
  state: AlwaysValidState;
}

/**
 * One simulated experiment: outcomes arrive one at a time, each to control or candidate with equal
 * probability; an operator looks after every `peekEvery` outcomes and stops at the first look where the test
 * says "significant". Returns whether the naive z-test and the always-valid test ever did.
 */
function simulate(random: () => number, pControl: number, pCandidate: number, outcomes: number, peekEvery: number): Run {
  const c = { successes: 0, trials: 0 };
  const t = { successes: 0, trials: 0 };
  let naive = false;
  let state = INITIAL_ALWAYS_VALID;
  for (let i = 1; i <= outcomes; i++) {
    const group = random() < 0.5 ? c : t;
    group.trials++;
    if (random() < (group === c ? pControl : pCandidate)) group.successes++;
    if (i % peekEvery !== 0) continue;
    naive ||= twoProportionZTest(c as Proportion, t as Proportion).pValue <= DEFAULT_ALPHA;
    state = updateAlwaysValid(state, c, t);
  }
  return { naive, state };
}

describe('the always-valid p-value under continuous peeking', () => {
  const experiments = 1000;
  const outcomes = 2000;
  // Binomial standard error of a rate near alpha over 1000 experiments: sqrt(0.05·0.95/1000) = 0.0069.
  const simulationError = 3 * Math.sqrt((DEFAULT_ALPHA * (1 - DEFAULT_ALPHA)) / experiments);

  it.each([0.1, 0.3, 0.5])('A/A at success rate %f, looking after every 10 outcomes: at most alpha; the naive z-test far above', (rate) => {
    const random = rng(Math.round(rate * 1000));
    let naive = 0;
    let alwaysValid = 0;
    for (let e = 0; e < experiments; e++) {
      const run = simulate(random, rate, rate, outcomes, 10);
      if (run.naive) naive++;
      if (run.state.decision !== 'keep collecting') alwaysValid++;
    }
    expect(alwaysValid / experiments).toBeLessThanOrEqual(DEFAULT_ALPHA + simulationError);
    // 200 looks at a fixed-sample test: a well-known inflation to several times alpha.
    expect(naive / experiments).toBeGreaterThan(3 * DEFAULT_ALPHA);
  });

  it('the server updates after every outcome: still at most alpha', () => {
    const random = rng(42);
    let alwaysValid = 0;
    for (let e = 0; e < experiments; e++) if (simulate(random, 0.3, 0.3, outcomes, 1).state.decision !== 'keep collecting') alwaysValid++;
    expect(alwaysValid / experiments).toBeLessThanOrEqual(DEFAULT_ALPHA + simulationError);
  });

  it('detects a real difference, in the right direction', () => {
    const random = rng(7);
    const runs = 200;
    let better = 0;
    let worse = 0;
    for (let e = 0; e < runs; e++) {
      if (simulate(random, 0.3, 0.45, outcomes, 10).state.decision === 'candidate better') better++;
      if (simulate(random, 0.45, 0.3, outcomes, 10).state.decision === 'candidate worse') worse++;
    }
    // A 15-point lift over ~1000 outcomes per group: the fixed-sample test's power is ~1; the sequential test
    // pays for validity with some power, but not most of it.
    expect(better / runs).toBeGreaterThan(0.9);
    expect(worse / runs).toBeGreaterThan(0.9);
  });

  it('a decision is final and the p-value never rises', () => {
    let state = updateAlwaysValid(INITIAL_ALWAYS_VALID, { successes: 100, trials: 400 }, { successes: 180, trials: 400 });
    expect(state.decision).toBe('candidate better');
    const p = state.pValue;
    state = updateAlwaysValid(state, { successes: 300, trials: 500 }, { successes: 180, trials: 500 });
    expect(state.decision).toBe('candidate better');
    expect(state.pValue).toBeLessThanOrEqual(p);
    const calm = updateAlwaysValid({ pValue: 0.2, decision: 'keep collecting' }, { successes: 5, trials: 10 }, { successes: 5, trials: 10 });
    expect(calm.pValue).toBe(0.2);
  });
});

describe('alwaysValidInterval', () => {
  const control = { successes: 10, trials: 20 };
  const candidate = { successes: 15, trials: 20 };
  // By hand: p̄ = 0.625, V = 0.625 · 0.375 · (1/20 + 1/20) = 0.0234375, τ² = 0.01, Δ̂ = 0.25,
  // half = sqrt(2V(V + τ²)/τ² · (ln 20 - ½ ln(V/(V + τ²)))) = 0.705261.
  it('10 of 20 against 15 of 20', () => {
    const i = alwaysValidInterval(control, candidate)!;
    expect(i.difference).toBeCloseTo(0.25, 12);
    expect(i.low).toBeCloseTo(0.25 - 0.705261, 5);
    expect(i.high).toBeCloseTo(0.25 + 0.705261, 5);
  });
  it('its bounds are where the mixture ratio reaches 1/alpha', () => {
    const i = alwaysValidInterval(control, candidate, { alpha: 0.05, tau: 0.1 })!;
    for (const bound of [i.low, i.high]) expect(mixtureLogLikelihoodRatioAt(control, candidate, bound, 0.1)).toBeCloseTo(Math.log(20), 9);
    expect(mixtureLogLikelihoodRatioAt(control, candidate, 0, 0.1)).toBe(mixtureLogLikelihoodRatio(control, candidate, 0.1));
  });
  it('excludes 0 exactly when the sequential test decides', () => {
    for (const [c, k] of [
      [8, 12],
      [8, 16],
      [8, 18],
      [12, 4],
      [12, 2],
    ]) {
      const ctrl = { successes: c, trials: 20 };
      const cand = { successes: k, trials: 20 };
      const i = alwaysValidInterval(ctrl, cand)!;
      const decided = updateAlwaysValid(INITIAL_ALWAYS_VALID, ctrl, cand).decision !== 'keep collecting';
      expect(i.low > 0 || i.high < 0).toBe(decided);
    }
  });
  it('is undefined without trials or variance', () => {
    expect(alwaysValidInterval({ successes: 0, trials: 0 }, candidate)).toBeUndefined();
    expect(alwaysValidInterval({ successes: 5, trials: 5 }, { successes: 3, trials: 3 })).toBeUndefined();
  });
});
