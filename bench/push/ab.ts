/**
 * An A/B test run the way an operator would: AdminService SetTrafficSplit sends the robots' unpinned requests
 * half to a control and half to a candidate version, robots run held-out episodes and report outcomes, and
 * after each outcome GetExperiment is read (as often as one likes: its always-valid p-value allows it) until
 * the decision is no longer KEEP_COLLECTING. Episodes already running then finish and are reported too.
 */
import type { DustClient, ExperimentResult, StickyKeyName, VariantStatsResult } from '@dust-serve/client';
import { round } from '../stats.js';
import type { Condition } from './conditions.js';
import type { EpisodeResult, EpisodeSpec } from './push-robot.js';
import type { EmbodimentName } from '@dust-serve/sim-push';

export interface AbSettings {
  readonly model: string;
  readonly control: number;
  readonly candidate: number;
  readonly stickyKey: StickyKeyName;
  readonly salt: string;
  /** Stop starting episodes after this many, decided or not. */
  readonly maxEpisodes: number;
  readonly actionSteps: number;
  readonly visionSteps: number;
}

/** One reading of GetExperiment after an outcome. */
export interface AbLook {
  readonly outcomes: number;
  readonly control: { episodes: number; successes: number };
  readonly candidate: { episodes: number; successes: number };
  readonly always_valid_p_value: number;
  readonly z_test_p_value: number;
  readonly decision: string;
}

export interface AbReport {
  readonly control_version: number;
  readonly candidate_version: number;
  readonly sticky_key: StickyKeyName;
  readonly salt: string;
  readonly alpha: number;
  readonly decision: string;
  /** Outcomes the server had counted when the decision first appeared; null if none within maxEpisodes. */
  readonly outcomes_at_decision: number | null;
  readonly episodes_started: number;
  /** The experiment as GetExperiment reported it at the decision and after the last episode. */
  readonly at_decision: Record<string, VariantSummary> | null;
  readonly final: Record<string, VariantSummary>;
  /** The robots' own tally by the version each ReportOutcome named, to check the server's counts. */
  readonly robots_tally: Record<string, { episodes: number; successes: number }>;
  readonly looks: AbLook[];
}

interface VariantSummary {
  readonly episodes: number;
  readonly successes: number;
  readonly success_rate: number;
  readonly ci95: readonly [number, number];
  readonly always_valid_p_value: number;
  readonly z_test_p_value: number;
  readonly decision: string;
  readonly requests: number;
  readonly latency_p50_ms: number;
  readonly mean_world_model_surprise: number;
}

function variant(exp: ExperimentResult, version: number): VariantStatsResult {
  const v = exp.variants.find((x) => x.version === version);
  if (!v) throw new Error(`GetExperiment has no row for version ${version}`);
  return v;
}

function summarize(exp: ExperimentResult): Record<string, VariantSummary> {
  return Object.fromEntries(
    exp.variants.map((v) => {
      return [
        String(v.version),
        {
          episodes: v.episodes,
          successes: v.successes,
          success_rate: round(v.successRate, 4),
          ci95: [round(v.ci95Low, 4), round(v.ci95High, 4)],
          always_valid_p_value: round(v.alwaysValidPValue, 5),
          z_test_p_value: round(v.pValueVsControl, 5),
          decision: v.decision,
          requests: v.requests,
          latency_p50_ms: round(v.latencyP50Ms, 2),
          mean_world_model_surprise: round(v.meanWorldModelSurprise, 4),
        },
      ];
    }),
  );
}

export type EpisodeRunner = (robotIndex: number, spec: EpisodeSpec) => Promise<EpisodeResult>;

/**
 * Runs the A/B test. `robots` robots (robot i has embodiment embodiments[i % n]) take held-out seeds from
 * seedStart in turn; `onEpisode` sees each result (progress).
 */
export async function runAb(
  client: DustClient,
  s: AbSettings,
  robots: number,
  embodiments: readonly EmbodimentName[],
  seedStart: number,
  runEpisode: EpisodeRunner,
  onEpisode: (r: EpisodeResult, look: AbLook) => void,
): Promise<AbReport> {
  await client.setTrafficSplit({
    model: s.model,
    weights: [
      { version: s.control, weight: 0.5 },
      { version: s.candidate, weight: 0.5 },
    ],
    controlVersion: s.control,
    stickyKey: s.stickyKey,
    salt: s.salt,
  });
  const condition: Condition = {
    id: `A/B v${s.control} vs v${s.candidate}`,
    version: 0,
    actionSteps: s.actionSteps,
    visionSteps: s.visionSteps,
    budgetMs: 0,
  };
  let started = 0;
  let decidedAt: number | null = null;
  let atDecision: Record<string, VariantSummary> | null = null;
  let decision = 'keep collecting';
  const looks: AbLook[] = [];
  const tally: Record<string, { episodes: number; successes: number }> = {};
  // Seeds are handed out in order across all robots; each robot takes the next seed of its embodiment.
  const nextSeed = new Map<EmbodimentName, number>(embodiments.map((e, i) => [e, seedStart + i]));
  const next = (embodiment: EmbodimentName): EpisodeSpec | undefined => {
    if (decidedAt !== null || started >= s.maxEpisodes) return undefined;
    started++;
    const seed = nextSeed.get(embodiment)!;
    nextSeed.set(embodiment, seed + embodiments.length);
    return { condition, seed, embodiment };
  };

  await Promise.all(
    Array.from({ length: robots }, async (_, i) => {
      const embodiment = embodiments[i % embodiments.length];
      for (let spec = next(embodiment); spec; spec = next(embodiment)) {
        const r = await runEpisode(i, spec);
        const key = 'error' in r.credited ? `error:${r.credited.error}` : String(r.credited.version);
        const t = (tally[key] ??= { episodes: 0, successes: 0 });
        t.episodes++;
        if (r.success) t.successes++;
        const exp = await client.getExperiment(s.model);
        const c = variant(exp, s.control);
        const k = variant(exp, s.candidate);
        const look: AbLook = {
          outcomes: c.episodes + k.episodes,
          control: { episodes: c.episodes, successes: c.successes },
          candidate: { episodes: k.episodes, successes: k.successes },
          always_valid_p_value: round(k.alwaysValidPValue, 5),
          z_test_p_value: round(k.pValueVsControl, 5),
          decision: k.decision,
        };
        looks.push(look);
        if (decidedAt === null && (k.decision === 'candidate better' || k.decision === 'candidate worse')) {
          decidedAt = look.outcomes;
          decision = k.decision;
          atDecision = summarize(exp);
        }
        onEpisode(r, look);
      }
    }),
  );
  const final = await client.getExperiment(s.model);
  return {
    control_version: s.control,
    candidate_version: s.candidate,
    sticky_key: s.stickyKey,
    salt: s.salt,
    alpha: final.alpha,
    decision,
    outcomes_at_decision: decidedAt,
    episodes_started: started,
    at_decision: atDecision,
    final: summarize(final),
    robots_tally: tally,
    looks,
  };
}
