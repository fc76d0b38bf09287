/** `dust-serve models`: what a server has loaded (ListModels). */
import type { Command } from 'commander';
import { addConnectionOptions } from './connection-options.js';
import { formatModels } from './models-output.js';
import { withClient, type ConnectionFlags } from './with-client.js';

export interface ModelsFlags extends ConnectionFlags {
  json?: boolean;
}

export async function runModels(flags: ModelsFlags): Promise<void> {
  const list = await withClient('models', flags, (client) => client.listModels());
  process.stdout.write(flags.json ? JSON.stringify(list, null, 2) + '\n' : formatModels(list));
}

export function registerModels(program: Command, action: (flags: ModelsFlags) => Promise<void> = runModels): Command {
  const cmd = program.command('models').description('list the models and versions a dust-serve server has loaded');
  addConnectionOptions(cmd);
  return cmd.action((flags: ModelsFlags) => action(flags));
}
