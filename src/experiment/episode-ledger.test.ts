import { describe, expect, it } from 'vitest';
import { EpisodeLedger } from './episode-ledger.js';

describe('EpisodeLedger', () => {
  it('an episode belongs to the version that served its first request', () => {
    const l = new EpisodeLedger();
    expect(l.serve('r1', 'e1', { model: 'm', version: 1, experimentId: 3 }).started).toBe(true);
    const again = l.serve('r1', 'e1', { model: 'm', version: 2, experimentId: 3 });
    expect(again.started).toBe(false);
    expect(again.entry.version).toBe(1);
    expect(l.get('r1', 'e1')?.version).toBe(1);
    expect(l.get('r2', 'e1')).toBeUndefined();
  });
  it('forgets the least recently active episode beyond its capacity', () => {
    const l = new EpisodeLedger(2);
    l.serve('r', 'a', { model: 'm', version: 1, experimentId: 1 });
    l.serve('r', 'b', { model: 'm', version: 1, experimentId: 1 });
    l.serve('r', 'a', { model: 'm', version: 1, experimentId: 1 }); // a is recent again
    l.serve('r', 'c', { model: 'm', version: 1, experimentId: 1 });
    expect(l.get('r', 'b')).toBeUndefined();
    expect(l.get('r', 'a')).toBeDefined();
    expect(l.size).toBe(2);
  });
});
