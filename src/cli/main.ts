#!/usr/bin/env node
/** The dust-serve command line: serve, predict, models, outcome, load, unload, experiment. */
import { Command } from 'commander';
import { registerServe } from './serve.js';
import { registerClientCommands } from './client-commands.js';
import { packageVersion } from './version.js';

const program = new Command('dust-serve')
  .description('serve DUST world-model-augmented VLA policies to robot fleets over gRPC')
  .version(packageVersion())
  .showHelpAfterError();
registerServe(program);
registerClientCommands(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`dust-serve: ${err.message}\n`);
  process.exit(1);
});
