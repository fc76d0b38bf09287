#!/usr/bin/env node
/**
 * `npm run bench`: the fleet simulator. N robots against the real server, one server
 * process per mode, compared with the serving-free offline limit; a summary on stdout, the JSON in a file
 * (results.ts), a progress line on stderr. `--targets` measures every target (targets.ts) in one run. BENCHMARKS.md explains the modes.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { Command, Option } from 'commander';
import { number, numberList, viewSide, words } from './cli-args.js';
import { MODE_NAMES, parseModes, SERVED_MODES, type ModeName } from './modes.js';
import { DEFAULT_OFFLINE_BATCHES, offlineEngine, runOffline, type OfflineResult } from './offline.js';
import {
  DEFAULT_DURATION_S,
  DEFAULT_OFFLINE_SECONDS,
  DEFAULT_RETRY_DISTURBED,
  DEFAULT_ROBOTS,
  DEFAULT_THREADS,
  DEFAULT_UNARY_DEADLINE_MS,
  DEFAULT_VISION_CAP,
  DEFAULT_WARMUP_S,
  type BenchOptions,
} from './options.js';
import { Progress } from './progress.js';
import { isolatedRepository } from './repository.js';
import { findModel, IMAGE_SIDE, type ViewSide } from './requests.js';
import { runServedMode, servedRunOptions, type ServedResult } from './run-served.js';
import { DEFAULT_PROBE_INTERVAL_MS } from './health-probe.js';
import { killAllServers } from './server-process.js';
import { RETRY_DELAY_MS } from './robot.js';
import { round } from './stats.js';
import { DEFAULT_PLAN_BUDGET_MS, DEFAULT_PLAN_LOAD_FRACTION, DEFAULT_TARGET_BUDGET_MS, parseTargets, runTargets } from './targets.js';
import { requestClasses, type Workload } from './workload.js';
import { addResultOptions, resultMeta, writeResult } from './results.js';
import { fleetSummary } from './summaries.js';

const program = new Command('bench')
  .description('DUST fleet simulator: robots against the real dust-serve, compared across batching modes and with the offline limit')
  .option('--robots <n>', 'simulated robots', number(1, true), DEFAULT_ROBOTS)
  .addOption(new Option('--rpc <rpc>', 'StreamPredict sessions or unary Predict calls').choices(['stream', 'predict']).default('stream'))
  .option('--rate <hz>', 'requests per second per robot; 0 = closed loop (next request when the previous returns)', number(0), 0)
  .addOption(new Option('--arrivals <law>', 'open-loop inter-arrival times (with --rate > 0)').choices(['fixed', 'poisson']).default('fixed'))
  .option('--duration <s>', 'measured seconds per mode', number(0.1), DEFAULT_DURATION_S)
  .option('--warmup <s>', 'seconds of load before the measured window', number(0), DEFAULT_WARMUP_S)
  .option('--mix <classes>', 'request classes action_steps:vision_steps, assigned round-robin to robots', '4:4')
  .option(
    '--budget-ms <ms>',
    `latency budget of every request (the server picks N_o <= --vision-cap); 0 = none; --targets default ${DEFAULT_TARGET_BUDGET_MS}`,
    number(0, true),
    0,
  )
  .option('--strict-budget', 'with --budget-ms: requests set strict_budget (refused with DEADLINE_EXCEEDED rather than answered late)')
  .option('--vision-cap <n>', 'upper bound for N_o in budget mode', number(1, true), DEFAULT_VISION_CAP)
  .option('--plan-budget-ms <ms>', 'budget of target 10a (budget planner under Poisson load)', number(1, true), DEFAULT_PLAN_BUDGET_MS)
  .option(
    '--budget-load <fraction>',
    'Poisson load of target 10a, as a fraction of the step 4:4 saturation throughput',
    number(0.01),
    DEFAULT_PLAN_LOAD_FRACTION,
  )
  .option('--modes <list>', `modes to run, comma-separated: ${MODE_NAMES.join(', ')}`, 'step')
  .option('--threads <n>', 'ONNX Runtime intra-op threads for the server (and offline)', number(1, true), DEFAULT_THREADS)
  .option('--channels <n>', "gRPC connections the robots share (raised to robots / the server's streams per connection)", number(1, true), 1)
  .option('--model-repository <dir>', 'model repository the server loads', 'models')
  .option('--model <name>', 'model name to request ("" = the server default)', '')
  .option('--offline-batches <list>', 'batch sizes the offline mode tries', numberList(1, true), [...DEFAULT_OFFLINE_BATCHES])
  .option('--offline-seconds <s>', 'timed seconds per offline batch size', number(0.1), DEFAULT_OFFLINE_SECONDS)
  .option('--server-args <flags>', 'extra flags for every server, space-separated, e.g. "--max-queue-delay-ms 1"', '')
  .option('--server-node-args <flags>', 'flags for the server\'s node process, space-separated, e.g. "--cpu-prof --cpu-prof-dir=prof"', '')
  .option('--probe-interval-ms <ms>', 'health-check interval during the measured window', number(1), DEFAULT_PROBE_INTERVAL_MS)
  .option('--unary-deadline-ms <ms>', 'deadline of each unary Predict', number(1), DEFAULT_UNARY_DEADLINE_MS)
  .option('--retry-delay-ms <ms>', "a closed-loop robot's wait before asking again after an error (its next control tick)", number(0), RETRY_DELAY_MS)
  .option('--view-side <px|model>', "side of the JPEG views robots send, or 'model' for the model's image size", viewSide, IMAGE_SIDE)
  .option('--targets [list]', 'measure the targets (4a..4e, 10a..10c): all, or some, e.g. "4d,10a,10b" (a..e = 4a..4e; ignores --modes, --mix, --rate)')
  .option(
    '--retry-disturbed <n>',
    'in --targets, repeat a run up to n times while other work takes > 0.15 cores of the machine',
    number(0, true),
    DEFAULT_RETRY_DISTURBED,
  )
  .option('--quiet', 'no progress line')
  .addHelpText(
    'after',
    `
Modes:
${Object.values(SERVED_MODES)
  .map((m) => `  ${m.name.padEnd(12)} ${m.flags.join(' ')}: ${m.description}`)
  .join('\n')}
  offline      no server: the server's executor (OnnxExecutor) in a tight loop at the best of --offline-batches

Examples:
  npm run bench -- --modes step,max-batch-1,request,offline --robots 64
  npm run bench -- --mix 4:4,4:16,4:64 --modes step,request
  npm run bench -- --budget-ms 50 --vision-cap 64 --rate 5 --arrivals poisson
  npm run bench -- --targets --out bench-targets.json`,
  );

interface CliFlags {
  robots: number;
  rpc: 'stream' | 'predict';
  rate: number;
  arrivals: 'fixed' | 'poisson';
  duration: number;
  warmup: number;
  mix: string;
  budgetMs: number;
  strictBudget?: boolean;
  visionCap: number;
  planBudgetMs: number;
  budgetLoad: number;
  modes: string;
  threads: number;
  channels: number;
  modelRepository: string;
  model: string;
  offlineBatches: number[];
  offlineSeconds: number;
  serverArgs: string;
  serverNodeArgs: string;
  probeIntervalMs: number;
  unaryDeadlineMs: number;
  retryDelayMs: number;
  viewSide: ViewSide;
  targets?: string | true;
  retryDisturbed: number;
  out?: string;
  save?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function benchOptions(f: CliFlags): BenchOptions {
  return {
    robots: f.robots,
    rpc: f.rpc,
    rateHz: f.rate,
    arrivals: f.arrivals,
    durationS: f.duration,
    warmupS: f.warmup,
    mix: f.mix,
    budgetMs: f.budgetMs,
    strictBudget: f.strictBudget === true,
    visionCap: f.visionCap,
    planBudgetMs: f.planBudgetMs,
    budgetLoad: f.budgetLoad,
    threads: f.threads,
    channels: f.channels,
    modelRepository: f.modelRepository,
    model: f.model,
    offlineBatches: f.offlineBatches,
    offlineSeconds: f.offlineSeconds,
    serverArgs: words(f.serverArgs),
    serverNodeArgs: words(f.serverNodeArgs),
    probeIntervalMs: f.probeIntervalMs,
    unaryDeadlineMs: f.unaryDeadlineMs,
    retryDelayMs: f.retryDelayMs,
    retryDisturbed: f.retryDisturbed,
    quiet: f.quiet === true,
    viewSide: f.viewSide,
  };
}

/** Ratios between the modes of one run, when the modes they need were run. */
function comparisons(results: Partial<Record<ModeName, ServedResult | OfflineResult>>, firstClass: string): Record<string, number> {
  const out: Record<string, number> = {};
  const step = results.step as ServedResult | undefined;
  const request = results.request as ServedResult | undefined;
  if (step && results['max-batch-1']) out.stepOverMaxBatch1Throughput = round(step.throughputRps / results['max-batch-1'].throughputRps, 4);
  if (step && results.offline) out.stepOverOfflineThroughput = round(step.throughputRps / results.offline.throughputRps, 4);
  if (step && request) {
    out.stepOverRequestThroughput = round(step.throughputRps / request.throughputRps, 4);
    const p50 = (r: ServedResult) => r.classes[firstClass]?.latencyMs.p50 ?? NaN;
    out[`stepOverRequestP50_${firstClass}`] = round(p50(step) / p50(request), 4);
  }
  return out;
}

/** The commit the measured build came from, and whether src/ had uncommitted changes. */
function sourceVersion(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', '--short', 'HEAD'), srcDirty: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  addResultOptions(program).parse();
  const flags = program.opts<CliFlags>();
  const given = benchOptions(flags);
  const progress = new Progress(given.quiet);
  const model = await findModel(given.modelRepository, given.model);
  const repository = isolatedRepository(model);
  process.once('exit', () => repository.remove());
  // Servers load only the benchmarked version; requests still name the model the way robots would.
  const o: BenchOptions = { ...given, modelRepository: repository.root };
  const startedAt = new Date();
  const meta = {
    model: `${model.manifest.name}@${model.manifest.version}`,
    host: { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version },
    modelDir: model.dir,
    source: sourceVersion(),
    startedAt: startedAt.toISOString(),
    options: given,
  };
  let result: object;
  let lines: string[];
  if (flags.targets) {
    const report = await runTargets(o, model, progress, parseTargets(flags.targets));
    const summary = Object.fromEntries(
      Object.entries(report.targets).map(([k, t]) => [k, `${t!.ratio} ${t!.op} ${t!.threshold}: ${t!.pass ? 'PASS' : 'FAIL'}`]),
    );
    result = { ...meta, summary, ...report };
    lines = fleetSummary(report);
  } else {
    const modes = parseModes(flags.modes);
    if (o.strictBudget && o.budgetMs <= 0) throw new Error('--strict-budget needs --budget-ms above 0');
    const classes = requestClasses(o.mix, o.budgetMs, o.visionCap, o.strictBudget);
    const workload: Workload = { classes, robots: o.robots, rateHz: o.rateHz, arrivals: o.arrivals, rpc: o.rpc, retryDelayMs: o.retryDelayMs };
    const results: Partial<Record<ModeName, ServedResult | OfflineResult>> = {};
    for (const mode of modes) {
      if (mode === 'offline') {
        results.offline = await runOffline({
          model,
          engine: offlineEngine(o.serverArgs),
          classes,
          threads: o.threads,
          batches: o.offlineBatches,
          secondsPerBatch: o.offlineSeconds,
          progress,
          label: 'offline',
        });
      } else {
        results[mode] = await runServedMode(servedRunOptions(o, { mode: SERVED_MODES[mode], workload, model, progress, label: mode }));
      }
      progress.note(`[${mode}] ${results[mode]!.throughputRps} req/s`);
    }
    const ratios = comparisons(results, classes[0].label);
    result = { ...meta, comparisons: ratios, modes: results };
    lines = fleetSummary({ modes: results, comparisons: ratios });
  }
  writeResult(resultMeta('fleet', { serverArgs: given.serverArgs, startedAt }), result, flags, lines);
}

process.on('exit', killAllServers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping servers\n`);
    killAllServers();
    process.exit(130);
  });
}

main().catch((err: Error) => {
  process.stderr.write(`\nbench: ${err.stack ?? err.message}\n`);
  killAllServers();
  process.exit(1);
});
