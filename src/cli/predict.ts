/** `dust-serve predict`: one Predict call from the command line, e.g. to smoke-test a deployed model. */
import { type Command } from 'commander';
import type { PredictRequestInit, SamplingInit } from '@dust-serve/client';
import { collectImageSpec, DEFAULT_ROBOT_ID, parseSeed, parseState, parseUint32, type ImageSpec } from './args.js';
import { addConnectionOptions } from './connection-options.js';
import { loadImageFile } from './image-file.js';
import { formatPredict, predictJson } from './predict-output.js';
import { withClient, type ConnectionFlags } from './with-client.js';

export interface PredictFlags extends ConnectionFlags {
  model?: string;
  robotId: string;
  episodeId?: string;
  embodiment: string;
  image: ImageSpec[];
  state?: number[];
  instruction?: string;
  actionSteps?: number;
  visionSteps?: number;
  seed?: bigint;
  budgetMs?: number;
  future?: boolean;
  json?: boolean;
}

/** Flags -> the request, with images already read. Pure apart from the image reads. */
export async function predictInit(flags: PredictFlags): Promise<PredictRequestInit> {
  const sampling: SamplingInit = {};
  if (flags.actionSteps !== undefined) sampling.actionSteps = flags.actionSteps;
  if (flags.visionSteps !== undefined) sampling.visionSteps = flags.visionSteps;
  if (flags.seed !== undefined) sampling.seed = flags.seed;
  if (flags.budgetMs !== undefined) sampling.latencyBudgetMs = flags.budgetMs;
  return {
    robotId: flags.robotId,
    episodeId: flags.episodeId ?? '',
    embodiment: flags.embodiment,
    model: flags.model ?? '',
    images: await Promise.all(flags.image.map(loadImageFile)),
    state: flags.state ?? [],
    instruction: flags.instruction ?? '',
    sampling,
    returnFutureEmbedding: flags.future ?? false,
  };
}

export async function runPredict(flags: PredictFlags): Promise<void> {
  const init = await predictInit(flags);
  const result = await withClient('predict', flags, (client) => client.predict(init));
  process.stdout.write(flags.json ? JSON.stringify(predictJson(result), null, 2) + '\n' : formatPredict(result));
}

export function registerPredict(program: Command, action: (flags: PredictFlags) => Promise<void> = runPredict): Command {
  const cmd = program
    .command('predict')
    .description('send one observation to a dust-serve server and print the action chunk')
    .requiredOption('--embodiment <name>', 'embodiment (a key of the model manifest)')
    .option('--model <name[@version]>', 'model to ask; empty = the default model and its traffic split')
    .option('--robot-id <id>', 'robot id (traffic splits are sticky per robot)', DEFAULT_ROBOT_ID)
    .option('--episode-id <id>', 'episode id: the episode keeps the version that served its first request, and `dust-serve outcome` credits it')
    .option('--image <camera=path>', 'camera image, repeatable; .jpg/.jpeg and .png are sent as is, other formats as raw RGB8', collectImageSpec, [])
    .option('--state <v0,v1,...>', 'proprioceptive state, comma-separated', parseState)
    .option('--instruction <text>', 'task instruction')
    .option('--action-steps <n>', 'N_A denoising steps (0 = manifest default)', parseUint32)
    .option('--vision-steps <n>', 'N_o world-model steps, a multiple of N_A (0 = manifest default)', parseUint32)
    .option('--seed <n>', 'unsigned 64-bit noise seed, for reproducible chunks', parseSeed)
    .option('--budget-ms <ms>', 'latency budget; the server picks N_o to meet it', parseUint32)
    .option('--future', 'also return the predicted future embedding');
  addConnectionOptions(cmd);
  return cmd.action((flags: PredictFlags) => action(flags));
}
