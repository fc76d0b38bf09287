/**
 * The MuJoCo push task (docs/mujoco-fleet.md): the scene and its embodiments, the physics environment and
 * its renderer, the scripted expert, the episode recorder and the dataset format models/toolchain reads.
 */
export {
  TABLE_HALF,
  BALL_RADIUS,
  ZONE_RADIUS,
  WALL_MARGIN,
  PHYSICS_DT,
  CONTROL_SUBSTEPS,
  CONTROL_DT,
  MAX_EPISODE_STEPS,
  COLORS,
  EMBODIMENT_NAMES,
  EMBODIMENTS,
  PUSHER2_RADIUS,
  PUSHER2_MAX_SPEED,
  PADDLE_HALF_THICKNESS,
  PADDLE_HALF_WIDTH,
  PADDLE_YAW_LIMIT,
  isEmbodimentName,
  INSTRUCTION_TEMPLATES,
  allInstructions,
  sampleLayout,
  retarget,
  sceneXml,
} from './scene.js';
export type { Color, EmbodimentName, Embodiment, Layout } from './scene.js';
export { CAMERAS, PushEnv } from './env.js';
export type { Camera, Observation } from './env.js';
export { primitives, render } from './render.js';
export type { Primitive, View, GeomSource } from './render.js';
export { PADDLE_LEAD_S, expertCommand, expertAction } from './expert.js';
export { LABEL_NAMES, recordEpisode } from './episode.js';
export type { RecordedEpisode } from './episode.js';
export { DATASET_FORMAT, emptyIndex, writeEpisode } from './dataset.js';
export type { ArrayRef, EpisodeEntry, DatasetIndex } from './dataset.js';
export { mulberry32 } from './random.js';
