/**
 * Work that arrives in bursts on the event loop (a step's results) done one item per
 * event-loop turn: each item runs from setImmediate, and the next is scheduled only then, so the I/O that
 * became ready meanwhile (a health check, other requests) is polled between two items instead of after all.
 */
export class YieldingQueue<T> {
  private readonly items: T[] = [];
  private scheduled = false;

  constructor(private readonly run: (item: T) => void) {}

  push(item: T): void {
    this.items.push(item);
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const item = this.items.shift();
      if (this.items.length > 0) this.schedule();
      if (item !== undefined) this.run(item);
    });
  }
}
