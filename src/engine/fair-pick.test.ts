import { describe, expect, it } from 'vitest';
import { fairPick } from './fair-pick.js';

describe('fairPick', () => {
  const row = (robotId: string, seq: number) => ({ robotId, seq });
  it('takes everything when it fits', () => {
    const rows = [row('a', 0), row('a', 1)];
    expect(fairPick(rows, 4)).toEqual(rows);
  });
  it('round-robins across robots, oldest first, when it does not', () => {
    const rows = [row('flood', 0), row('flood', 1), row('flood', 2), row('flood', 3), row('b', 4), row('c', 5)];
    const picked = fairPick(rows, 4);
    expect(picked.filter((r) => r.robotId === 'flood')).toEqual([row('flood', 0), row('flood', 1)]);
    expect(picked.map((r) => r.robotId).sort()).toEqual(['b', 'c', 'flood', 'flood']);
  });
});
