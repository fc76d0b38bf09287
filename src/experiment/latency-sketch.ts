/**
 * Streaming latency quantiles per version (VariantStats latency_p50_ms / latency_p99_ms) in bounded memory:
 * DDSketch (Masson, Rim & Lee, VLDB 2019) from Datadog's library, with relative-error guarantees (a reported
 * quantile is within 1% of a value at that rank) and a bin limit that collapses the lowest bins first, so the
 * tail the p99 reads stays exact. It serializes to bytes for the experiment store.
 */
import { DDSketch, LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';

/** Relative accuracy of reported quantiles. @default 0.01 */
export const DEFAULT_SKETCH_ACCURACY = 0.01;
/** Bins kept per sketch (about 16 KiB at most); 1% bins span 2048·0.02 ≈ 40 natural-log units of range. @default 2048 */
export const DEFAULT_SKETCH_BINS = 2048;

export class LatencySketch {
  private sketch = LatencySketch.empty();

  private static empty(): LogCollapsingLowestDenseDDSketch {
    return new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: DEFAULT_SKETCH_ACCURACY, binLimit: DEFAULT_SKETCH_BINS });
  }

  /** A sketch restored from `toBytes()`; empty bytes give an empty sketch. */
  static fromBytes(bytes: Uint8Array | undefined): LatencySketch {
    const out = new LatencySketch();
    if (bytes && bytes.length > 0) out.sketch.merge(DDSketch.fromProto(bytes));
    return out;
  }

  record(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.sketch.accept(ms);
  }

  get count(): number {
    return this.sketch.count;
  }

  /** The value at quantile q in [0, 1]; 0 while empty (proto doubles have no "unknown"). */
  quantile(q: number): number {
    return this.sketch.count > 0 ? this.sketch.getValueAtQuantile(q) : 0;
  }

  toBytes(): Uint8Array {
    return this.sketch.toProto();
  }
}
