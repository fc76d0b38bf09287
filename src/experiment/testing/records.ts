/** Experiments and served requests for the stores' tests: a 50/50 split of versions 1 and 2 of model `m`. */
import type { NewExperiment, ServedEvent } from '../store.js';

export const newExperiment = (over: Partial<NewExperiment> = {}): NewExperiment => ({
  model: 'm',
  salt: 's',
  weights: [
    { version: 1, weight: 0.5 },
    { version: 2, weight: 0.5 },
  ],
  controlVersion: 1,
  stickyKey: 'robot',
  shadowVersion: 0,
  shadowFraction: 0,
  startedAt: 0,
  ...over,
});

/** A request of robot `r`'s episode `e` served by version 1, counted in `experimentId`. */
export const servedEvent = (experimentId: number, over: Partial<ServedEvent> = {}): ServedEvent => ({
  experimentId,
  model: 'm',
  version: 1,
  pinned: false,
  robotId: 'r',
  episodeId: 'e',
  requestId: '',
  latencyMs: 10,
  visionSteps: 8,
  worldModelSurprise: 0.5,
  ...over,
});
