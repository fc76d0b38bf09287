/**
 * Everything one experiment counts for one version (docs/api.md VariantStats): traffic, distinct robots,
 * episodes and their outcomes, latency quantiles, mean N_o, mean world-model surprise, shadow traffic, and
 * the state of the sequential test against the control.
 */
import { DistinctCounter } from './distinct-counter.js';
import { LatencySketch } from './latency-sketch.js';
import { RequestSums } from './request-sums.js';
import { INITIAL_ALWAYS_VALID, type AlwaysValidState, type Proportion } from './statistics.js';
import type { CounterRecord, HistoryRecord } from './sqlite-records.js';
import type { VariantTotals } from './store.js';

export class VariantCounters extends RequestSums {
  episodes = 0;
  successes = 0;
  alwaysValid: AlwaysValidState = INITIAL_ALWAYS_VALID;

  constructor(
    readonly robots: DistinctCounter,
    latency?: LatencySketch,
    shadowLatency?: LatencySketch,
  ) {
    super(latency, shadowLatency);
  }

  static restore(record: CounterRecord, robotIds: readonly string[], maxRobots: number): VariantCounters {
    const robots = new DistinctCounter(maxRobots, record.robotsCapped);
    for (const id of robotIds) robots.add(id);
    const c = new VariantCounters(robots, LatencySketch.fromBytes(record.latency), LatencySketch.fromBytes(record.shadowLatency));
    c.requests = record.requests;
    c.episodesServed = record.episodesServed;
    c.episodes = record.episodes;
    c.successes = record.successes;
    c.visionStepsSum = record.visionStepsSum;
    c.surpriseSum = record.surpriseSum;
    c.surpriseCount = record.surpriseCount;
    c.shadowRequests = record.shadowRequests;
    c.shadowShed = record.shadowShed;
    c.shadowDivergenceSum = record.shadowDivergenceSum;
    c.alwaysValid = { pValue: record.alwaysValidPValue, decision: record.decision };
    return c;
  }

  toRecord(experimentId: number, version: number): CounterRecord {
    return {
      experimentId,
      version,
      requests: this.requests,
      robots: this.robots.count,
      robotsCapped: this.robots.capped,
      episodesServed: this.episodesServed,
      episodes: this.episodes,
      successes: this.successes,
      visionStepsSum: this.visionStepsSum,
      surpriseSum: this.surpriseSum,
      surpriseCount: this.surpriseCount,
      latency: this.latency.toBytes(),
      shadowRequests: this.shadowRequests,
      shadowShed: this.shadowShed,
      shadowDivergenceSum: this.shadowDivergenceSum,
      shadowLatency: this.shadowLatency.toBytes(),
      alwaysValidPValue: this.alwaysValid.pValue,
      decision: this.alwaysValid.decision,
    };
  }

  toHistory(experimentId: number, version: number, at: number, windowStart: number): HistoryRecord {
    return {
      experimentId,
      version,
      at,
      windowStart,
      requests: this.requests,
      episodes: this.episodes,
      successes: this.successes,
      visionStepsSum: this.visionStepsSum,
      surpriseSum: this.surpriseSum,
      surpriseCount: this.surpriseCount,
      latencyP50Ms: this.latency.quantile(0.5),
      latencyP99Ms: this.latency.quantile(0.99),
      shadowRequests: this.shadowRequests,
      shadowDivergenceSum: this.shadowDivergenceSum,
      alwaysValidPValue: this.alwaysValid.pValue,
      decision: this.alwaysValid.decision,
    };
  }

  totals(version: number): VariantTotals {
    const { requests, episodesServed, episodes, successes, visionStepsSum, surpriseSum, surpriseCount, shadowRequests, shadowShed, shadowDivergenceSum } = this;
    return {
      version,
      requests,
      robots: this.robots.count,
      robotsCapped: this.robots.capped,
      episodesServed,
      episodes,
      successes,
      visionStepsSum,
      surpriseSum,
      surpriseCount,
      latency: this.latency,
      shadowRequests,
      shadowShed,
      shadowDivergenceSum,
      shadowLatency: this.shadowLatency,
      test: this.alwaysValid,
    };
  }

  get outcomes(): Proportion {
    return { successes: this.successes, trials: this.episodes };
  }
}
