/**
 * The MuJoCo push task (bench/push): layouts and physics are deterministic under a seed, the cameras show what
 * the physics holds, success is read from the physics, and the scripted expert solves the task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COLORS,
  EMBODIMENT_NAMES,
  type EmbodimentName,
  EMBODIMENTS,
  expertAction,
  MAX_EPISODE_STEPS,
  PushEnv,
  recordEpisode,
  retarget,
  sampleLayout,
  TABLE_HALF,
} from '@dust-serve/sim-push';

const SIZE = 64;
/** Layout seeds of the expert check (disjoint from training seeds 0-299 and the fleet's 1000000+). */
const EXPERT_SEEDS = Array.from({ length: 60 }, (_, i) => 700_000 + i);

const envs = {} as Record<EmbodimentName, PushEnv>;
beforeAll(async () => {
  for (const e of EMBODIMENT_NAMES) envs[e] = await PushEnv.create(e);
});
afterAll(() => {
  for (const e of EMBODIMENT_NAMES) envs[e].dispose();
});

function pixel(frame: Uint8Array, x: number, y: number): number[] {
  // The top camera shows [-(TABLE_HALF + 0.02), TABLE_HALF + 0.02] on both axes, +y up.
  const half = TABLE_HALF + 0.02;
  const col = Math.floor(((x + half) / (2 * half)) * SIZE);
  const row = Math.floor(((half - y) / (2 * half)) * SIZE);
  const k = (row * SIZE + col) * 3;
  return [frame[k], frame[k + 1], frame[k + 2]];
}

describe('push task', () => {
  it('gives the same layout, trajectory and frames for the same seed, and different ones for another seed', async () => {
    for (const e of EMBODIMENT_NAMES) {
      const a = recordEpisode(envs[e], sampleLayout(11, e), true, SIZE);
      const other = await PushEnv.create(e);
      const b = recordEpisode(other, sampleLayout(11, e), true, SIZE);
      const c = recordEpisode(other, sampleLayout(12, e), true, SIZE);
      other.dispose();
      expect(b.layout).toEqual(a.layout);
      expect(b.length).toBe(a.length);
      expect(b.states.map((s) => Array.from(s))).toEqual(a.states.map((s) => Array.from(s)));
      expect(b.actions.map((s) => Array.from(s))).toEqual(a.actions.map((s) => Array.from(s)));
      expect(Buffer.concat(b.frames.top).equals(Buffer.concat(a.frames.top))).toBe(true);
      expect(Buffer.concat(b.frames.gripper).equals(Buffer.concat(a.frames.gripper))).toBe(true);
      expect(c.layout.balls).not.toEqual(a.layout.balls);
      expect(a.states[0].length).toBe(EMBODIMENTS[e].stateDim);
      expect(a.actions[0].length).toBe(EMBODIMENTS[e].actionDim);
    }
  });

  it('names any of the three balls in the same layout (retarget), changing only the instruction', () => {
    const layout = sampleLayout(4, 'paddle3');
    const others = [0, 1, 2].map((t) => retarget(layout, t));
    expect(new Set(others.map((l) => l.instruction)).size).toBe(3);
    others.forEach((l, t) => {
      expect(l.instruction).toContain(COLORS[t]);
      expect({ ...l, target: layout.target, instruction: layout.instruction }).toEqual(layout);
    });
  });

  it('renders each ball in its colour where the physics has it, and the zone in white', () => {
    const env = envs.pusher2;
    const layout = sampleLayout(3, 'pusher2');
    env.reset(layout);
    const top = env.observe(SIZE).frames.top;
    const [red, green, blue] = [0, 1, 2].map((i) => pixel(top, ...env.ballPosition(i)));
    expect(red[0]).toBeGreaterThan(150);
    expect(red[1]).toBeLessThan(80);
    expect(green[1]).toBeGreaterThan(120);
    expect(green[0]).toBeLessThan(80);
    expect(blue[2]).toBeGreaterThan(150);
    expect(blue[0]).toBeLessThan(80);
    expect(Math.min(...pixel(top, layout.zone[0], layout.zone[1]))).toBeGreaterThan(200);
  });

  it('reads success from the physics: the named ball inside the zone, not another', () => {
    const env = envs.pusher2;
    const layout = sampleLayout(5, 'pusher2');
    env.reset(layout);
    expect(env.succeeded()).toBe(false);
    const other = (layout.target + 1) % 3;
    env.reset({ ...layout, balls: layout.balls.map((b, i) => (i === other ? layout.zone : b)) });
    expect(env.succeeded()).toBe(false);
    env.reset({ ...layout, balls: layout.balls.map((b, i) => (i === layout.target ? layout.zone : b)) });
    expect(env.succeeded()).toBe(true);
    expect(env.distanceToZone()).toBe(0);
  });

  it('moves the pusher as its action says: velocity for pusher2, pose change for paddle3', () => {
    const p = envs.pusher2;
    p.reset(sampleLayout(7, 'pusher2'));
    const [x0] = p.pusherPose();
    for (let i = 0; i < 3; i++) p.step([0.1, 0]);
    expect(p.pusherPose()[0] - x0).toBeGreaterThan(0.02);
    const q = envs.paddle3;
    q.reset(sampleLayout(7, 'paddle3'));
    const [x, y] = q.pusherPose();
    for (let i = 0; i < 10; i++) q.step([0, 0, 0.5 - q.pusherPose()[2]]);
    expect(q.pusherPose()[2]).toBeCloseTo(0.5, 1);
    expect(q.pusherPose()[0]).toBeCloseTo(x, 2);
    expect(q.pusherPose()[1]).toBeCloseTo(y, 2);
  });

  it(`lets the scripted expert solve at least 95% of ${EXPERT_SEEDS.length} layouts per embodiment`, () => {
    for (const e of EMBODIMENT_NAMES) {
      const env = envs[e];
      let solved = 0;
      for (const seed of EXPERT_SEEDS) {
        env.reset(sampleLayout(seed, e));
        while (env.steps < MAX_EPISODE_STEPS && !env.succeeded()) env.step(expertAction(env));
        if (env.succeeded()) solved++;
      }
      expect(solved / EXPERT_SEEDS.length, e).toBeGreaterThanOrEqual(0.95);
    }
  });

  it('fails an episode whose pusher holds still', () => {
    const env = envs.paddle3;
    env.reset(sampleLayout(9, 'paddle3'));
    while (env.steps < MAX_EPISODE_STEPS && !env.succeeded()) env.step(env.holdAction());
    expect(env.succeeded()).toBe(false);
  });
});
