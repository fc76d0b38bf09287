#!/usr/bin/env node
/**
 * `npm run push:record -- --out <dir>`: expert demonstrations of the push task for the model toolchain
 * (dataset.ts describes the files). Layout seeds seedStart .. seedStart + layouts - 1 per embodiment, each
 * recorded once per ball named (`--every-target`, the default) or with its own seed's instruction. Only
 * successful demonstrations are written (the summary on stdout counts the others).
 *
 * Every target: the same first frames then come with three different instructions and three different action
 * sequences, so the instruction is the only way to tell them apart. (Recorded with one instruction per layout,
 * a policy trained for 2500 steps still ignored the instruction: its actions changed by 0.007 when it changed.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Progress } from '../progress.js';
import { COLORS, EMBODIMENT_NAMES, emptyIndex, PushEnv, recordEpisode, retarget, sampleLayout, writeEpisode } from '@dust-serve/sim-push';
import { number } from '../cli-args.js';

const program = new Command('push-record')
  .description('record expert demonstrations of the MuJoCo push task for models/toolchain')
  .requiredOption('--out <dir>', 'dataset directory (index.json and one .bin per episode)')
  .option('--layouts <n>', 'layouts per embodiment', number(1, true), 150)
  .option('--no-every-target', "record each layout only with its seed's instruction")
  .option('--seed-start <n>', 'first layout seed', number(0, true), 0)
  .option('--image-size <px>', "camera frames are this many pixels square (the model's image size)", number(8, true), 64)
  .option('--perturbed-every <n>', 'every n-th episode executes noisy actions (DART); 0 = none', number(0, true), 2)
  .option('--quiet', 'no progress line');
program.parse();
const opts = program.opts<{
  out: string;
  layouts: number;
  everyTarget: boolean;
  seedStart: number;
  imageSize: number;
  perturbedEvery: number;
  quiet?: boolean;
}>();

mkdirSync(opts.out, { recursive: true });
const index = emptyIndex(opts.imageSize);
const progress = new Progress(opts.quiet);
const summary: Record<string, { recorded: number; expert_failures: string[]; steps: number }> = {};
const t0 = performance.now();
for (const name of EMBODIMENT_NAMES) {
  const env = await PushEnv.create(name);
  const s = (summary[name] = { recorded: 0, expert_failures: [] as string[], steps: 0 });
  let n = 0;
  for (let i = 0; i < opts.layouts; i++) {
    const layout = sampleLayout(opts.seedStart + i, name);
    const layouts = opts.everyTarget ? COLORS.map((_, t) => retarget(layout, t)) : [layout];
    for (const l of layouts) {
      const perturbed = opts.perturbedEvery > 0 && n++ % opts.perturbedEvery === opts.perturbedEvery - 1;
      const ep = recordEpisode(env, l, perturbed, opts.imageSize);
      if (ep.success) {
        index.episodes.push(writeEpisode(opts.out, ep, opts.imageSize));
        s.recorded++;
        s.steps += ep.length;
      } else {
        s.expert_failures.push(`${l.seed}/${COLORS[l.target]}`);
      }
    }
    progress.update(`recording ${name}: ${i + 1}/${opts.layouts} layouts, ${s.recorded} episodes, ${s.steps} steps`);
  }
  env.dispose();
}
writeFileSync(path.join(opts.out, 'index.json'), `${JSON.stringify(index, null, 1)}\n`);
progress.done();
process.stdout.write(`${JSON.stringify({ out: opts.out, seconds: Math.round((performance.now() - t0) / 100) / 10, embodiments: summary })}\n`);
