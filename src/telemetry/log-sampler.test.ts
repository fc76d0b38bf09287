import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LogSampler, sampledLog } from './log-sampler.js';

function sampler(maxKeys = 3, windowMs = 1000) {
  let t = 0;
  const s = new LogSampler({ windowMs, maxKeys }, () => t);
  return { s, at: (ms: number) => void (t = ms) };
}

describe('LogSampler', () => {
  it('writes the first occurrence of each key per window and counts the repeats', () => {
    const { s, at } = sampler();
    expect(s.admit('a').write).toBe(true);
    expect(s.admit('a').write).toBe(false);
    expect(s.admit('b').write).toBe(true);
    expect(s.admit('a').write).toBe(false);
    at(999);
    expect(s.closeIfDue()).toBeUndefined();
    at(1000);
    expect(s.closeIfDue()).toEqual({ suppressed: 2, keys: 2, untracked: 0, top: [{ key: 'a', repeats: 2 }], windowMs: 1000 });
    // A new window: each key is written once again.
    expect(s.admit('a').write).toBe(true);
  });

  it('reports nothing for a window that suppressed nothing', () => {
    const { s, at } = sampler();
    s.admit('a');
    s.admit('b');
    at(5000);
    expect(s.closeIfDue()).toBeUndefined();
    expect(s.windowEnd).toBeUndefined();
  });

  it('hands over the summary of an ended window with the next occurrence', () => {
    const { s, at } = sampler();
    s.admit('a');
    s.admit('a');
    at(1500);
    const next = s.admit('a');
    expect(next.write).toBe(true);
    expect(next.closed?.suppressed).toBe(1);
    expect(s.windowEnd).toBe(2500);
  });

  it('tracks at most maxKeys keys: a caller rotating keys gets no more lines and no more memory', () => {
    const { s, at } = sampler(3);
    let written = 0;
    for (let i = 0; i < 10_000; i++) if (s.admit(`peer-${i}`).write) written++;
    expect(written).toBe(3);
    // A known key's repeats are still counted by key.
    s.admit('peer-1');
    at(1000);
    const summary = s.closeIfDue()!;
    expect(summary).toMatchObject({ suppressed: 9_998, keys: 3, untracked: 9_997, top: [{ key: 'peer-1', repeats: 1 }] });
  });

  it('names the keys with the most repeats, most first, five at most', () => {
    const { s, at } = sampler(10);
    for (let k = 0; k < 8; k++) for (let i = 0; i <= k; i++) s.admit(`k${k}`);
    at(1000);
    expect(s.closeIfDue()!.top.map((t) => t.key)).toEqual(['k7', 'k6', 'k5', 'k4', 'k3']);
  });
});

describe('sampledLog', () => {
  it('writes first lines at once and the summary when the window closes, without a further occurrence', async () => {
    const lines: Array<Record<string, unknown>> = [];
    let summaryWritten!: () => void;
    const summary = new Promise<void>((resolve) => (summaryWritten = resolve));
    const log = pino(
      { level: 'info' },
      {
        write: (l: string) => {
          lines.push(JSON.parse(l) as Record<string, unknown>);
          if (lines.length === 2) summaryWritten();
        },
      },
    );
    const sampled = sampledLog(log, 'warn', 'call refused', 'calls refused, repeats not logged', { windowMs: 20, maxKeys: 10 });
    for (let i = 0; i < 50; i++) sampled.write('10.0.0.1', { peer: '10.0.0.1:1234' });
    expect(lines).toHaveLength(1);
    await summary;
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ msg: 'call refused', peer: '10.0.0.1:1234', level: 40 });
    expect(lines[1]).toMatchObject({ msg: 'calls refused, repeats not logged', suppressed: 49, keys: 1, top: [{ key: '10.0.0.1', repeats: 49 }] });
  });
});
