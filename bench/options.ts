import type { ViewSide } from './requests.js';
/** Options of the fleet benchmark, with their defaults; the CLI (fleet.ts) fills them from flags. */
import type { Arrivals } from './workload.js';

export interface BenchOptions {
  /** Simulated robots. @default 64 */
  readonly robots: number;
  /** @default 'stream' */
  readonly rpc: 'stream' | 'predict';
  /** Requests per second per robot; 0 = closed loop. @default 0 */
  readonly rateHz: number;
  /** Inter-arrival law of open-loop robots. @default 'fixed' */
  readonly arrivals: Arrivals;
  /** Measured seconds per mode. @default 12 */
  readonly durationS: number;
  /** Seconds of load before the measured window. @default 3 */
  readonly warmupS: number;
  /** Request classes, action_steps:vision_steps, round-robin over robots. @default "4:4" */
  readonly mix: string;
  /** sampling.latency_budget_ms of every request; 0 = none. @default 0 */
  readonly budgetMs: number;
  /** sampling.strict_budget of every budgeted request: refused rather than answered late. @default false */
  readonly strictBudget: boolean;
  /** Upper bound for N_o in budget mode. @default 64 */
  readonly visionCap: number;
  /** Budget of target 10a. @default DEFAULT_PLAN_BUDGET_MS (200) */
  readonly planBudgetMs: number;
  /** Poisson load of target 10a as a fraction of the step 4:4 saturation throughput. @default 0.5 */
  readonly budgetLoad: number;
  /** ONNX Runtime intra-op threads (server and offline). @default DEFAULT_THREADS */
  readonly threads: number;
  /** gRPC connections shared by the robots. @default 1 */
  readonly channels: number;
  /** @default "models" */
  readonly modelRepository: string;
  /** Model name ("" = the repository's first, which the server serves by default). @default "" */
  readonly model: string;
  /** Batch sizes the offline mode tries. @default [1, 8, 16, 32, 64] */
  readonly offlineBatches: readonly number[];
  /** Timed seconds per offline batch size. @default 2 */
  readonly offlineSeconds: number;
  /** Extra flags for every server, e.g. ["--max-queue-delay-ms", "1"]. @default [] */
  readonly serverArgs: readonly string[];
  /** Flags for the server's node process, e.g. ["--cpu-prof"] to profile it. @default [] */
  readonly serverNodeArgs: readonly string[];
  /** Health-check interval of the prober. @default 20 */
  readonly probeIntervalMs: number;
  /** Deadline of each unary Predict. @default 30000 */
  readonly unaryDeadlineMs: number;
  /** A closed-loop robot's wait before asking again after an error. @default RETRY_DELAY_MS (robot.ts) */
  readonly retryDelayMs: number;
  /**
   * In --targets, runs measured while other processes or the hypervisor took more than DISTURBED_CORES are
   * repeated up to this many times; the least disturbed attempt is kept. @default 1
   */
  readonly retryDisturbed: number;
  /** No progress line. @default false */
  readonly quiet: boolean;
  /** Side of the JPEG views robots send, or 'model' for the model's image size. @default 64 */
  readonly viewSide: ViewSide;
}

/**
 * ORT intra-op threads. On the 2-core benchmark machine 1 served more requests/s than 2: the server's event
 * loop, its image decoding and the benchmark's robots need the second core (BENCHMARKS.md, "Threads").
 */
export const DEFAULT_THREADS = 1;
export const DEFAULT_DURATION_S = 12;
export const DEFAULT_WARMUP_S = 3;
export const DEFAULT_ROBOTS = 64;
export const DEFAULT_VISION_CAP = 64;
export const DEFAULT_OFFLINE_SECONDS = 2;
export const DEFAULT_UNARY_DEADLINE_MS = 30_000;
export const DEFAULT_RETRY_DISTURBED = 1;
/** otherCores + stealCores above which a run counts as disturbed by the rest of a shared machine. */
export const DISTURBED_CORES = 0.15;
