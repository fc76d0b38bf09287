import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { currentThreadId, lowerOtherThreads, threadsToLower } from './thread-priority.js';

describe('threadsToLower', () => {
  it('picks every thread but the kept one that is below the target', () => {
    const threads = new Map([
      [10, 0],
      [11, 0],
      [12, 19],
      [13, 5],
    ]);
    expect(threadsToLower(threads, 10, 10)).toEqual([11, 13]);
    expect(threadsToLower(threads, 10, 0)).toEqual([]);
  });
});

// Real threads: a worker started here, lowered from this (main) thread, which itself keeps its priority.
describe.runIf(process.platform === 'linux')('lowerOtherThreads', () => {
  it('lowers the other threads of the process and leaves the calling one', async () => {
    const self = currentThreadId()!;
    const before = os.getPriority(self);
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').at(-1));
       parentPort.postMessage(tid);
       setInterval(() => {}, 1000);`,
      { eval: true },
    );
    try {
      const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
      const target = Math.max(os.getPriority(tid), before) + 1;
      expect(lowerOtherThreads(target)).toBeGreaterThanOrEqual(1);
      expect(os.getPriority(tid)).toBe(target);
      expect(os.getPriority(self)).toBe(before);
      // Already there: nothing more to lower.
      expect(threadsToLower(new Map([[tid, os.getPriority(tid)]]), self, target)).toEqual([]);
    } finally {
      await worker.terminate();
    }
  });
});
