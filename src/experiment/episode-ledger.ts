/**
 * Which version served each episode, so that ReportOutcome credits the version that earned the outcome
 * (docs/api.md ReportOutcome). An episode belongs to the version that served its first request; its first
 * reported outcome is the one that counts (robots retry calls). Bounded: the least recently active episodes
 * are forgotten first.
 */

/** Episodes remembered in memory (and restored at start). @default 100000 */
export const DEFAULT_LEDGER_CAPACITY = 100_000;

export interface LedgerEntry {
  readonly model: string;
  readonly version: number;
  /** The experiment whose split routed the episode; 0 when a pinned request served it. */
  readonly experimentId: number;
  outcome: boolean | undefined;
}

export class EpisodeLedger {
  private readonly entries = new Map<string, LedgerEntry>();

  constructor(private readonly capacity = DEFAULT_LEDGER_CAPACITY) {}

  private static key(robotId: string, episodeId: string): string {
    return `${robotId}\u0000${episodeId}`;
  }

  get(robotId: string, episodeId: string): LedgerEntry | undefined {
    return this.entries.get(EpisodeLedger.key(robotId, episodeId));
  }

  /**
   * A request of the episode was served: the first one decides who owns the episode; later ones only keep it
   * recent. Returns the owner and whether this request started the episode.
   */
  serve(robotId: string, episodeId: string, entry: Omit<LedgerEntry, 'outcome'>): { entry: LedgerEntry; started: boolean } {
    const key = EpisodeLedger.key(robotId, episodeId);
    const existing = this.entries.get(key);
    if (existing) {
      this.entries.delete(key);
      this.entries.set(key, existing);
      return { entry: existing, started: false };
    }
    const created: LedgerEntry = { ...entry, outcome: undefined };
    this.entries.set(key, created);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return { entry: created, started: true };
  }

  /** Restores an entry read back from the store (oldest first, so the newest end up most recent). */
  restore(robotId: string, episodeId: string, entry: LedgerEntry): void {
    this.entries.set(EpisodeLedger.key(robotId, episodeId), { ...entry });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
