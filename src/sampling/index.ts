export { stepPlan, stepCountProblem, applyStep, ratio } from './schedule.js';
export type { StepPlan, StepCounts } from './schedule.js';
export { sampleJoint } from './sampler.js';
export type { Denoise, Velocity, SampleResult } from './sampler.js';
export { GaussianNoise, initialNoise, randomSeed } from './noise.js';
export type { InitialNoise } from './noise.js';
