/** RealtimeChunker tick by tick, against a session whose answers the test releases. */
import { describe, expect, it } from 'vitest';
import { DustClientError } from './errors.js';
import type { PredictRequestInit } from './request.js';
import type { PredictResult } from './response.js';
import { RealtimeChunker } from './realtime-chunker.js';

const H = 8;
const D = 2;

/** A chunk whose row i is [tag, i]: which chunk and which row an action came from. */
function result(tag: number, delay: number | undefined): PredictResult {
  const data = new Float32Array(H * D);
  for (let i = 0; i < H; i++) data.set([tag, i], i * D);
  return {
    requestId: `r${tag}`,
    actions: { shape: [H, D], data },
    chunking: delay === undefined ? undefined : { method: 'inpaint', delaySteps: delay, delayEstimated: true, prefixLength: H },
  } as unknown as PredictResult;
}

function fakeSession() {
  const sent: PredictRequestInit[] = [];
  const settle: Array<{ resolve(r: PredictResult): void; reject(e: unknown): void }> = [];
  return {
    sent,
    settle,
    send(init: PredictRequestInit): Promise<PredictResult> {
      sent.push(init);
      return new Promise((resolve, reject) => settle.push({ resolve, reject }));
    },
  };
}

const observe = (): PredictRequestInit => ({ robotId: 'r', embodiment: 'e' });
/** Lets settled answers reach the chunker, as the event loop does between a robot's ticks. */
const turn = () => new Promise((resolve) => setImmediate(resolve));
const row = (a: Float32Array | undefined) => (a ? Array.from(a) : a);

describe('RealtimeChunker', () => {
  it('requests every execute rows with the rest of the chunk committed, and switches at the d the server assumed or when the answer comes', async () => {
    const s = fakeSession();
    const rtc = new RealtimeChunker(s, { execute: 3, controlPeriodMs: 20 });
    expect(rtc.action(observe)).toBeUndefined();
    expect(s.sent[0].prefix).toBeUndefined();
    expect(rtc.action(observe)).toBeUndefined();
    s.settle[0].resolve(result(0, undefined));
    await turn();
    // Tick 2: the first chunk takes over at the row for this tick.
    expect(row(rtc.action(observe))).toEqual([0, 2]);
    // Tick 3: row 3 >= execute: the next request commits rows 3.. and leaves d to the server.
    expect(row(rtc.action(observe))).toEqual([0, 3]);
    expect(s.sent[1].prefix).toMatchObject({ delaySteps: undefined, controlPeriodMs: 20 });
    expect(s.sent[1].prefix!.actions.map((a) => Array.from(a))).toEqual([3, 4, 5, 6, 7].map((i) => [0, i]));
    s.settle[1].resolve(result(1, 2));
    await turn();
    // In at once, but d = 2: one more tick of the old chunk, then row 2 of the new one.
    expect(row(rtc.action(observe))).toEqual([0, 4]);
    expect(row(rtc.action(observe))).toEqual([1, 2]);
    expect([rtc.switches, rtc.lateSwitches, rtc.lastResult?.requestId]).toEqual([1, 0, 'r1']);
    expect(row(rtc.action(observe))).toEqual([1, 3]);
    expect(row(rtc.action(observe))).toEqual([1, 4]);
    expect(row(rtc.action(observe))).toEqual([1, 5]);
    // Later than the d it assumed (1): the switch comes with the answer, at the row for that tick.
    s.settle[2].resolve(result(2, 1));
    await turn();
    expect(row(rtc.action(observe))).toEqual([2, 3]);
    expect([rtc.switches, rtc.lateSwitches]).toEqual([2, 1]);
  });

  it('sends a declared delay capped at the rows left, holds when a chunk runs out, and throws a failed request once', async () => {
    const s = fakeSession();
    const rtc = new RealtimeChunker(s, { execute: 7, delaySteps: 3, method: 'inpaint' });
    rtc.action(observe);
    s.settle[0].resolve(result(0, undefined));
    await turn();
    for (let i = 1; i < 7; i++) expect(row(rtc.action(observe))).toEqual([0, i]);
    rtc.action(observe);
    expect(s.sent[1].prefix).toMatchObject({ delaySteps: 1, method: 'inpaint' });
    expect(rtc.action(observe)).toBeUndefined();
    expect(rtc.waiting).toBe(true);
    s.settle[1].reject(new DustClientError(14, 'gone'));
    await turn();
    expect(() => rtc.action(observe)).toThrow(/gone/);
    expect(rtc.waiting).toBe(false);
    rtc.action(observe);
    expect(s.sent).toHaveLength(3);
  });

  it('with a delay window, declares the most ticks recent answers took to arrive (not the switch, which waits for d)', async () => {
    const s = fakeSession();
    const rtc = new RealtimeChunker(s, { execute: 2, delayWindow: 2 });
    for (let i = 0; i < 3; i++) rtc.action(observe);
    s.settle[0].resolve(result(0, undefined));
    await turn();
    expect(row(rtc.action(observe))).toEqual([0, 3]);
    expect(s.sent[1].prefix).toMatchObject({ delaySteps: 3, controlPeriodMs: undefined });
    s.settle[1].resolve(result(1, 3));
    await turn();
    expect(row(rtc.action(observe))).toEqual([0, 4]);
    expect(row(rtc.action(observe))).toEqual([0, 5]);
    expect(row(rtc.action(observe))).toEqual([1, 3]);
    expect(s.sent[2].prefix!.delaySteps).toBe(3);
    s.settle[2].resolve(result(2, 3));
    await turn();
    for (let i = 0; i < 3; i++) rtc.action(observe);
    // The window holds the last two arrivals, 1 and 1.
    expect(s.sent[3].prefix!.delaySteps).toBe(1);
  });

  it('refuses what it cannot honour', () => {
    const s = fakeSession();
    expect(() => new RealtimeChunker(s, { execute: 0, delaySteps: 1 })).toThrow(/execute must be an integer >= 1/);
    expect(() => new RealtimeChunker(s, { execute: 2 })).toThrow(/give delaySteps, delayWindow > 0, or controlPeriodMs > 0/);
    expect(() => new RealtimeChunker(s, { execute: 2, delaySteps: 1, delayWindow: 4 })).toThrow(/not both/);
    expect(() => new RealtimeChunker(s, { execute: 2, delayWindow: -1 })).toThrow(/delayWindow must be an integer >= 0/);
    expect(() => new RealtimeChunker(s, { execute: 2, delaySteps: 1.5 })).toThrow(/delaySteps must be an integer >= 0/);
    const rtc = new RealtimeChunker(s, { execute: 2, delaySteps: 1 });
    expect(() => rtc.action(() => ({ ...observe(), prefix: { actions: [[0]], delaySteps: 0 } }))).toThrow(/without a prefix/);
  });
});
