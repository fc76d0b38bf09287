/** `dust-serve experiment show|split|report`: read a model's experiment, set its traffic split (AdminService), write its report. */
import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import type { SplitInit, StickyKeyName, VersionWeightInit } from '@dust-serve/client';
import { parseFraction, parseUint32, parseWeights } from './args.js';
import { addConnectionOptions } from './connection-options.js';
import { formatExperiment, formatSplit } from './experiment-output.js';
import { addReportCommand } from './experiment-report.js';
import { withClient, type ConnectionFlags } from './with-client.js';

export interface ExperimentShowFlags extends ConnectionFlags {
  model?: string;
  json?: boolean;
}

export interface ExperimentSplitFlags extends ConnectionFlags {
  model?: string;
  weights: VersionWeightInit[];
  control?: number;
  sticky?: StickyKeyName;
  salt?: string;
  newExperiment?: boolean;
  shadow?: number;
  shadowFraction?: number;
  json?: boolean;
}

/** Flags -> the request. --new-experiment draws a fresh salt here, so that it also works on an explicit split. */
export function splitInit(flags: ExperimentSplitFlags, newSalt: () => string = () => randomBytes(8).toString('hex')): SplitInit {
  if (flags.newExperiment && flags.salt) throw new Error('give --salt or --new-experiment, not both');
  return {
    model: flags.model ?? '',
    weights: flags.weights,
    controlVersion: flags.control ?? 0,
    stickyKey: flags.sticky ?? 'robot',
    salt: flags.newExperiment ? newSalt() : (flags.salt ?? ''),
    shadowVersion: flags.shadow ?? 0,
    shadowFraction: flags.shadowFraction ?? (flags.shadow ? 0.1 : 0),
  };
}

export async function runExperimentShow(flags: ExperimentShowFlags): Promise<void> {
  const experiment = await withClient('experiment show', flags, (client) => client.getExperiment(flags.model ?? ''));
  process.stdout.write(flags.json ? JSON.stringify(experiment, null, 2) + '\n' : formatExperiment(experiment));
}

export async function runExperimentSplit(flags: ExperimentSplitFlags): Promise<void> {
  const init = splitInit(flags);
  const split = await withClient('experiment split', flags, (client) => client.setTrafficSplit(init));
  process.stdout.write(flags.json ? JSON.stringify(split, null, 2) + '\n' : formatSplit(split));
}

export function registerExperiment(
  program: Command,
  actions: { show: (f: ExperimentShowFlags) => Promise<void>; split: (f: ExperimentSplitFlags) => Promise<void> } = {
    show: runExperimentShow,
    split: runExperimentSplit,
  },
): Command {
  const cmd = program.command('experiment').description("a model's A/B experiment: per-version outcomes and statistics, and its traffic split (AdminService)");
  const show = cmd
    .command('show')
    .description('print the experiment: traffic, outcomes, success rates with 95% intervals, p-values and decisions per version')
    .option('--model <name>', 'model (default: the server default model)');
  addConnectionOptions(show).action((flags: ExperimentShowFlags) => actions.show(flags));
  const split = cmd
    .command('split')
    .description('set the traffic split of a model; a new salt starts a new experiment')
    .option('--model <name>', 'model (default: the server default model)')
    .requiredOption('--weights <v=w,...>', 'versions and weights, e.g. 1=0.9,2=0.1 (normalized by the server)', parseWeights)
    .option('--control <version>', 'version the others are compared against (default: the lowest in --weights)', parseUint32)
    .addOption(new Option('--sticky <key>', 'keep each robot on its version, or assign each episode anew').choices(['robot', 'episode']).default('robot'))
    .option('--salt <salt>', 'hash salt; a new one starts a new experiment (default: keep the current one)')
    .option('--new-experiment', 'start a new experiment with a random salt')
    .option('--shadow <version>', 'mirror a fraction of primary requests to this version', parseUint32)
    .option('--shadow-fraction <f>', 'fraction of primary requests mirrored to --shadow (default 0.1)', parseFraction);
  addConnectionOptions(split).action((flags: ExperimentSplitFlags) => actions.split(flags));
  addReportCommand(cmd);
  return cmd;
}
