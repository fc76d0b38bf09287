/**
 * Real-time chunking in the closed loop (docs/api.md, "Real-time chunking"): the push fleet (fleet.ts) once per
 * chunking method and injected inference delay, against one server, on the same held-out layouts, one version at
 * N_A = N_o = 4. Per cell: task success with its Wilson interval, the mean boundary discontinuity
 * |a_new(d) - a_old(d)| at chunk switches and the mean jerk of the executed actions. Then the verdict the method is
 * held to at one delay (default 4): real-time chunking (`rtc`, inpainting) keeps success within 5 points of its
 * zero-delay success while naive switching loses at least twice as much, and its discontinuity is at least 3x
 * smaller than naive switching's. A PNG of success vs delay with --plot.
 *
 *   npm run fleet:rtc -- [--version 1] [--methods naive,rtc,ensemble,condition] [--delays 0,1,2,4,8] [--episodes 200]
 *                        [--robots 8] [--execute 4] [--clock lockstep] [--commit rest|delay] [--verdict-delay 4] [--plot rtc.png] [--save]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { listOf, number, numberList } from '../cli-args.js';
import { addResultOptions, resultMeta, writeResult } from '../results.js';
import { startServerProcess } from '../server-process.js';
import { round } from '../stats.js';
import { writePlot, type Series } from './plot.js';
import { CHUNKING_MODES, COMMIT_MODES, type ChunkingMode } from './chunk-metrics.js';
import type { ConditionSummary } from './report.js';

const FLEET = fileURLToPath(new URL('./fleet.js', import.meta.url));
/** The fleet's chunking modes that send a prefix (every one but none). */
type Method = Exclude<ChunkingMode, 'none'>;
const METHODS = CHUNKING_MODES.filter((m): m is Method => m !== 'none');
const COLORS: Record<Method, string> = { naive: '#d62728', rtc: '#1f77b4', ensemble: '#2ca02c', condition: '#9467bd' };

interface Flags {
  version: number;
  methods: string[];
  delays: number[];
  episodes: number;
  robots: number;
  execute: number;
  clock: string;
  verdictDelay: number;
  commit: string;
  repository: string;
  model: string;
  threads: number;
  plot?: string;
  out?: string;
  save?: boolean;
  json?: boolean;
}

export interface SweepCell {
  readonly method: Method;
  readonly delay: number;
  readonly episodes: number;
  readonly successes: number;
  readonly success_rate: number;
  readonly ci95: readonly [number, number];
  readonly mean_boundary_discontinuity: number;
  readonly switches: number;
  readonly mean_jerk: number;
  readonly latency_p50_ms: number;
  readonly wall_s: number;
}

/** The methods the real-time chunking target is about, each judged against naive switching. */
export const REALTIME_METHODS = ['rtc', 'condition'] as const;
type RealtimeMethod = (typeof REALTIME_METHODS)[number];

export interface SweepVerdict {
  /** The real-time method judged (rtc: inpainting; condition: a policy trained with prefix conditioning). */
  readonly method: RealtimeMethod;
  readonly delay: number;
  /** Success at delay 0 minus success at `delay`, per method (points of success rate, 0-1). */
  readonly success_drop: Partial<Record<Method, number>>;
  readonly within_5_points: boolean;
  readonly naive_drop_at_least_twice: boolean;
  /** naive's boundary discontinuity over the method's at `delay`. */
  readonly discontinuity_ratio_naive_over_method: number;
  readonly discontinuity_3x_lower: boolean;
  readonly met: boolean;
}

/** The verdict on `method` at one delay from the cells (pure). */
export function verdict(cells: readonly SweepCell[], delay: number, method: RealtimeMethod = 'rtc'): SweepVerdict | undefined {
  const at = (m: Method, d: number) => cells.find((c) => c.method === m && c.delay === d);
  const [r0, r, n0, n] = [at(method, 0), at(method, delay), at('naive', 0), at('naive', delay)];
  if (!r0 || !r || !n0 || !n) return undefined;
  const drop: Partial<Record<Method, number>> = {};
  for (const m of METHODS) {
    const [c0, c] = [at(m, 0), at(m, delay)];
    if (c0 && c) drop[m] = round(c0.success_rate - c.success_rate, 4);
  }
  const rtcDrop = r0.success_rate - r.success_rate;
  const naiveDrop = n0.success_rate - n.success_rate;
  const ratio = r.mean_boundary_discontinuity > 0 ? n.mean_boundary_discontinuity / r.mean_boundary_discontinuity : Infinity;
  const within = rtcDrop <= 0.05;
  // "Loses at least twice as much": with rtc losing nothing, naive must lose something.
  const twice = naiveDrop > 0 && naiveDrop >= 2 * Math.max(rtcDrop, 0);
  return {
    method,
    delay,
    success_drop: drop,
    within_5_points: within,
    naive_drop_at_least_twice: twice,
    discontinuity_ratio_naive_over_method: round(ratio, 3),
    discontinuity_3x_lower: ratio >= 3,
    met: within && twice && ratio >= 3,
  };
}

function cellOf(method: Method, delay: number, s: ConditionSummary): SweepCell {
  return {
    method,
    delay,
    episodes: s.episodes,
    successes: s.successes,
    success_rate: s.success_rate,
    ci95: s.ci95,
    mean_boundary_discontinuity: s.mean_boundary_discontinuity,
    switches: s.switches,
    mean_jerk: s.mean_jerk,
    latency_p50_ms: s.latency_ms.p50,
    wall_s: s.wall_s,
  };
}

async function main(): Promise<void> {
  const program = new Command('fleet:rtc')
    .description('real-time chunking in the closed loop: success, boundary discontinuity and jerk per method and delay')
    .option('--version <n>', 'model version to run', number(1, true), 1)
    .option('--methods <list>', `comma-separated: ${METHODS.join(', ')}`, listOf, [...METHODS])
    .option('--delays <list>', 'injected inference delays in control steps', numberList(0, true), [0, 1, 2, 4, 8])
    .option('--episodes <n>', 'held-out episodes per cell (the same layouts in every cell)', number(1, true), 200)
    .option('--robots <n>', 'simulated robots', number(2, true), 8)
    .option('--execute <n>', 'actions executed before the next chunk is requested', number(1, true), 4)
    .option('--clock <clock>', 'lockstep (the delay is exactly the injected ticks) or realtime', 'lockstep')
    .option('--verdict-delay <n>', 'the delay the verdict is taken at', number(1, true), 4)
    .addOption(
      new Option('--commit <what>', 'what the robots commit: the rest of their chunk (rest) or the delay actions only (delay)')
        .choices([...COMMIT_MODES])
        .default('rest'),
    )
    .option('--repository <dir>', 'model repository the server loads', 'models/push-repo')
    .option('--model <name>', 'model name', 'dust-push')
    .option('--threads <n>', 'ONNX Runtime intra-op threads of the server', number(1, true), 1)
    .option('--plot <file>', 'write a PNG of success vs delay per method');
  addResultOptions(program).parse();
  const f = program.opts<Flags>();
  const methods = f.methods.map((m) => {
    if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown method ${JSON.stringify(m)}; known: ${METHODS.join(', ')}`);
    return m as Method;
  });
  const started = new Date();
  const server = await startServerProcess({
    modelRepository: f.repository,
    threads: f.threads,
    flags: ['--default-model', f.model, '--experiment-db', ':memory:'],
  });
  const cells: SweepCell[] = [];
  try {
    for (const method of methods) {
      for (const delay of f.delays) {
        process.stderr.write(`[fleet:rtc] ${method}, delay ${delay}: ${f.episodes} episodes ...\n`);
        const out = execFileSync(
          process.execPath,
          [
            FLEET,
            ...['--address', server.address, '--repository', f.repository, '--model', f.model],
            ...['--conditions', `${f.version}:4:4`, '--episodes', String(f.episodes), '--robots', String(f.robots)],
            ...['--execute', String(f.execute), '--clock', f.clock, '--chunking', method, '--delay', String(delay), '--commit', f.commit, '--quiet', '--json'],
          ],
          { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] },
        );
        const report = JSON.parse(out) as { conditions: ConditionSummary[] };
        const cell = cellOf(method, delay, report.conditions[0]);
        cells.push(cell);
        process.stderr.write(
          `[fleet:rtc] ${method}, delay ${delay}: ${cell.successes}/${cell.episodes} (${(100 * cell.success_rate).toFixed(1)}%), discontinuity ${cell.mean_boundary_discontinuity}, jerk ${cell.mean_jerk}\n`,
        );
      }
    }
  } finally {
    await server.stop();
  }
  const verdicts = REALTIME_METHODS.flatMap((m) => verdict(cells, f.verdictDelay, m) ?? []);
  const result = {
    settings: {
      version: f.version,
      model: f.model,
      repository: f.repository,
      episodes: f.episodes,
      robots: f.robots,
      execute: f.execute,
      clock: f.clock,
      commit: f.commit,
      action_steps: 4,
      vision_steps: 4,
    },
    cells,
    verdicts,
  };
  const lines = [
    `  ${cells.map((c) => `${c.method}@${c.delay}: ${(100 * c.success_rate).toFixed(1)}% disc ${c.mean_boundary_discontinuity}`).join('; ')}`,
    ...verdicts.map(
      (v) =>
        `  verdict on ${v.method} at delay ${v.delay}: ${v.met ? 'met' : 'not met'} (drops ${JSON.stringify(v.success_drop)}, discontinuity naive/${v.method} ${v.discontinuity_ratio_naive_over_method}x)`,
    ),
    ...(verdicts.length ? [] : ['  no verdict: needs naive and rtc or condition at delay 0 and the verdict delay']),
  ];
  writeResult(resultMeta('push-rtc', { startedAt: started }), result, f, lines);
  if (f.plot) {
    const series: Series[] = methods.map((m) => ({
      label: m === 'rtc' ? 'rtc (inpainting)' : m,
      color: COLORS[m],
      points: cells.filter((c) => c.method === m).map((c) => ({ x: c.delay, rate: c.success_rate, lo: c.ci95[0], hi: c.ci95[1], n: c.episodes })),
    }));
    await writePlot(
      {
        title: 'Push task success vs injected inference delay',
        subtitle: `${f.model}@${f.version}, N_A = N_o = 4, execute ${f.execute}, ${f.clock}, commits ${f.commit === 'delay' ? 'the delay' : 'the rest of its chunk'}, ${f.episodes} episodes per point`,
        xLabel: 'inference delay (control steps)',
        xScale: 'linear',
        series,
      },
      f.plot,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`fleet:rtc: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
