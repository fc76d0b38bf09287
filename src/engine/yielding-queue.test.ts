import { describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { YieldingQueue } from './yielding-queue.js';

describe('YieldingQueue', () => {
  it('runs one item per event-loop turn, in order, so a callback that fell due meanwhile runs in between', async () => {
    const log: string[] = [];
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const q = new YieldingQueue<number>((n) => {
      busy(3);
      log.push(`item ${n}`);
    });
    // Due after 1 ms, i.e. during the first item: it must not wait for the whole burst.
    setTimeout(() => log.push('due'), 1);
    for (let i = 0; i < 4; i++) q.push(i);
    // Both the burst and the timer must have run before the order is judged.
    await eventually(() => log.length === 5, { what: 'four items and the timer', timeoutMs: 2_000 });
    expect(log.filter((l) => l.startsWith('item'))).toEqual(['item 0', 'item 1', 'item 2', 'item 3']);
    expect(log.indexOf('due')).toBeLessThanOrEqual(2);
  });
});
