export { stepPlan, stepCountProblem, applyStep } from './schedule.js';
export type { StepCounts } from './schedule.js';
export { sampleJoint } from './sampler.js';
export type { Denoise } from './sampler.js';
export { GaussianNoise, initialNoise, randomSeed } from './noise.js';
export type { InitialNoise } from './noise.js';
export {
  CHUNKING_METHODS,
  GUIDANCE_FREE_METHODS,
  inpaintWeights,
  ensembleWeights,
  conditionWeights,
  inpaintStep,
  blendPrefix,
  estimateDelay,
  positionTimes,
  broadcastTimes,
  pinCommitted,
} from './chunking.js';
export type { ChunkingMethod, PrefixGuide } from './chunking.js';
