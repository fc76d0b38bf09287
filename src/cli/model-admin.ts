/** `dust-serve load` and `dust-serve unload`: a model version in or out of service (AdminService). */
import type { Command } from 'commander';
import type { ModelStatusResult } from '@dust-serve/client';
import { parseUint32 } from './args.js';
import { addConnectionOptions } from './connection-options.js';
import { withClient, type ConnectionFlags } from './with-client.js';

export interface ModelAdminFlags extends ConnectionFlags {
  json?: boolean;
}

/** `dust-tiny@2: READY`, `dust-tiny@2: FAILED: <why>`, `dust-tiny@2: unloaded` (an unloaded version has no state). */
export function formatModelStatus(status: ModelStatusResult): string {
  const parts = [status.state === 'UNSPECIFIED' ? '' : status.state, status.reason].filter(Boolean);
  return `${status.name}@${status.version}: ${parts.join(': ')}\n`;
}

function print(status: ModelStatusResult, flags: ModelAdminFlags): void {
  process.stdout.write(flags.json ? JSON.stringify(status, null, 2) + '\n' : formatModelStatus(status));
}

export async function runLoad(model: string, version: number, flags: ModelAdminFlags): Promise<void> {
  print(await withClient('load', flags, (client) => client.loadModel(model, version)), flags);
}

export async function runUnload(model: string, version: number, flags: ModelAdminFlags): Promise<void> {
  print(await withClient('unload', flags, (client) => client.unloadModel(model, version)), flags);
}

export function registerModelAdmin(
  program: Command,
  actions: {
    load: (model: string, version: number, flags: ModelAdminFlags) => Promise<void>;
    unload: (model: string, version: number, flags: ModelAdminFlags) => Promise<void>;
  } = { load: runLoad, unload: runUnload },
): void {
  const load = program
    .command('load')
    .description('load a version from the server repository, or reload a loaded one from disk; a broken package never replaces a serving version')
    .argument('<model>', 'model name')
    .argument('[version]', 'version (default: the newest in the repository)', parseUint32, 0);
  addConnectionOptions(load).action((model: string, version: number, flags: ModelAdminFlags) => actions.load(model, version, flags));
  const unload = program
    .command('unload')
    .description("drain a version's in-flight requests, then unload it; refused for a model's last READY version with recent traffic")
    .argument('<model>', 'model name')
    .argument('<version>', 'version', parseUint32);
  addConnectionOptions(unload).action((model: string, version: number, flags: ModelAdminFlags) => actions.unload(model, version, flags));
}
