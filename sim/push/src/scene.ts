/**
 * The push task's world: a square table seen from above, three coloured balls, a white target zone and one of
 * two pushers (the embodiments). Everything moves in the table's plane: gravity is off, and the balls' sliding
 * friction on the table is joint damping plus Coulomb joint friction (frictionloss), so a ball stops soon after
 * the pusher leaves it, without table contacts to simulate. Slide-joint ranges are the table's walls.
 *
 * A layout (where everything starts, which ball the instruction names) is a pure function of a seed; the MJCF
 * depends only on the embodiment, so a world is built once and reset to any layout.
 */
import { mulberry32 } from './random.js';

/** Half the table's side, metres. */
export const TABLE_HALF = 0.3;
export const BALL_RADIUS = 0.03;
export const ZONE_RADIUS = 0.06;
/** Centres stay this far inside the table (the walls are the joint ranges). */
export const WALL_MARGIN = 0.03;
/**
 * Balls start this far from the centre at most: the pusher (whose range is the table less WALL_MARGIN) can
 * always get behind a ball, whichever way the zone lies.
 */
const BALL_START_HALF = 0.19;
/** Balls start in a band across the table's middle, y in BALL_START_Y. */
const BALL_START_Y = [-0.14, 0.02] as const;
/** The pusher starts on the near side, below the balls: x within +-PUSHER_START_HALF, y in PUSHER_START_Y. */
const PUSHER_START_HALF = 0.22;
const PUSHER_START_Y = [-0.25, -0.2] as const;
/** Ball centres start this far apart. */
const MIN_BALL_SPACING = 0.12;
/** No other ball lies this close to any ball's straight path into the zone. */
const PATH_CLEARANCE = 0.07;
/** The zone's centre: x within +-ZONE_X_RANGE, y in ZONE_Y_RANGE (the far side). */
const ZONE_X_RANGE = 0.08;
const ZONE_Y_RANGE = [0.13, 0.18] as const;
/** Height of the plane everything moves in. */
const PLANE_Z = 0.03;
/** Physics step; CONTROL_SUBSTEPS of them make one control period. */
export const PHYSICS_DT = 0.01;
export const CONTROL_SUBSTEPS = 10;
export const CONTROL_DT = PHYSICS_DT * CONTROL_SUBSTEPS;
/** An episode fails when the named ball is not in the zone after this many control steps (8 s). */
export const MAX_EPISODE_STEPS = 80;

export const COLORS = ['red', 'green', 'blue'] as const;
export type Color = (typeof COLORS)[number];
const BALL_RGBA: Record<Color, string> = { red: '0.85 0.15 0.12 1', green: '0.15 0.7 0.25 1', blue: '0.15 0.3 0.9 1' };

export const EMBODIMENT_NAMES = ['pusher2', 'paddle3'] as const;
export type EmbodimentName = (typeof EMBODIMENT_NAMES)[number];

export interface Embodiment {
  readonly name: EmbodimentName;
  readonly stateDim: number;
  readonly actionDim: number;
  /** What the state and action vectors hold, for the manifest's readers and the README. */
  readonly stateLayout: readonly string[];
  readonly actionLayout: readonly string[];
  /** Radius of the pusher's footprint that must clear a ball when it drives around it. */
  readonly clearance: number;
  /** Distance from the pusher's centre to its pushing face. */
  readonly faceOffset: number;
}

/**
 * Two robots with different bodies, control modes and dimensions:
 * - pusher2: a round tip on an x/y gantry, velocity control (state: position; action: velocity);
 * - paddle3: a flat paddle on an x/y gantry with a yaw joint, position servos commanded relative to the
 *   current pose (state: pose; action: pose change). Either long face pushes (the paddle is symmetric).
 * Neither state says where the balls or the zone are: only the cameras do. (A first version had velocities in
 * pusher2's state and absolute targets as paddle3's action; a policy then explains most of its action loss
 * from the state alone and, in a short training run, never learns to look.)
 */
export const EMBODIMENTS: Record<EmbodimentName, Embodiment> = {
  pusher2: {
    name: 'pusher2',
    stateDim: 2,
    actionDim: 2,
    stateLayout: ['x m', 'y m'],
    actionLayout: ['vx m/s', 'vy m/s'],
    clearance: 0.02,
    faceOffset: 0.02,
  },
  paddle3: {
    name: 'paddle3',
    stateDim: 3,
    actionDim: 3,
    stateLayout: ['x m', 'y m', 'yaw rad'],
    actionLayout: ['dx m', 'dy m', 'dyaw rad'],
    clearance: 0.045,
    faceOffset: 0.012,
  },
};

export const PUSHER2_RADIUS = 0.02;
export const PUSHER2_MAX_SPEED = 0.3;
/** Paddle half-extents: thickness along its x (the pushing direction) and half-width along its y. */
export const PADDLE_HALF_THICKNESS = 0.012;
export const PADDLE_HALF_WIDTH = 0.04;
/** Yaw range of the paddle: a symmetric paddle needs half a turn plus slack to follow any push direction. */
export const PADDLE_YAW_LIMIT = 2.2;

export function isEmbodimentName(name: string): name is EmbodimentName {
  return (EMBODIMENT_NAMES as readonly string[]).includes(name);
}

export interface Layout {
  readonly seed: number;
  readonly embodiment: EmbodimentName;
  /** Ball centres, in COLORS order. */
  readonly balls: readonly (readonly [number, number])[];
  /** Index into COLORS of the ball the instruction names. */
  readonly target: number;
  readonly zone: readonly [number, number];
  /** Pusher start: x, y, yaw (yaw is 0 for pusher2). */
  readonly pusher: readonly [number, number, number];
  /** Index into INSTRUCTION_TEMPLATES. */
  readonly template: number;
  readonly instruction: string;
}

/** Several phrasings, so the model must find the colour word rather than memorise one sentence. */
export const INSTRUCTION_TEMPLATES = [
  'push the {color} ball into the white circle',
  'move the {color} ball to the target',
  'slide the {color} ball into the zone',
  'put the {color} ball in the white zone',
] as const;

/** Every instruction the task can give (the tokenizer's vocabulary comes from these). */
export function allInstructions(): string[] {
  return COLORS.flatMap((color) => INSTRUCTION_TEMPLATES.map((t) => t.replace('{color}', color)));
}

function dist(a: readonly number[], b: readonly number[]): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** Distance from p to the segment a-b. */
function segmentDistance(p: readonly number[], a: readonly number[], b: readonly number[]): number {
  const abx = b[0] - a[0];
  const aby = b[1] - a[1];
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / (abx * abx + aby * aby)));
  return Math.hypot(p[0] - a[0] - t * abx, p[1] - a[1] - t * aby);
}

/**
 * A random layout, arranged like a bench: the pusher starts at the near (-y) edge, the balls in a band across
 * the middle, the zone near the middle of the far side, so every task is "get behind the named ball, push it
 * away". (With everything anywhere on the table, 2500 training steps gave a policy that solved 0 of 40
 * held-out layouts: it had to learn to drive round a ball as well as which ball to push.) The geometry
 * suits any of the three balls as the named one (each at least 0.12 m of travel from the zone, no other ball
 * near its straight path in), so the same layout can be recorded with every instruction (`retarget`).
 */
export function sampleLayout(seed: number, embodiment: EmbodimentName): Layout {
  // The same seed gives each embodiment a different layout.
  const random = mulberry32((seed * EMBODIMENT_NAMES.length + EMBODIMENT_NAMES.indexOf(embodiment)) ^ 0x5bd1e995);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const zone: [number, number] = [uniform(-ZONE_X_RANGE, ZONE_X_RANGE), uniform(ZONE_Y_RANGE[0], ZONE_Y_RANGE[1])];
  let balls: [number, number][];
  do {
    balls = [];
    while (balls.length < COLORS.length) {
      const p: [number, number] = [uniform(-BALL_START_HALF, BALL_START_HALF), uniform(BALL_START_Y[0], BALL_START_Y[1])];
      if (dist(p, zone) < ZONE_RADIUS + 0.12) continue;
      if (balls.some((b) => dist(b, p) < MIN_BALL_SPACING)) continue;
      balls.push(p);
    }
  } while (balls.some((t, ti) => balls.some((b, i) => i !== ti && segmentDistance(b, t, zone) < PATH_CLEARANCE)));
  const clearance = EMBODIMENTS[embodiment].clearance + BALL_RADIUS + 0.02;
  let pusher: [number, number, number];
  do {
    pusher = [uniform(-PUSHER_START_HALF, PUSHER_START_HALF), uniform(PUSHER_START_Y[0], PUSHER_START_Y[1]), embodiment === 'paddle3' ? uniform(-1, 1) : 0];
  } while (balls.some((b) => dist(b, pusher) < clearance));
  const template = Math.floor(random() * INSTRUCTION_TEMPLATES.length);
  return retarget({ seed, embodiment, balls, target: 0, zone, pusher, template, instruction: '' }, Math.floor(random() * COLORS.length));
}

/** The same layout with another ball named (the phrasing stays). */
export function retarget(layout: Layout, target: number): Layout {
  const instruction = INSTRUCTION_TEMPLATES[layout.template].replace('{color}', COLORS[target]);
  return { ...layout, target, instruction };
}

function pusherXml(e: EmbodimentName): { body: string; actuators: string } {
  const range = (TABLE_HALF - WALL_MARGIN).toFixed(3);
  const slides = (armature: string) => `
      <joint name="pusher_x" type="slide" axis="1 0 0" limited="true" range="-${range} ${range}" armature="${armature}"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" limited="true" range="-${range} ${range}" armature="${armature}"/>`;
  if (e === 'pusher2') {
    return {
      body: `
    <body name="pusher" pos="0 0 ${PLANE_Z}">${slides('0')}
      <geom name="pusher" type="sphere" size="${PUSHER2_RADIUS}" mass="0.3" rgba="0.15 0.15 0.15 1"/>
    </body>`,
      actuators: `
    <velocity name="vx" joint="pusher_x" kv="30" ctrllimited="true" ctrlrange="-${PUSHER2_MAX_SPEED} ${PUSHER2_MAX_SPEED}"/>
    <velocity name="vy" joint="pusher_y" kv="30" ctrllimited="true" ctrlrange="-${PUSHER2_MAX_SPEED} ${PUSHER2_MAX_SPEED}"/>`,
    };
  }
  return {
    body: `
    <body name="pusher" pos="0 0 ${PLANE_Z}">${slides('0')}
      <joint name="pusher_yaw" type="hinge" axis="0 0 1" limited="true" range="-${PADDLE_YAW_LIMIT} ${PADDLE_YAW_LIMIT}" armature="0.002"/>
      <geom name="pusher" type="box" size="${PADDLE_HALF_THICKNESS} ${PADDLE_HALF_WIDTH} 0.02" mass="0.4" rgba="0.93 0.55 0.1 1"/>
    </body>`,
    actuators: `
    <position name="x" joint="pusher_x" kp="120" kv="14" ctrllimited="true" ctrlrange="-${range} ${range}"/>
    <position name="y" joint="pusher_y" kp="120" kv="14" ctrllimited="true" ctrlrange="-${range} ${range}"/>
    <position name="yaw" joint="pusher_yaw" kp="0.6" kv="0.07" ctrllimited="true" ctrlrange="-${PADDLE_YAW_LIMIT} ${PADDLE_YAW_LIMIT}"/>`,
  };
}

/** The MJCF of one embodiment's world (positions are set per layout through qpos and the zone's mocap). */
export function sceneXml(e: EmbodimentName): string {
  const range = (TABLE_HALF - WALL_MARGIN - BALL_RADIUS).toFixed(3);
  const balls = COLORS.map(
    (c) => `
    <body name="ball_${c}" pos="0 0 ${PLANE_Z}">
      <joint name="ball_${c}_x" type="slide" axis="1 0 0" limited="true" range="-${range} ${range}" damping="4" frictionloss="0.15"/>
      <joint name="ball_${c}_y" type="slide" axis="0 1 0" limited="true" range="-${range} ${range}" damping="4" frictionloss="0.15"/>
      <geom name="ball_${c}" type="sphere" size="${BALL_RADIUS}" mass="0.1" rgba="${BALL_RGBA[c]}"/>
    </body>`,
  ).join('');
  const pusher = pusherXml(e);
  return `<mujoco model="push-${e}">
  <compiler angle="radian"/>
  <option timestep="${PHYSICS_DT}" gravity="0 0 0" integrator="implicitfast"/>
  <default><geom friction="0.4 0.005 0.0001" condim="3"/></default>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 -0.01" size="0.5 0.5 0.01" rgba="0.22 0.2 0.19 1" contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="0 0 -0.005" size="${TABLE_HALF} ${TABLE_HALF} 0.005" rgba="0.55 0.45 0.35 1" contype="0" conaffinity="0"/>
    <body name="zone" mocap="true" pos="0 0 0">
      <geom name="zone" type="cylinder" size="${ZONE_RADIUS} 0.0005" rgba="0.95 0.95 0.92 1" contype="0" conaffinity="0"/>
    </body>${balls}${pusher.body}
  </worldbody>
  <actuator>${pusher.actuators}
  </actuator>
</mujoco>
`;
}
