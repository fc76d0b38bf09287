/**
 * Outcome statistics of an A/B experiment (docs/api.md VariantStats): success rates with Wilson intervals,
 * the classical two-proportion z-test against the control, and an always-valid p-value that an operator may
 * read at any time without inflating false positives. Pure functions over counts.
 */
import { errorFunction } from 'simple-statistics';
import { OPTION_TABLE } from '../config/index.js';

/** The two-sided 95% standard normal quantile. */
export const Z_95 = 1.959963984540054;

/** Significance level of the always-valid decision: the experimentAlpha option's default. */
export const DEFAULT_ALPHA = OPTION_TABLE.experimentAlpha.default;

/**
 * Standard deviation tau of the normal mixing distribution over the true difference of success rates (see
 * mixtureLogLikelihoodRatio): the experimentMixtureSd option's default, whose row says why that value.
 * Validity holds for any tau; tau sets which effect sizes are detected fastest, roughly those near tau.
 */
export const DEFAULT_MIXTURE_SD = OPTION_TABLE.experimentMixtureSd.default;

export interface Proportion {
  readonly successes: number;
  readonly trials: number;
}

export interface Interval {
  readonly low: number;
  readonly high: number;
}

/** Standard normal upper tail, P(Z > z). */
export function normalUpperTail(z: number): number {
  return 0.5 * (1 - errorFunction(z / Math.SQRT2));
}

/**
 * Wilson score interval (Wilson, JASA 1927): the set of p whose z-test does not reject s/n. Unlike the Wald
 * interval it stays inside [0, 1] and keeps near-nominal coverage at small n and rates near 0 or 1:
 *   centre = (p̂ + z²/2n) / (1 + z²/n),   half = z / (1 + z²/n) · sqrt(p̂(1-p̂)/n + z²/4n²).
 * With no trials, the whole of [0, 1].
 */
export function wilsonInterval({ successes: s, trials: n }: Proportion, z = Z_95): Interval {
  if (n <= 0) return { low: 0, high: 1 };
  const p = s / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface ZTest {
  /** (p̂_candidate - p̂_control) / standard error under H0. */
  readonly z: number;
  /** Two-sided. */
  readonly pValue: number;
}

/** Both groups' pooled success rate and the variance of p̂_candidate - p̂_control under H0 (equal rates). */
function pooledVariance(control: Proportion, candidate: Proportion): number {
  const pooled = (control.successes + candidate.successes) / (control.trials + candidate.trials);
  return pooled * (1 - pooled) * (1 / control.trials + 1 / candidate.trials);
}

/**
 * The pooled two-proportion z-test of H0: equal success rates. Valid for ONE look at a sample size fixed in
 * advance; read repeatedly as data come in, its false-positive rate grows far above alpha (statistics.test.ts
 * measures it). With no trials in a group or no variance (every outcome alike), z = 0 and p = 1.
 */
export function twoProportionZTest(control: Proportion, candidate: Proportion): ZTest {
  if (control.trials <= 0 || candidate.trials <= 0) return { z: 0, pValue: 1 };
  const variance = pooledVariance(control, candidate);
  if (!(variance > 0)) return { z: 0, pValue: 1 };
  const z = (candidate.successes / candidate.trials - control.successes / control.trials) / Math.sqrt(variance);
  return { z, pValue: Math.min(1, 2 * normalUpperTail(Math.abs(z))) };
}

/**
 * log Λ, the mixture likelihood ratio of the mixture sequential probability ratio test (mSPRT) for the
 * difference θ = p_candidate - p_control against H0: θ = 0, after Johari, Koomen, Pekelis & Walsh, "Peeking at
 * A/B Tests: Why it matters, and what to do about it" (KDD 2017), and Johari, Pekelis & Walsh, "Always Valid
 * Inference: Continuous Monitoring of A/B Tests" (arXiv:1512.04922, Operations Research 2022).
 *
 * Derivation. By the normal approximation, the observed difference Δ̂ = p̂_candidate - p̂_control is
 * N(θ, V) with V the variance of Δ̂; we use its pooled estimate under H0,
 *   V = p̄(1 - p̄)(1/n_control + 1/n_candidate),  p̄ the pooled success rate.
 * The likelihood ratio of θ against 0 is f_θ(Δ̂) / f_0(Δ̂). Mixing θ over H = N(0, τ²) makes the numerator
 * the marginal density of Δ̂, N(0, V + τ²), so
 *   Λ = N(Δ̂; 0, V + τ²) / N(Δ̂; 0, V) = sqrt(V / (V + τ²)) · exp( τ² Δ̂² / (2 V (V + τ²)) ).
 * With n observations per arm and per-observation variance σ² in each (V = 2σ²/n), this is the paper's
 * two-sample mSPRT, Λ_n = sqrt(2σ² / (2σ² + nτ²)) · exp( n²τ²(Ȳ_n - X̄_n)² / (4σ²(2σ² + nτ²)) ); the pooled
 * V generalizes it to unequal group sizes. Under H0, Λ_n is (asymptotically) a nonnegative martingale with
 * mean 1, so by Ville's inequality P(sup_n Λ_n ≥ 1/α) ≤ α: the always-valid p-value p_n = min(1, min_{m≤n}
 * 1/Λ_m) satisfies P(p_T ≤ α) ≤ α at ANY stopping time T, however often it is looked at.
 *
 * Returns -Infinity (no evidence) while a group is empty or there is no variance yet.
 */
export function mixtureLogLikelihoodRatio(control: Proportion, candidate: Proportion, tau = DEFAULT_MIXTURE_SD): number {
  if (control.trials <= 0 || candidate.trials <= 0) return -Infinity;
  const v = pooledVariance(control, candidate);
  if (!(v > 0)) return -Infinity;
  const diff = candidate.successes / candidate.trials - control.successes / control.trials;
  return logMixtureRatio(diff, v, tau * tau);
}

/** log Λ of an observed difference `diff` from the tested one, with variance v and mixing variance t2 = τ². */
function logMixtureRatio(diff: number, v: number, t2: number): number {
  return 0.5 * Math.log(v / (v + t2)) + (t2 * diff * diff) / (2 * v * (v + t2));
}

/**
 * The always-valid confidence interval for θ = p_candidate - p_control at this moment: the θ0 that the same
 * mixture ratio as updateAlwaysValid (with θ0 in place of 0, same pooled V and τ) does not reject at level α,
 * { θ0 : Λ(θ0) < 1/α }, after Johari, Pekelis & Walsh (Operations Research 2022, section 4). Solving
 * log Λ(θ0) = log(1/α) for |Δ̂ - θ0| gives Δ̂ ± sqrt( 2V(V + τ²)/τ² · (log(1/α) - ½ log(V/(V + τ²))) ).
 * It excludes 0 exactly when the test's p-value at this moment is ≤ α, which is when the decision is taken.
 * Read over time these intervals are a confidence sequence: by Ville's inequality they cover θ at every moment
 * at once with probability 1 - α (under the same normal approximation as the test). Undefined while a group
 * is empty or there is no variance yet.
 */
export function alwaysValidInterval(
  control: Proportion,
  candidate: Proportion,
  { alpha, tau }: AlwaysValidOptions = { alpha: DEFAULT_ALPHA, tau: DEFAULT_MIXTURE_SD },
): (Interval & { readonly difference: number }) | undefined {
  if (control.trials <= 0 || candidate.trials <= 0) return undefined;
  const v = pooledVariance(control, candidate);
  if (!(v > 0)) return undefined;
  const difference = candidate.successes / candidate.trials - control.successes / control.trials;
  const t2 = tau * tau;
  const half = Math.sqrt(((2 * v * (v + t2)) / t2) * (Math.log(1 / alpha) - 0.5 * Math.log(v / (v + t2))));
  return { difference, low: difference - half, high: difference + half };
}

/** log Λ at θ0 (for checking an interval's bounds): the mixture ratio of the observed difference from θ0. */
export function mixtureLogLikelihoodRatioAt(control: Proportion, candidate: Proportion, theta0: number, tau = DEFAULT_MIXTURE_SD): number {
  if (control.trials <= 0 || candidate.trials <= 0) return -Infinity;
  const v = pooledVariance(control, candidate);
  if (!(v > 0)) return -Infinity;
  return logMixtureRatio(candidate.successes / candidate.trials - control.successes / control.trials - theta0, v, tau * tau);
}

export type Decision = 'keep collecting' | 'candidate better' | 'candidate worse';

/** What an always-valid test carries from one outcome to the next (and across restarts). */
export interface AlwaysValidState {
  /** min(1, min over updates of 1/Λ): never rises. */
  readonly pValue: number;
  /** Taken when pValue first falls to alpha, in the direction the difference had then; final after that. */
  readonly decision: Decision;
}

export const INITIAL_ALWAYS_VALID: AlwaysValidState = Object.freeze({ pValue: 1, decision: 'keep collecting' });

export interface AlwaysValidOptions {
  /** @default DEFAULT_ALPHA */
  readonly alpha: number;
  /** @default DEFAULT_MIXTURE_SD */
  readonly tau: number;
}

/**
 * One step of the sequential test, after a new outcome in either group. The decision rule stops at the first
 * n with p_n ≤ α (equivalently Λ_n ≥ 1/α) and declares the sign of Δ̂_n at that moment. At that moment the
 * always-valid confidence interval for θ excludes 0 on that side, so the direction is itself covered by the
 * α guarantee; the decision is final, while the p-value goes on falling as evidence accumulates.
 */
export function updateAlwaysValid(
  state: AlwaysValidState,
  control: Proportion,
  candidate: Proportion,
  { alpha, tau }: AlwaysValidOptions = { alpha: DEFAULT_ALPHA, tau: DEFAULT_MIXTURE_SD },
): AlwaysValidState {
  const pValue = Math.min(state.pValue, Math.exp(-mixtureLogLikelihoodRatio(control, candidate, tau)));
  if (state.decision !== 'keep collecting' || pValue > alpha) return pValue === state.pValue ? state : { pValue, decision: state.decision };
  const better = candidate.successes / candidate.trials > control.successes / control.trials;
  return { pValue, decision: better ? 'candidate better' : 'candidate worse' };
}
