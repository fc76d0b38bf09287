/**
 * One simulated robot's world: a MuJoCo model and data of its own (mujoco-js, the official WebAssembly build),
 * reset to a layout, stepped one control period at a time, observed as proprioceptive state plus two camera
 * frames rendered from the simulator state. Success is read from the physics: the named ball's centre inside
 * the zone.
 */
import loadMujoco, { type MainModule, type MjData, type MjModel } from 'mujoco-js';
import { primitives, render, type Primitive } from './render.js';
import {
  COLORS,
  CONTROL_SUBSTEPS,
  EMBODIMENTS,
  PUSHER2_MAX_SPEED,
  sceneXml,
  TABLE_HALF,
  ZONE_RADIUS,
  type Embodiment,
  type EmbodimentName,
  type Layout,
} from './scene.js';

/** The two cameras, in the order the model takes them; the first is the world model's (the future frame). */
export const CAMERAS = ['top', 'gripper'] as const;
export type Camera = (typeof CAMERAS)[number];
/** The top camera shows the table and a strip of floor around it. */
const TOP_HALF_EXTENT = TABLE_HALF + 0.02;
/**
 * The gripper camera is centred on the pusher, axis-aligned with the table, and wide: it shows where the balls
 * and the zone are relative to the pusher, which is what the action depends on. (A first version showed 0.12 m
 * and turned with the paddle; 625 training steps later the policy still ignored both cameras.)
 */
const GRIPPER_HALF_EXTENT = 0.25;

export interface Observation {
  readonly state: Float32Array;
  /** size x size x 3 RGB per camera. */
  readonly frames: Record<Camera, Uint8Array>;
}

let modulePromise: Promise<MainModule> | undefined;
const baseModels = new Map<EmbodimentName, MjModel>();

/** The WebAssembly module, loaded once per process (about 0.4 s). */
function mujoco(): Promise<MainModule> {
  modulePromise ??= loadMujoco();
  return modulePromise;
}

async function baseModel(e: EmbodimentName): Promise<{ mj: MainModule; model: MjModel }> {
  const mj = await mujoco();
  let model = baseModels.get(e);
  if (!model) {
    const file = `/push-${e}.xml`;
    mj.FS.writeFile(file, sceneXml(e));
    model = mj.MjModel.loadFromXML(file);
    baseModels.set(e, model);
  }
  return { mj, model };
}

export class PushEnv {
  private layoutValue: Layout | undefined;
  private stepCount = 0;
  private readonly ballAdr: number[];
  private readonly pusherAdr: number[];

  private constructor(
    private readonly mj: MainModule,
    private readonly model: MjModel,
    private readonly data: MjData,
    readonly embodiment: Embodiment,
  ) {
    const joint = (name: string): number => {
      const id = mj.mj_name2id(model, mj.mjtObj.mjOBJ_JOINT.value, name);
      if (id < 0) throw new Error(`the push scene has no joint ${name}`);
      return id;
    };
    const qposAdr = (name: string) => model.jnt_qposadr[joint(name)] as number;
    this.ballAdr = COLORS.map((c) => qposAdr(`ball_${c}_x`));
    const pusherJoints = embodiment.name === 'paddle3' ? ['pusher_x', 'pusher_y', 'pusher_yaw'] : ['pusher_x', 'pusher_y'];
    this.pusherAdr = pusherJoints.map(qposAdr);
  }

  /** A fresh world of its own for one robot (the MJCF is compiled once per embodiment and copied). */
  static async create(embodiment: EmbodimentName): Promise<PushEnv> {
    const { mj, model: base } = await baseModel(embodiment);
    const model = new mj.MjModel(base);
    return new PushEnv(mj, model, new mj.MjData(model), EMBODIMENTS[embodiment]);
  }

  get layout(): Layout {
    if (!this.layoutValue) throw new Error('PushEnv: reset() before use');
    return this.layoutValue;
  }

  /** Control steps since the last reset. */
  get steps(): number {
    return this.stepCount;
  }

  reset(layout: Layout): void {
    if (layout.embodiment !== this.embodiment.name) {
      throw new Error(`layout for ${layout.embodiment} given to a ${this.embodiment.name} world`);
    }
    const { mj, model, data } = this;
    mj.mj_resetData(model, data);
    const qpos = data.qpos as Float64Array;
    layout.balls.forEach((b, i) => {
      qpos[this.ballAdr[i]] = b[0];
      qpos[this.ballAdr[i] + 1] = b[1];
    });
    qpos[this.pusherAdr[0]] = layout.pusher[0];
    qpos[this.pusherAdr[1]] = layout.pusher[1];
    if (this.embodiment.name === 'paddle3') qpos[this.pusherAdr[2]] = layout.pusher[2];
    const mocap = data.mocap_pos as Float64Array;
    mocap[0] = layout.zone[0];
    mocap[1] = layout.zone[1];
    // A position servo starts at its target, so the paddle rests where it was placed.
    this.applyAction(this.holdAction());
    mj.mj_forward(model, data);
    this.layoutValue = layout;
    this.stepCount = 0;
  }

  /** Pusher x, y and yaw (0 for pusher2). */
  pusherPose(): [number, number, number] {
    const qpos = this.data.qpos as Float64Array;
    const yaw = this.embodiment.name === 'paddle3' ? qpos[this.pusherAdr[2]] : 0;
    return [qpos[this.pusherAdr[0]], qpos[this.pusherAdr[1]], yaw];
  }

  ballPosition(index: number): [number, number] {
    const qpos = this.data.qpos as Float64Array;
    return [qpos[this.ballAdr[index]], qpos[this.ballAdr[index] + 1]];
  }

  /** Proprioception in the embodiment's layout (scene.ts EMBODIMENTS). */
  state(): Float32Array {
    const [x, y, yaw] = this.pusherPose();
    return this.embodiment.name === 'paddle3' ? Float32Array.of(x, y, yaw) : Float32Array.of(x, y);
  }

  /** The action that keeps the pusher where it is (zero velocity, zero pose change). */
  holdAction(): Float32Array {
    return new Float32Array(this.embodiment.actionDim);
  }

  /** True while the named ball's centre is inside the zone. */
  succeeded(): boolean {
    const b = this.ballPosition(this.layout.target);
    return Math.hypot(b[0] - this.layout.zone[0], b[1] - this.layout.zone[1]) < ZONE_RADIUS;
  }

  /** Distance from the named ball's centre to the zone's edge (0 inside), for reports. */
  distanceToZone(): number {
    const b = this.ballPosition(this.layout.target);
    return Math.max(0, Math.hypot(b[0] - this.layout.zone[0], b[1] - this.layout.zone[1]) - ZONE_RADIUS);
  }

  /** Applies one action for one control period. Non-finite values (a broken policy) hold the pusher. */
  step(action: ArrayLike<number>): void {
    if (action.length !== this.embodiment.actionDim) {
      throw new Error(`${this.embodiment.name} takes ${this.embodiment.actionDim} action values, got ${action.length}`);
    }
    let finite = true;
    for (let i = 0; i < action.length; i++) finite &&= Number.isFinite(action[i]);
    this.applyAction(finite ? action : this.holdAction());
    for (let i = 0; i < CONTROL_SUBSTEPS; i++) this.mj.mj_step(this.model, this.data);
    this.stepCount++;
  }

  private applyAction(action: ArrayLike<number>): void {
    const ctrl = this.data.ctrl as Float64Array;
    if (this.embodiment.name === 'pusher2') {
      for (let i = 0; i < 2; i++) ctrl[i] = Math.max(-PUSHER2_MAX_SPEED, Math.min(PUSHER2_MAX_SPEED, action[i]));
      return;
    }
    // The servos' targets: the pose now plus the commanded change (MuJoCo clamps them to ctrlrange).
    const pose = this.pusherPose();
    for (let i = 0; i < 3; i++) ctrl[i] = pose[i] + action[i];
  }

  /** The geoms as seen from above, for both cameras. */
  private primitives(): Primitive[] {
    const { model, data } = this;
    return primitives({
      ngeom: model.ngeom,
      type: model.geom_type as Int32Array,
      size: model.geom_size as Float64Array,
      rgba: model.geom_rgba as Float32Array,
      xpos: data.geom_xpos as Float64Array,
      xmat: data.geom_xmat as Float64Array,
    });
  }

  observe(imageSize: number): Observation {
    const prims = this.primitives();
    const [x, y] = this.pusherPose();
    return {
      state: this.state(),
      frames: {
        top: render(prims, { x: 0, y: 0, halfExtent: TOP_HALF_EXTENT, yaw: 0 }, imageSize),
        gripper: render(prims, { x, y, halfExtent: GRIPPER_HALF_EXTENT, yaw: 0 }, imageSize),
      },
    };
  }

  /** Frees the WebAssembly memory of this world. */
  dispose(): void {
    this.data.delete();
    this.model.delete();
  }
}
