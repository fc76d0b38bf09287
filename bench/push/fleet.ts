#!/usr/bin/env node
/**
 * `npm run fleet`: N simulated robots, each with a MuJoCo world of its own, in closed loop through the real
 * dust-serve (a child process on a loopback port) at a control rate; task success per condition (model
 * version x sampling settings) on the same held-out layouts; outcomes reported with ReportOutcome. A summary on
 * stdout and the JSON in a file (results.ts), progress bars on stderr, optionally a PNG of success vs N_o with 95% intervals.
 */
import os from 'node:os';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { DustClient, type ModelList } from '@dust-serve/client';
import { DEFAULT_THREADS } from '../options.js';
import { killAllServers, startServerProcess, type ServerProcess } from '../server-process.js';
import { number } from '../cli-args.js';
import { condition, EXPERIMENTS, parseConditions, type Condition, type ExperimentName } from './conditions.js';
import { runAb, type AbReport } from './ab.js';
import { EMBODIMENT_NAMES, type EmbodimentName, PushEnv } from '@dust-serve/sim-push';
import { PushRobot, type EpisodeResult, type EpisodeSpec } from './push-robot.js';
import { CHUNKING_MODES, COMMIT_MODES, type ChunkingMode, type CommitMode } from './chunk-metrics.js';
import { compareConditions, scalingPlot, summarizeCondition, type ConditionSummary } from './report.js';
import { writePlot } from './plot.js';
import { addResultOptions, resultMeta, writeResult } from '../results.js';
import { pushFleetSummary } from '../summaries.js';

/** Held-out layouts start here; training used seeds below 1000 and the toolchain's held-out set 500000+. */
export const EVAL_SEED_START = 1_000_000;

interface FleetOptions {
  experiment: string;
  conditions?: string;
  robots: number;
  episodes: number;
  seedStart: number;
  controlHz: number;
  clock: 'realtime' | 'lockstep';
  execute: number;
  repository: string;
  model: string;
  threads: number;
  serverArgs: string;
  address?: string;
  requestDeadlineMs: number;
  embodiments: string;
  ab?: string;
  abMaxEpisodes: number;
  stickyKey: 'episode' | 'robot';
  chunking: ChunkingMode;
  delay: number;
  estimateDelay?: boolean;
  delayWindow: number;
  commit: CommitMode;
  out?: string;
  save?: boolean;
  json?: boolean;
  plot?: string;
  quiet?: boolean;
}

const program = new Command('fleet')
  .description('closed-loop MuJoCo push fleet through the real dust-serve: task success per model version and sampling setting')
  .option('--experiment <names>', `comma-separated: ${Object.keys(EXPERIMENTS).join(', ')}`, 'versions')
  .option('--conditions <spec>', 'explicit conditions instead: version:N_A:N_o or version:N_A:N_o:budget_ms, comma-separated')
  .option('--robots <n>', 'simulated robots (split evenly over the embodiments)', number(1, true), 8)
  .option('--episodes <n>', 'held-out episodes per condition (alternating embodiments)', number(1, true), 100)
  .option('--seed-start <n>', 'first held-out layout seed', number(0, true), EVAL_SEED_START)
  .option('--control-hz <hz>', "control ticks per wall-clock second; the task's control period is 0.1 s, so 10 is real time", number(0.1), 10)
  .addOption(
    new Option('--clock <clock>', 'realtime: the world ticks on while a request is in flight; lockstep: it waits for every answer')
      .choices(['realtime', 'lockstep'])
      .default('realtime'),
  )
  .option('--execute <n>', 'actions of a chunk executed before the next chunk is requested', number(1, true), 8)
  .option('--repository <dir>', 'model repository the server loads', 'models/push-repo')
  .option('--model <name>', 'model name', 'dust-push')
  .option('--threads <n>', 'ONNX Runtime intra-op threads of the server', number(1, true), DEFAULT_THREADS)
  .option('--server-args <flags>', 'extra server flags, space-separated', '')
  .option('--address <host:port>', 'use a running server instead of starting one')
  .option('--request-deadline-ms <ms>', 'deadline of each Predict', number(1, true), 10_000)
  .addOption(new Option('--embodiments <list>', 'embodiments the robots use').default(EMBODIMENT_NAMES.join(',')))
  .option('--ab <control:candidate>', 'instead of conditions: an A/B test of two versions through SetTrafficSplit, until GetExperiment decides')
  .option('--ab-max-episodes <n>', 'A/B: start no more episodes than this, decided or not', number(2, true), 600)
  .addOption(new Option('--sticky-key <key>', 'A/B: what keeps its version').choices(['episode', 'robot']).default('episode'))
  .addOption(
    new Option(
      '--chunking <mode>',
      'real-time chunking: the robot sends the rest of its chunk as the committed prefix and switches --delay ticks after the observation; naive, rtc (inpainting), ensemble and condition (a policy trained with prefix conditioning) are the server methods; none sends no prefix',
    )
      .choices([...CHUNKING_MODES])
      .default('none'),
  )
  .option(
    '--delay <steps>',
    'injected inference delay in control steps (with --chunking): the new chunk takes over this many ticks after its observation',
    number(0, true),
    0,
  )
  .option(
    '--estimate-delay',
    "with --chunking and --clock realtime: the robot sends its control period instead of --delay over a StreamPredict stream, the server estimates d from the stream's latency, and the robot switches at that d (or when the answer comes, if later)",
  )
  .option(
    '--delay-window <n>',
    "with --chunking and --clock realtime: the robot declares d as the most ticks any of its last n answers took to arrive (RTC's rule, as the clients' RealtimeChunker does); 0 = off",
    number(0, true),
    0,
  )
  .addOption(
    new Option(
      '--commit <what>',
      'with --chunking: the robot commits the rest of its chunk (rest), or only the --delay actions that run before the switch (delay)',
    )
      .choices([...COMMIT_MODES])
      .default('rest'),
  )
  .option('--plot <file>', 'write a PNG of success rate vs N_o (from the scaling conditions)')
  .option('--quiet', 'no progress bars');

function abVersions(spec: string): { control: number; candidate: number } {
  const [control, candidate] = spec.split(':').map(Number);
  if (!(Number.isInteger(control) && Number.isInteger(candidate) && control >= 1 && candidate >= 1 && control !== candidate)) {
    throw new Error(`--ab ${JSON.stringify(spec)}: expected control:candidate, two different versions, e.g. 3:1`);
  }
  return { control, candidate };
}

function conditionsFrom(o: FleetOptions): Condition[] {
  if (o.ab) {
    const { control, candidate } = abVersions(o.ab);
    return [condition(control, 4, 4), condition(candidate, 4, 4)];
  }
  if (o.conditions) return parseConditions(o.conditions);
  return o.experiment.split(',').flatMap((name) => {
    const make = EXPERIMENTS[name.trim() as ExperimentName];
    if (!make) throw new Error(`unknown experiment ${JSON.stringify(name)}; known: ${Object.keys(EXPERIMENTS).join(', ')}`);
    return make();
  });
}

function embodimentsFrom(o: FleetOptions): EmbodimentName[] {
  const list = o.embodiments.split(',').map((s) => s.trim());
  for (const e of list) if (!(EMBODIMENT_NAMES as readonly string[]).includes(e)) throw new Error(`unknown embodiment ${e}`);
  return list as EmbodimentName[];
}

/** The versions the conditions pin must be READY, and their manifests must describe the push task. */
function checkModels(
  models: ModelList,
  o: FleetOptions,
  conditions: readonly Condition[],
  embodiments: readonly EmbodimentName[],
): { imageSize: number; horizon: number } {
  const versions = models.models.filter((m) => m.name === o.model);
  let imageSize = 0;
  let horizon = 0;
  for (const v of new Set(conditions.map((c) => c.version))) {
    const m = versions.find((x) => x.version === v);
    if (!m || m.state !== 'READY') throw new Error(`${o.model}@${v} is not READY on the server (${m ? m.state : 'not loaded'})`);
    for (const e of embodiments) if (!m.embodiments.some((x) => x.name === e)) throw new Error(`${o.model}@${v} has no embodiment ${e}`);
    imageSize = m.imageHeight;
    horizon = m.actionHorizon;
    if (o.chunking !== 'none' && o.execute + o.delay > horizon) {
      throw new Error(`--execute ${o.execute} + --delay ${o.delay} exceeds the action horizon ${horizon}: the robot would run out of committed actions`);
    }
  }
  return { imageSize, horizon };
}

async function runCondition(
  condition: Condition,
  robots: readonly PushRobot[],
  o: FleetOptions,
  embodiments: readonly EmbodimentName[],
  bars: cliProgress.MultiBar | undefined,
): Promise<EpisodeResult[]> {
  // The same layouts for every condition; embodiments alternate over the seeds.
  const queues = new Map<EmbodimentName, EpisodeSpec[]>(embodiments.map((e) => [e, []]));
  for (let i = 0; i < o.episodes; i++) {
    const embodiment = embodiments[i % embodiments.length];
    queues.get(embodiment)!.push({ condition, seed: o.seedStart + i, embodiment });
  }
  const results: EpisodeResult[] = [];
  const bar = bars?.create(o.episodes, 0, { condition: condition.id.padEnd(28), success: '-' });
  await Promise.all(
    robots.map(async (robot, i) => {
      const queue = queues.get(embodiments[i % embodiments.length])!;
      for (let spec = queue.shift(); spec; spec = queue.shift()) {
        const r = await robot.runEpisode(spec);
        results.push(r);
        const wins = results.filter((x) => x.success).length;
        bar?.update(results.length, { success: `${wins}/${results.length} (${((100 * wins) / results.length).toFixed(0)}%)` });
      }
    }),
  );
  bar?.stop();
  return results.sort((a, b) => a.seed - b.seed);
}

async function main(): Promise<void> {
  addResultOptions(program).parse();
  const o = program.opts<FleetOptions>();
  const conditions = conditionsFrom(o);
  const embodiments = embodimentsFrom(o);
  if (o.robots < embodiments.length) throw new Error(`--robots must be at least the number of embodiments (${embodiments.length})`);
  if (o.delay > 0 && o.chunking === 'none') throw new Error(`--delay needs --chunking ${CHUNKING_MODES.filter((m) => m !== 'none').join(', ')}`);
  if (o.estimateDelay) {
    if (o.chunking === 'none') throw new Error(`--estimate-delay needs --chunking ${CHUNKING_MODES.filter((m) => m !== 'none').join(', ')}`);
    if (o.clock !== 'realtime')
      throw new Error('--estimate-delay needs --clock realtime: the server estimates d from wall-clock latency, which lockstep does not spend');
    if (o.delay > 0) throw new Error('--estimate-delay replaces --delay: the server chooses d');
    if (o.commit !== 'rest') throw new Error('--estimate-delay needs --commit rest: the robot cannot commit exactly d actions before it knows d');
  }
  if (o.delayWindow > 0) {
    if (o.chunking === 'none') throw new Error(`--delay-window needs --chunking ${CHUNKING_MODES.filter((m) => m !== 'none').join(', ')}`);
    if (o.clock !== 'realtime')
      throw new Error('--delay-window needs --clock realtime: it measures how many ticks answers take, which lockstep does not spend');
    if (o.delay > 0 || o.estimateDelay) throw new Error('--delay-window replaces --delay and --estimate-delay: the robot measures d');
    if (o.commit !== 'rest') throw new Error('--delay-window needs --commit rest');
  }
  const started = new Date().toISOString();
  let server: ServerProcess | undefined;
  const serverArgs = o.serverArgs.split(/\s+/).filter((a) => a.length > 0);
  if (!o.address) {
    process.stderr.write(`starting dust-serve on ${o.repository} ...\n`);
    // A fresh, in-memory experiment book: an A/B run starts from zero counts and leaves no file behind.
    server = await startServerProcess({
      modelRepository: o.repository,
      threads: o.threads,
      flags: ['--default-model', o.model, '--experiment-db', ':memory:', ...serverArgs],
    });
  }
  const address = o.address ?? server!.address;
  const client = new DustClient(address);
  try {
    const { imageSize, horizon } = checkModels(await client.listModels({ deadlineMs: 10_000 }), o, conditions, embodiments);
    const robots: PushRobot[] = [];
    for (let i = 0; i < o.robots; i++) {
      const env = await PushEnv.create(embodiments[i % embodiments.length]);
      robots.push(
        new PushRobot({
          index: i,
          client,
          env,
          model: o.model,
          controlHz: o.controlHz,
          clock: o.clock,
          execute: o.execute,
          imageSize,
          requestDeadlineMs: o.requestDeadlineMs,
          pinVersion: !o.ab,
          chunking: o.chunking,
          delay: o.delay,
          estimateDelay: o.estimateDelay === true,
          delayWindow: o.delayWindow,
          commit: o.commit,
          horizon,
        }),
      );
    }
    const bars = o.quiet
      ? undefined
      : new cliProgress.MultiBar(
          {
            format: '{condition} [{bar}] {value}/{total} episodes | success {success}',
            stream: process.stderr,
            noTTYOutput: true,
            notTTYSchedule: 5000,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
    const summaries: ConditionSummary[] = [];
    const byCondition = new Map<string, EpisodeResult[]>();
    let ab: AbReport | undefined;
    if (o.ab) {
      const { control, candidate } = abVersions(o.ab);
      const bar = bars?.create(o.abMaxEpisodes, 0, { condition: `A/B v${control} vs v${candidate}`.padEnd(28), success: '-' });
      ab = await runAb(
        client,
        {
          model: o.model,
          control,
          candidate,
          stickyKey: o.stickyKey,
          salt: `fleet-ab-${o.seedStart}`,
          maxEpisodes: o.abMaxEpisodes,
          actionSteps: 4,
          visionSteps: 4,
        },
        robots.length,
        embodiments,
        o.seedStart,
        (i, spec) => robots[i].runEpisode(spec),
        (_, look) =>
          bar?.update(look.outcomes, {
            success: `v${control} ${look.control.successes}/${look.control.episodes}, v${candidate} ${look.candidate.successes}/${look.candidate.episodes}, p ${look.always_valid_p_value.toFixed(3)} ${look.decision}`,
          }),
      );
      bar?.stop();
    }
    for (const c of o.ab ? [] : conditions) {
      const cpu0 = server?.cpuSeconds();
      const t0 = performance.now();
      const results = await runCondition(c, robots, o, embodiments, bars);
      const wallS = (performance.now() - t0) / 1000;
      byCondition.set(c.id, results);
      summaries.push(summarizeCondition(c, o.model, results, wallS, server && cpu0 !== undefined ? server.cpuSeconds() - cpu0 : undefined));
    }
    bars?.stop();
    const report = {
      command: `npm run fleet -- ${process.argv.slice(2).join(' ')}`,
      started,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
      server: server ? { args: server.args } : { address },
      settings: {
        robots: o.robots,
        embodiments,
        episodes_per_condition: o.ab ? null : o.episodes,
        held_out_seeds: o.ab ? [o.seedStart, o.seedStart + (ab?.episodes_started ?? 0) - 1] : [o.seedStart, o.seedStart + o.episodes - 1],
        control_hz: o.controlHz,
        clock: o.clock,
        execute: o.execute,
        chunking: o.chunking,
        delay_steps: o.estimateDelay ? 'estimated' : o.delayWindow > 0 ? 'measured' : o.delay,
        delay_window: o.delayWindow,
        commit: o.commit,
        image_size: imageSize,
      },
      ...(ab ? { ab } : { conditions: summaries, comparisons: compareConditions(conditions, byCondition) }),
    };
    writeResult(resultMeta('push-fleet', { serverArgs, startedAt: new Date(started) }), report, o, pushFleetSummary(report));
    if (o.plot) {
      const spec = scalingPlot(summaries, { ...report.settings, episodes_per_condition: o.episodes });
      if (spec) await writePlot(spec, o.plot);
      else process.stderr.write("--plot: no scaling conditions (the first condition's version, N_A = 4 or N_A = N_o) to plot\n");
    }
    for (const r of robots) r.dispose();
  } finally {
    client.close();
    await server?.stop();
  }
}

process.on('exit', killAllServers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllServers();
    process.exit(130);
  });
}
main().catch((err: unknown) => {
  process.stderr.write(`fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  killAllServers();
  process.exit(1);
});
