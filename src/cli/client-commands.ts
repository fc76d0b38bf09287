/** The commands that talk to a running server through the client library. */
import type { Command } from 'commander';
import { registerExperiment } from './experiment.js';
import { registerModelAdmin } from './model-admin.js';
import { registerModels } from './models.js';
import { registerOutcome } from './outcome.js';
import { registerPredict } from './predict.js';

export function registerClientCommands(program: Command): void {
  registerPredict(program);
  registerModels(program);
  registerOutcome(program);
  registerModelAdmin(program);
  registerExperiment(program);
}
