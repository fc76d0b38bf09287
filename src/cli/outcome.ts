/** `dust-serve outcome`: an episode's result, credited to the version that served it (ReportOutcome). */
import { Option, type Command } from 'commander';
import type { OutcomeInit, OutcomeResult } from '@dust-serve/client';
import { DEFAULT_ROBOT_ID, parseFinite } from './args.js';
import { addConnectionOptions } from './connection-options.js';
import { withClient, type ConnectionFlags } from './with-client.js';

export interface OutcomeFlags extends ConnectionFlags {
  robotId: string;
  episodeId: string;
  success?: boolean;
  failure?: boolean;
  reward?: number;
  json?: boolean;
}

/** Flags -> the request; exactly one of --success and --failure. */
export function outcomeInit(flags: OutcomeFlags): OutcomeInit {
  if (flags.success === flags.failure) throw new Error('give exactly one of --success and --failure');
  const init: OutcomeInit = { robotId: flags.robotId, episodeId: flags.episodeId, success: flags.success === true };
  if (flags.reward !== undefined) init.reward = flags.reward;
  return init;
}

export function formatOutcome(result: OutcomeResult): string {
  const counted = result.counted ? 'counted in the experiment' : 'not counted in the experiment (a pinned episode, an earlier experiment, or already reported)';
  return `credited to ${result.modelName}@${result.modelVersion}: ${counted}\n`;
}

export async function runOutcome(flags: OutcomeFlags): Promise<void> {
  const init = outcomeInit(flags);
  const result = await withClient('outcome', flags, (client) => client.reportOutcome(init));
  process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : formatOutcome(result));
}

export function registerOutcome(program: Command, action: (flags: OutcomeFlags) => Promise<void> = runOutcome): Command {
  const cmd = program
    .command('outcome')
    .description("report an episode's success or failure; it is credited to the version that served the episode's first request")
    .option('--robot-id <id>', 'robot id the episode was served under', DEFAULT_ROBOT_ID)
    .requiredOption('--episode-id <id>', 'episode id the predictions were sent with (predict --episode-id)')
    .addOption(new Option('--success', 'the episode succeeded').conflicts('failure'))
    .addOption(new Option('--failure', 'the episode failed').conflicts('success'))
    .option('--reward <r>', 'optional scalar reward', parseFinite);
  addConnectionOptions(cmd);
  return cmd.action((flags: OutcomeFlags) => action(flags));
}
