/**
 * Rows of the denoiser stage live in fixed slots of the inference worker's arena, so a request's
 * conditioning features (vl_embs), state, A and O stay in place between steps (no per-step copy).
 * Active slots are kept a compact prefix [0, size): when a row leaves, the last row moves into the hole,
 * one row copy per departure instead of a gather on every step. Pure bookkeeping; the worker applies the
 * moves it is handed.
 */
export interface SlotMove {
  readonly from: number;
  readonly to: number;
}

export class SlotTable<T> {
  private readonly rows: T[] = [];
  private pendingMoves: SlotMove[] = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.rows.length;
  }

  get free(): number {
    return this.capacity - this.rows.length;
  }

  /** Places a row at the end of the prefix and returns its slot. */
  add(row: T): number {
    if (this.rows.length >= this.capacity) throw new RangeError('slot table is full');
    this.rows.push(row);
    return this.rows.length - 1;
  }

  slotOf(row: T): number {
    return this.rows.indexOf(row);
  }

  at(slot: number): T {
    return this.rows[slot];
  }

  /** Rows in slot order. */
  values(): readonly T[] {
    return this.rows;
  }

  /** Frees the row's slot; the last row moves into it (recorded as a move for the worker). */
  remove(row: T): void {
    const slot = this.rows.indexOf(row);
    if (slot < 0) return;
    const last = this.rows.length - 1;
    if (slot !== last) {
      this.rows[slot] = this.rows[last];
      this.pendingMoves.push({ from: last, to: slot });
    }
    this.rows.pop();
  }

  /** Moves recorded since the last call, in the order the worker must apply them. */
  takeMoves(): SlotMove[] {
    const moves = this.pendingMoves;
    this.pendingMoves = [];
    return moves;
  }
}
