/**
 * The scripted expert: a feedback controller over the true simulator state (it sees positions the policy must
 * read from pixels). It drives the pusher around the named ball to the contact point on the far side from the
 * zone, steering clear of the other balls, then pushes along the ball-to-zone line, correcting sideways drift.
 * Being a function of the current state only, it demonstrates recoveries as well as it demonstrates the
 * nominal path when the recorder perturbs its actions.
 */
import type { PushEnv } from './env.js';
import { BALL_RADIUS, COLORS, PADDLE_YAW_LIMIT } from './scene.js';

/** Approach and pushing speeds, m/s. */
const APPROACH_SPEED = 0.3;
const PUSH_SPEED = 0.18;
/** Proportional gains: approach speed per metre of distance, sideways correction per metre of offset. */
const APPROACH_GAIN = 4;
const LATERAL_GAIN = 5;
/** The pusher stops this far behind the contact point before it starts pushing. */
const STANDOFF = 0.012;
/** Pushing starts when the pusher is behind the ball within this sideways offset (and yaw error). */
const ALIGN_TOLERANCE = { pusher2: 0.012, paddle3: 0.02 } as const;
const YAW_TOLERANCE = 0.25;
/** The pusher rounds the named ball on a circle this much wider than contact, a step of ORBIT_STEP at a time. */
const ORBIT_MARGIN = 0.015;
const ORBIT_STEP = 0.7;
/** Within this angle of the contact point (seen from the ball) the pusher drives straight to it. */
const DIRECT_ANGLE = 0.6;
/** Distance at which another ball starts pushing the pusher away. */
const AVOID_RANGE = 0.035;
const AVOID_GAIN = 6;
/**
 * Lead of the paddle's position target over its pose (its action): the servo (kp 120, kv 14 in scene.ts) moves at speed v
 * when the target leads by (kv / kp) v.
 */
export const PADDLE_LEAD_S = 14 / 120;

type Vec = [number, number];
const sub = (a: readonly number[], b: readonly number[]): Vec => [a[0] - b[0], a[1] - b[1]];
const dot = (a: Vec, b: Vec) => a[0] * b[0] + a[1] * b[1];
const norm = (a: Vec) => Math.hypot(a[0], a[1]);
const scale = (a: Vec, k: number): Vec => [a[0] * k, a[1] * k];
const unit = (a: Vec): Vec => {
  const n = norm(a);
  return n < 1e-9 ? [0, 0] : [a[0] / n, a[1] / n];
};

function wrapAngle(a: number): number {
  return Math.atan2(Math.sin(a), Math.cos(a));
}

/** The yaw nearest the current one that turns the paddle's face normal (its x axis) along `dir`. */
function faceYaw(dir: Vec, current: number): number {
  const base = Math.atan2(dir[1], dir[0]);
  let best = base;
  for (const k of [-2, -1, 0, 1, 2]) {
    const y = base + k * Math.PI;
    if (Math.abs(y) <= PADDLE_YAW_LIMIT && Math.abs(y - current) < Math.abs(best - current)) best = y;
  }
  if (Math.abs(best) > PADDLE_YAW_LIMIT) best = base + (base > 0 ? -Math.PI : Math.PI);
  return best;
}

/** The planar velocity the expert wants, and (for the paddle) the yaw it wants. */
export function expertCommand(env: PushEnv): { velocity: Vec; yaw: number } {
  const layout = env.layout;
  const [ex, ey, yaw] = env.pusherPose();
  const e: Vec = [ex, ey];
  const ball = env.ballPosition(layout.target);
  const toZone = sub(layout.zone, ball);
  const dir = unit(toZone);
  const wantYaw = env.embodiment.name === 'paddle3' ? faceYaw(dir, yaw) : 0;
  const contact = BALL_RADIUS + env.embodiment.faceOffset;
  const rel = sub(e, ball);
  const along = dot(rel, dir);
  const lateral = sub(rel, scale(dir, along));
  const aligned = along < -contact * 0.6 && norm(lateral) < ALIGN_TOLERANCE[env.embodiment.name] && Math.abs(wantYaw - yaw) < YAW_TOLERANCE;

  let v: Vec;
  if (aligned) {
    // Push along the line, pulling back onto it sideways.
    v = [dir[0] * PUSH_SPEED - lateral[0] * LATERAL_GAIN * PUSH_SPEED, dir[1] * PUSH_SPEED - lateral[1] * LATERAL_GAIN * PUSH_SPEED];
  } else {
    const standoff: Vec = [ball[0] - dir[0] * (contact + STANDOFF), ball[1] - dir[1] * (contact + STANDOFF)];
    const orbit = BALL_RADIUS + env.embodiment.clearance + ORBIT_MARGIN;
    const atPusher = Math.atan2(rel[1], rel[0]);
    const toStandoff = wrapAngle(Math.atan2(-dir[1], -dir[0]) - atPusher);
    let goal = standoff;
    if (Math.abs(toStandoff) > DIRECT_ANGLE) {
      // Round the ball on a circle, the short way unless another ball sits on that arc.
      const others = COLORS.map((_, i) => env.ballPosition(i)).filter((_, i) => i !== layout.target);
      const blocked = (sign: number) => {
        const arc = sign * (sign * toStandoff > 0 ? Math.abs(toStandoff) : 2 * Math.PI - Math.abs(toStandoff));
        for (let k = 1; k <= 12; k++) {
          const a = atPusher + (arc * k) / 12;
          const p: Vec = [ball[0] + orbit * Math.cos(a), ball[1] + orbit * Math.sin(a)];
          if (others.some((o) => norm(sub(p, o)) < BALL_RADIUS + env.embodiment.clearance + 0.005)) return true;
        }
        return false;
      };
      let sign = Math.sign(toStandoff);
      if (blocked(sign) && !blocked(-sign)) sign = -sign;
      const a = atPusher + sign * ORBIT_STEP;
      goal = [ball[0] + orbit * Math.cos(a), ball[1] + orbit * Math.sin(a)];
    }
    const toGoal = sub(goal, e);
    const speed = Math.min(APPROACH_SPEED, APPROACH_GAIN * norm(toGoal));
    v = scale(unit(toGoal), speed);
    // Keep clear of the other balls.
    COLORS.forEach((_, i) => {
      if (i === layout.target) return;
      const away = sub(e, env.ballPosition(i));
      const gap = norm(away) - BALL_RADIUS - env.embodiment.clearance;
      if (gap < AVOID_RANGE) v = [v[0] + unit(away)[0] * AVOID_GAIN * (AVOID_RANGE - gap), v[1] + unit(away)[1] * AVOID_GAIN * (AVOID_RANGE - gap)];
    });
  }
  // Never ask for more than the slowest embodiment's top speed.
  const speed = norm(v);
  if (speed > APPROACH_SPEED) v = scale(v, APPROACH_SPEED / speed);
  return { velocity: v, yaw: wantYaw };
}

/** The expert's action in the embodiment's action space. */
export function expertAction(env: PushEnv): Float32Array {
  const { velocity, yaw } = expertCommand(env);
  if (env.embodiment.name === 'pusher2') return Float32Array.of(velocity[0], velocity[1]);
  return Float32Array.of(velocity[0] * PADDLE_LEAD_S, velocity[1] * PADDLE_LEAD_S, yaw - env.pusherPose()[2]);
}
