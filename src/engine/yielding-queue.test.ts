import { describe, expect, it } from 'vitest';
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
    await new Promise((r) => setTimeout(r, 50));
    expect(log.filter((l) => l.startsWith('item'))).toEqual(['item 0', 'item 1', 'item 2', 'item 3']);
    expect(log.indexOf('due')).toBeLessThanOrEqual(2);
  });
});
