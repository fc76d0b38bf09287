/**
 * Recording one expert demonstration: the frames of both cameras, the state and the expert's action at every
 * control step, until the named ball is in the zone (that final observation included) or time runs out.
 *
 * Half of the demonstrations are perturbed (DART, Laskey et al. 2017): the executed action is the expert's plus
 * temporally correlated noise, while the recorded label stays the expert's own action for the state reached.
 * The data then shows how to recover from the small errors a learned policy makes.
 */
import { mulberry32 } from './random.js';
import { CAMERAS, type Camera, type PushEnv } from './env.js';
import { expertAction, PADDLE_LEAD_S } from './expert.js';
import { COLORS, MAX_EPISODE_STEPS, type Layout } from './scene.js';

/**
 * The simulator's ground truth recorded beside each frame, in this order: every ball's centre (COLORS order),
 * the zone's centre, the pusher's x, y and yaw (0 for pusher2). Free to record, and what an image encoder can be
 * taught to see (models/toolchain/vision.py regresses it).
 */
export const LABEL_NAMES: readonly string[] = [
  ...COLORS.flatMap((c) => [`ball_${c}_x`, `ball_${c}_y`]),
  'zone_x',
  'zone_y',
  'pusher_x',
  'pusher_y',
  'pusher_yaw',
];

function labels(env: PushEnv): Float32Array {
  const out = new Float32Array(LABEL_NAMES.length);
  COLORS.forEach((_, i) => out.set(env.ballPosition(i), 2 * i));
  out.set(env.layout.zone, 2 * COLORS.length);
  out.set(env.pusherPose(), 2 * COLORS.length + 2);
  return out;
}

/** Ornstein-Uhlenbeck noise on the executed action: per-step pull back to 0 and stationary deviation. */
const NOISE_THETA = 0.25;
const NOISE_SIGMA_VELOCITY = 0.08;
const NOISE_SIGMA_YAW = 0.15;

export interface RecordedEpisode {
  readonly layout: Layout;
  readonly perturbed: boolean;
  readonly success: boolean;
  readonly length: number;
  readonly frames: Record<Camera, Uint8Array[]>;
  readonly states: Float32Array[];
  readonly actions: Float32Array[];
  /** Per step, LABEL_NAMES of the world the frames show. */
  readonly labels: Float32Array[];
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export function recordEpisode(env: PushEnv, layout: Layout, perturbed: boolean, imageSize: number): RecordedEpisode {
  env.reset(layout);
  const random = mulberry32(layout.seed ^ 0x2545f491);
  const frames: Record<Camera, Uint8Array[]> = { top: [], gripper: [] };
  const states: Float32Array[] = [];
  const actions: Float32Array[] = [];
  const truth: Float32Array[] = [];
  // Noise state in velocity units (x, y) and radians (yaw); stationary std = sigma.
  const noise = [0, 0, 0];
  const sigma = [NOISE_SIGMA_VELOCITY, NOISE_SIGMA_VELOCITY, NOISE_SIGMA_YAW];
  const diffusion = Math.sqrt(1 - (1 - NOISE_THETA) ** 2);
  let success = false;
  for (;;) {
    const obs = env.observe(imageSize);
    for (const cam of CAMERAS) frames[cam].push(obs.frames[cam]);
    states.push(obs.state);
    truth.push(labels(env));
    const label = expertAction(env);
    actions.push(label);
    if (success || env.steps >= MAX_EPISODE_STEPS) break;
    const executed = Float32Array.from(label);
    if (perturbed) {
      for (let i = 0; i < 3; i++) noise[i] = (1 - NOISE_THETA) * noise[i] + diffusion * sigma[i] * gaussian(random);
      // pusher2 acts in velocity; paddle3's position targets lead its pose by velocity * PADDLE_LEAD_S.
      const k = env.embodiment.name === 'pusher2' ? 1 : PADDLE_LEAD_S;
      executed[0] += noise[0] * k;
      executed[1] += noise[1] * k;
      if (env.embodiment.name === 'paddle3') executed[2] += noise[2];
    }
    env.step(executed);
    success = env.succeeded();
  }
  return { layout, perturbed, success, length: states.length, frames, states, actions, labels: truth };
}
