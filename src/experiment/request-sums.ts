/**
 * What served and mirrored requests add to one version's counters: the same arithmetic whether a store keeps a
 * version's totals (VariantCounters, the SQLite store) or one transaction's increments (the PostgreSQL store).
 */
import { LatencySketch } from './latency-sketch.js';
import type { EpisodeOwner, ServedEvent, ShadowEvent } from './store.js';

export class RequestSums {
  requests = 0;
  episodesServed = 0;
  visionStepsSum = 0;
  surpriseSum = 0;
  surpriseCount = 0;
  shadowRequests = 0;
  shadowShed = 0;
  shadowDivergenceSum = 0;

  constructor(
    readonly latency = new LatencySketch(),
    readonly shadowLatency = new LatencySketch(),
  ) {}

  /** A request that counts (see countsAsPinned for pinned ones). */
  addServed(e: ServedEvent): void {
    this.requests++;
    this.latency.record(e.latencyMs);
    this.visionStepsSum += e.visionSteps;
    if (e.worldModelSurprise !== undefined && Number.isFinite(e.worldModelSurprise)) {
      this.surpriseSum += e.worldModelSurprise;
      this.surpriseCount++;
    }
  }

  /** A mirrored request that finished, or was shed. */
  addShadow(e: ShadowEvent): void {
    if (e.latencyMs === undefined) {
      this.shadowShed++;
      return;
    }
    this.shadowRequests++;
    this.shadowLatency.record(e.latencyMs);
    if (Number.isFinite(e.divergence)) this.shadowDivergenceSum += e.divergence;
  }
}

/**
 * Whether a request counts as far as pinning goes: an unpinned one does; a pinned one only when it continues an
 * episode that the split gave the pinned version in the same experiment (a stream resumed on another replica).
 */
export function countsAsPinned(e: ServedEvent, owner: EpisodeOwner | undefined): boolean {
  if (!e.pinned) return true;
  return owner !== undefined && owner.experimentId === e.experimentId && owner.model === e.model && owner.version === e.version;
}
