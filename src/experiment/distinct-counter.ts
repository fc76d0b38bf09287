/**
 * Distinct robots per version (VariantStats.robots), exact up to a cap: a set of robot ids that stops growing
 * at `cap` entries and then reports `cap` with `capped` set (VariantStats.robots_capped). Exact rather than a
 * HyperLogLog because fleets are thousands of robots, where an exact set costs little (about 100 bytes per
 * robot, 10 MB at the default cap) and its ids can be persisted and restored as they are; the cap bounds
 * memory if a client sends a fresh robot_id on every request.
 */

/** Robot ids remembered per (experiment, version). @default 100000 */
export const DEFAULT_MAX_TRACKED_ROBOTS = 100_000;

export class DistinctCounter {
  private readonly seen = new Set<string>();
  private full = false;

  constructor(
    private readonly cap = DEFAULT_MAX_TRACKED_ROBOTS,
    capped = false,
  ) {
    this.full = capped;
  }

  /** True when `id` was not counted before (and now is). */
  add(id: string): boolean {
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.cap) {
      this.full = true;
      return false;
    }
    this.seen.add(id);
    return true;
  }

  get count(): number {
    return this.seen.size;
  }

  /** More distinct ids were offered than the cap: `count` is a lower bound. */
  get capped(): boolean {
    return this.full;
  }
}
