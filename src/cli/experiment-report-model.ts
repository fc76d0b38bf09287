/**
 * What `dust-serve experiment report` shows of one experiment, computed from what the store kept (its totals
 * and its history of running totals, history-reader.ts): success rates over time with Wilson intervals, each
 * candidate's difference from the control with the always-valid confidence sequence of the server's own test
 * (statistics.ts alwaysValidInterval at each moment), the decision and the first history point that
 * carried it, and per window latency, N_o, world-model surprise and shadow divergence. Pure: plain data in,
 * plain data out; experiment-report-html.ts draws it.
 */
import {
  alwaysValidInterval,
  wilsonInterval,
  type Decision,
  type HistoryPoint,
  type Interval,
  type StoredExperiment,
  type VersionSummary,
} from '../experiment/index.js';

/** One point of a time series; low/high bound it (an interval) where the series has one. */
export interface TimePoint {
  /** Epoch ms. */
  readonly t: number;
  readonly value: number;
  readonly low?: number;
  readonly high?: number;
}

export interface VersionSeries {
  readonly version: number;
  readonly points: readonly TimePoint[];
}

/** A candidate's test against the control. */
export interface CandidateTest {
  readonly version: number;
  /** As the server holds it now. */
  readonly decision: Decision;
  readonly pValue: number;
  /** Epoch ms of the first history point that carried the decision (the decision was taken before it, within one window). */
  readonly decidedAt: number | undefined;
  /** p_candidate - p_control at each moment either changed, bounded by the always-valid interval at that moment. */
  readonly points: readonly TimePoint[];
  /** The interval at the last point. */
  readonly current: Interval | undefined;
}

export type VersionRole = 'control' | 'candidate' | 'shadow' | 'version';

export interface VersionRow {
  readonly version: number;
  readonly role: VersionRole;
  /** Undefined without a split. */
  readonly weight: number | undefined;
  readonly requests: number;
  readonly robots: number;
  readonly episodesServed: number;
  readonly episodes: number;
  readonly successes: number;
  /** Undefined without outcomes. */
  readonly successRate: number | undefined;
  readonly wilson: Interval;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly meanVisionSteps: number | undefined;
  readonly meanSurprise: number | undefined;
  readonly shadowRequests: number;
  readonly shadowShed: number;
  readonly meanShadowDivergence: number | undefined;
  /** 'control', 'no control' (no split), 'not tested' (outside the split), or the candidate's decision. */
  readonly decision: string;
  /** The always-valid p-value of a candidate. */
  readonly pValue: number | undefined;
}

export interface ReportPage {
  readonly model: string;
  readonly experimentId: number;
  readonly salt: string;
  readonly stickyKey: string;
  readonly controlVersion: number;
  readonly shadowVersion: number;
  readonly shadowFraction: number;
  readonly startedAt: number;
  readonly generatedAt: number;
  readonly alpha: number;
  readonly tau: number;
  /** [first, last] moment of the history (startedAt when it is empty). */
  readonly timeRange: readonly [number, number];
  readonly rows: readonly VersionRow[];
  readonly tests: readonly CandidateTest[];
  readonly successRate: readonly VersionSeries[];
  /** Of every request so far (the store's sketch is cumulative). */
  readonly latencyP50: readonly VersionSeries[];
  readonly latencyP99: readonly VersionSeries[];
  /** Means over the requests of each window. */
  readonly visionSteps: readonly VersionSeries[];
  readonly surprise: readonly VersionSeries[];
  readonly shadowDivergence: readonly VersionSeries[];
}

export interface ReportSettings {
  /** The server's experimentAlpha and experimentMixtureSd: the test's level and mixing sd. */
  readonly alpha: number;
  readonly tau: number;
  /** Epoch ms. */
  readonly generatedAt: number;
}

const mean = (sum: number, count: number) => (count > 0 ? sum / count : undefined);

/** Each version's history points, oldest first. */
function byVersion(history: readonly HistoryPoint[]): Map<number, HistoryPoint[]> {
  const out = new Map<number, HistoryPoint[]>();
  for (const p of [...history].sort((a, b) => a.at - b.at)) out.set(p.version, [...(out.get(p.version) ?? []), p]);
  return out;
}

/** The mean of `sum / count` over each window: the growth of the running totals since the version's previous point. */
function perWindow(points: readonly HistoryPoint[], sum: (p: HistoryPoint) => number, count: (p: HistoryPoint) => number): TimePoint[] {
  const out: TimePoint[] = [];
  let previous: HistoryPoint | undefined;
  for (const p of points) {
    const n = count(p) - (previous ? count(previous) : 0);
    if (n > 0) out.push({ t: p.at, value: (sum(p) - (previous ? sum(previous) : 0)) / n });
    previous = p;
  }
  return out;
}

function seriesOf(versions: Map<number, HistoryPoint[]>, points: (history: readonly HistoryPoint[]) => TimePoint[]): VersionSeries[] {
  return [...versions].map(([version, history]) => ({ version, points: points(history) })).filter((s) => s.points.length > 0);
}

/**
 * A candidate's difference from the control over time: at every moment either version's totals changed, the
 * always-valid interval of the server's test at those totals. Together they are the confidence sequence (all of
 * them cover the true difference at once with probability 1 - alpha). They are drawn as they are rather than
 * intersected over time: the test's normal approximation is rough at the first few outcomes, and a running
 * intersection would carry an early interval's error to the end (it could even exclude the current estimate).
 */
export function candidateTest(
  history: readonly HistoryPoint[],
  control: number,
  summary: VersionSummary,
  { alpha, tau }: Pick<ReportSettings, 'alpha' | 'tau'>,
): CandidateTest {
  const latest = new Map<number, HistoryPoint>();
  const points: TimePoint[] = [];
  let current: Interval | undefined;
  let decidedAt: number | undefined;
  const sorted = [...history].sort((a, b) => a.at - b.at);
  for (let i = 0; i < sorted.length;) {
    // One flush writes every version it changed with the same `at`: take them together.
    const at = sorted[i].at;
    let changed = false;
    for (; i < sorted.length && sorted[i].at === at; i++) {
      const p = sorted[i];
      latest.set(p.version, p);
      if (p.version === control || p.version === summary.version) changed = true;
      if (p.version === summary.version && decidedAt === undefined && p.decision !== 'keep collecting') decidedAt = p.at;
    }
    const c = latest.get(control);
    const k = latest.get(summary.version);
    if (!changed || !c || !k) continue;
    const interval = alwaysValidInterval({ successes: c.successes, trials: c.episodes }, { successes: k.successes, trials: k.episodes }, { alpha, tau });
    if (!interval) continue;
    current = { low: interval.low, high: interval.high };
    points.push({ t: at, value: interval.difference, ...current });
  }
  return { version: summary.version, decision: summary.decision, pValue: summary.alwaysValidPValue, decidedAt, points, current };
}

function roleOf(version: number, stored: StoredExperiment): VersionRole {
  const { controlVersion, shadowVersion, weights } = stored.experiment;
  if (version === controlVersion) return 'control';
  if (controlVersion !== 0 && weights.some((w) => w.version === version)) return 'candidate';
  if (version === shadowVersion) return 'shadow';
  return 'version';
}

function rowOf(v: VersionSummary, stored: StoredExperiment): VersionRow {
  const role = roleOf(v.version, stored);
  const hasControl = stored.experiment.controlVersion !== 0;
  return {
    version: v.version,
    role,
    // No split: the newest READY version takes the traffic, which the store does not record.
    weight: stored.experiment.weights.length === 0 ? undefined : (stored.experiment.weights.find((w) => w.version === v.version)?.weight ?? 0),
    requests: v.requests,
    robots: v.robots,
    episodesServed: v.episodesServed,
    episodes: v.episodes,
    successes: v.successes,
    successRate: mean(v.successes, v.episodes),
    wilson: wilsonInterval({ successes: v.successes, trials: v.episodes }),
    latencyP50Ms: v.latencyP50Ms,
    latencyP99Ms: v.latencyP99Ms,
    meanVisionSteps: mean(v.visionStepsSum, v.requests),
    meanSurprise: mean(v.surpriseSum, v.surpriseCount),
    shadowRequests: v.shadowRequests,
    shadowShed: v.shadowShed,
    meanShadowDivergence: mean(v.shadowDivergenceSum, v.shadowRequests),
    decision: !hasControl ? 'no control' : role === 'control' ? 'control' : role === 'candidate' ? v.decision : 'not tested',
    pValue: hasControl && role === 'candidate' ? v.alwaysValidPValue : undefined,
  };
}

/** The page of one experiment. */
export function reportPage(stored: StoredExperiment, settings: ReportSettings): ReportPage {
  const { experiment: e, history } = stored;
  const versions = byVersion(history);
  const summaries = [...stored.versions].sort((a, b) => a.version - b.version);
  const times = history.map((p) => p.at);
  const control = e.controlVersion;
  const hasControl = control !== 0 && summaries.some((v) => v.version === control);
  return {
    model: e.model,
    experimentId: e.id,
    salt: e.salt,
    stickyKey: e.stickyKey,
    controlVersion: control,
    shadowVersion: e.shadowVersion,
    shadowFraction: e.shadowFraction,
    startedAt: e.startedAt,
    generatedAt: settings.generatedAt,
    alpha: settings.alpha,
    tau: settings.tau,
    timeRange: times.length > 0 ? [Math.min(e.startedAt, ...times), Math.max(...times)] : [e.startedAt, e.startedAt],
    rows: summaries.map((v) => rowOf(v, stored)),
    tests: hasControl ? summaries.filter((v) => roleOf(v.version, stored) === 'candidate').map((v) => candidateTest(history, control, v, settings)) : [],
    successRate: seriesOf(versions, (h) =>
      h
        .filter((p) => p.episodes > 0)
        .map((p) => ({ t: p.at, value: p.successes / p.episodes, ...wilsonInterval({ successes: p.successes, trials: p.episodes }) })),
    ),
    latencyP50: seriesOf(versions, (h) => h.filter((p) => p.requests > 0).map((p) => ({ t: p.at, value: p.latencyP50Ms }))),
    latencyP99: seriesOf(versions, (h) => h.filter((p) => p.requests > 0).map((p) => ({ t: p.at, value: p.latencyP99Ms }))),
    visionSteps: seriesOf(versions, (h) =>
      perWindow(
        h,
        (p) => p.visionStepsSum,
        (p) => p.requests,
      ),
    ),
    surprise: seriesOf(versions, (h) =>
      perWindow(
        h,
        (p) => p.surpriseSum,
        (p) => p.surpriseCount,
      ),
    ),
    shadowDivergence: seriesOf(versions, (h) =>
      perWindow(
        h,
        (p) => p.shadowDivergenceSum,
        (p) => p.shadowRequests,
      ),
    ),
  };
}
