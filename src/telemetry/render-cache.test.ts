import { describe, expect, it } from 'vitest';
import { RenderCache } from './render-cache.js';

function setup(maxAgeMs = 1000) {
  let t = 0;
  let renders = 0;
  const pending: Array<{ resolve: (v: string) => void; reject: (e: Error) => void }> = [];
  const cache = new RenderCache(
    () => {
      renders++;
      return new Promise<string>((resolve, reject) => pending.push({ resolve, reject }));
    },
    maxAgeMs,
    () => t,
  );
  return { cache, at: (ms: number) => void (t = ms), renders: () => renders, pending };
}

describe('RenderCache', () => {
  it('shares one running rendering among every request that arrives meanwhile', async () => {
    const { cache, renders, pending } = setup();
    const answers = Array.from({ length: 100 }, () => cache.get());
    expect(renders()).toBe(1);
    pending[0].resolve('v1');
    expect(await Promise.all(answers)).toEqual(Array(100).fill('v1'));
  });

  it('renders at most once per maxAgeMs, aged from when the rendering started', async () => {
    const { cache, at, renders, pending } = setup(1000);
    const first = cache.get();
    at(200);
    pending[0].resolve('v1');
    await first;
    at(999);
    expect(await cache.get()).toBe('v1');
    expect(renders()).toBe(1);
    at(1000);
    const second = cache.get();
    expect(renders()).toBe(2);
    pending[1].resolve('v2');
    expect(await second).toBe('v2');
  });

  it('keeps no failed rendering: the next request renders again', async () => {
    const { cache, renders, pending } = setup();
    const failed = cache.get();
    pending[0].reject(new Error('collection failed'));
    await expect(failed).rejects.toThrow('collection failed');
    const retry = cache.get();
    expect(renders()).toBe(2);
    pending[1].resolve('v1');
    expect(await retry).toBe('v1');
  });
});
