import { describe, expect, it } from 'vitest';
import { SlotTable } from './slot-table.js';

describe('SlotTable', () => {
  it('keeps rows a compact prefix and records the moves that keep it so', () => {
    const t = new SlotTable<string>(4);
    ['a', 'b', 'c', 'd'].forEach((r) => t.add(r));
    expect(() => t.add('e')).toThrow(RangeError);
    t.remove('b');
    expect(t.values()).toEqual(['a', 'd', 'c']);
    expect(t.takeMoves()).toEqual([{ from: 3, to: 1 }]);
    t.remove('c'); // the last row: no move
    expect(t.takeMoves()).toEqual([]);
    expect(t.slotOf('d')).toBe(1);
    expect(t.free).toBe(2);
  });
});
