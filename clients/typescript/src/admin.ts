/** AdminService messages <-> the client's camelCase types (docs/api.md AdminService). Pure. */
import type { Experiment__Output } from './gen/dust/serving/v1/Experiment.js';
import type { ModelStatus__Output } from './gen/dust/serving/v1/ModelStatus.js';
import type { SetTrafficSplitRequest } from './gen/dust/serving/v1/SetTrafficSplitRequest.js';
import type { TrafficSplit__Output } from './gen/dust/serving/v1/TrafficSplit.js';
import type { VariantStats__Output } from './gen/dust/serving/v1/VariantStats.js';
import { modelState, type ModelState } from './models.js';

export type StickyKeyName = 'robot' | 'episode';

/** The always-valid test's verdict; 'none' when the experiment has no control, 'control' for the control row. */
export type DecisionName = 'none' | 'keep collecting' | 'candidate better' | 'candidate worse' | 'control';

export interface VersionWeightInit {
  version: number;
  /** > 0; the server normalizes the weights to sum to 1. */
  weight: number;
}

export interface SplitInit {
  /** @default '' (the server's default model) */
  model?: string;
  weights: VersionWeightInit[];
  /** @default 0 (the lowest version of the split) */
  controlVersion?: number;
  /** @default 'robot' */
  stickyKey?: StickyKeyName;
  /** A new salt starts a new experiment. @default '' (keep the current one) */
  salt?: string;
  /** @default 0 (none) */
  shadowVersion?: number;
  /** 0..1 of the primary's requests mirrored to the shadow version. @default 0 */
  shadowFraction?: number;
}

export interface TrafficSplitResult {
  model: string;
  salt: string;
  weights: VersionWeightInit[];
  controlVersion: number;
  stickyKey: StickyKeyName;
  shadowVersion: number;
  shadowFraction: number;
  experimentId: number;
  newExperiment: boolean;
}

export interface VariantStatsResult {
  version: number;
  state: ModelState;
  weight: number;
  requests: number;
  robots: number;
  robotsCapped: boolean;
  episodesServed: number;
  episodes: number;
  successes: number;
  successRate: number;
  ci95Low: number;
  ci95High: number;
  pValueVsControl: number;
  alwaysValidPValue: number;
  decision: DecisionName;
  latencyP50Ms: number;
  latencyP99Ms: number;
  meanVisionSteps: number;
  meanWorldModelSurprise: number;
  shadowRequests: number;
  shadowShed: number;
  shadowActionDivergence: number;
  shadowLatencyP50Ms: number;
  shadowLatencyP99Ms: number;
}

export interface ExperimentResult {
  model: string;
  experimentId: number;
  salt: string;
  startedAt: string;
  controlVersion: number;
  stickyKey: StickyKeyName;
  shadowVersion: number;
  shadowFraction: number;
  alpha: number;
  variants: VariantStatsResult[];
}

export interface ModelStatusResult {
  name: string;
  version: number;
  state: ModelState;
  /** Why FAILED, or what happened (e.g. "unloaded"). */
  reason: string;
}

const DECISIONS: Record<string, DecisionName> = {
  DECISION_UNSPECIFIED: 'none',
  DECISION_KEEP_COLLECTING: 'keep collecting',
  DECISION_CANDIDATE_BETTER: 'candidate better',
  DECISION_CANDIDATE_WORSE: 'candidate worse',
  DECISION_CONTROL: 'control',
};

const stickyKey = (k: unknown): StickyKeyName => (String(k) === 'STICKY_KEY_EPISODE' ? 'episode' : 'robot');

export function toSetTrafficSplitRequest(init: SplitInit): SetTrafficSplitRequest {
  return {
    name: init.model ?? '',
    weights: init.weights.map((w) => ({ version: w.version, weight: w.weight })),
    control_version: init.controlVersion ?? 0,
    sticky_key: init.stickyKey === 'episode' ? 'STICKY_KEY_EPISODE' : 'STICKY_KEY_ROBOT',
    salt: init.salt ?? '',
    shadow_version: init.shadowVersion ?? 0,
    shadow_fraction: init.shadowFraction ?? 0,
  };
}

export function fromTrafficSplit(m: TrafficSplit__Output): TrafficSplitResult {
  return {
    model: m.name,
    salt: m.salt,
    weights: m.weights.map((w) => ({ version: w.version, weight: w.weight })),
    controlVersion: m.control_version,
    stickyKey: stickyKey(m.sticky_key),
    shadowVersion: m.shadow_version,
    shadowFraction: m.shadow_fraction,
    experimentId: Number(m.experiment_id),
    newExperiment: m.new_experiment,
  };
}

function fromVariantStats(v: VariantStats__Output): VariantStatsResult {
  return {
    version: v.version,
    state: modelState(v.state),
    weight: v.weight,
    requests: Number(v.requests),
    robots: Number(v.robots),
    robotsCapped: v.robots_capped,
    episodesServed: Number(v.episodes_served),
    episodes: Number(v.episodes),
    successes: Number(v.successes),
    successRate: v.success_rate,
    ci95Low: v.ci95_low,
    ci95High: v.ci95_high,
    pValueVsControl: v.p_value_vs_control,
    alwaysValidPValue: v.always_valid_p_value,
    decision: DECISIONS[String(v.decision)] ?? 'none',
    latencyP50Ms: v.latency_p50_ms,
    latencyP99Ms: v.latency_p99_ms,
    meanVisionSteps: v.mean_vision_steps,
    meanWorldModelSurprise: v.mean_world_model_surprise,
    shadowRequests: Number(v.shadow_requests),
    shadowShed: Number(v.shadow_shed),
    shadowActionDivergence: v.shadow_action_divergence,
    shadowLatencyP50Ms: v.shadow_latency_p50_ms,
    shadowLatencyP99Ms: v.shadow_latency_p99_ms,
  };
}

export function fromExperiment(m: Experiment__Output): ExperimentResult {
  return {
    model: m.name,
    experimentId: Number(m.experiment_id),
    salt: m.salt,
    startedAt: m.started_at,
    controlVersion: m.control_version,
    stickyKey: stickyKey(m.sticky_key),
    shadowVersion: m.shadow_version,
    shadowFraction: m.shadow_fraction,
    alpha: m.alpha,
    variants: m.variants.map(fromVariantStats),
  };
}

export function fromModelStatus(m: ModelStatus__Output): ModelStatusResult {
  return { name: m.name, version: m.version, state: modelState(m.state), reason: m.reason };
}
