/** `dust-serve serve`: flags, DUST_* environment variables and a config file feed one options object. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { startServer } from '../api/index.js';
import { compileServeOptions, DEFAULT_SERVE_OPTIONS, envName, optionsFromEnv, optionsFromFile, type ServeOptions, type ServeOptionsInput } from '../config/index.js';
import { createLogger } from '../telemetry/index.js';

const FLAGS: ReadonlyArray<[keyof ServeOptions, string, string]> = [
  ['host', '--host <host>', 'interface to listen on'],
  ['port', '--port <port>', 'gRPC port'],
  ['modelRepository', '--model-repository <dir>', 'model repository root (<name>/<version>/manifest.json)'],
  ['defaultModel', '--default-model <name>', 'model for requests with an empty model field'],
  ['device', '--device <device>', 'cpu | webgpu | cuda | auto'],
  ['threads', '--threads <n>', 'ONNX Runtime intra-op threads per model version'],
  ['maxVlmBatch', '--max-vlm-batch <n>', 'most requests in one VLM call'],
  ['maxDenoiseBatch', '--max-denoise-batch <n>', 'most rows in one denoiser call'],
  ['maxQueueDelayMs', '--max-queue-delay-ms <ms>', 'longest wait for a VLM batch to fill'],
  ['maxQueue', '--max-queue <n>', 'waiting requests per model before RESOURCE_EXHAUSTED'],
  ['maxActive', '--max-active <n>', 'rows per model in the denoiser stage'],
  ['batching', '--batching <mode>', 'step (join/leave every step) | request (whole-request batches)'],
  ['budgetSafety', '--budget-safety <fraction>', 'fraction of a latency budget N_o is planned to fill'],
  ['budgetLoadHeadroom', '--budget-load-headroom <sd>', 'standard deviations of extra arrivals the budget planner plans for'],
  ['decodeThreads', '--decode-threads <n>', 'image-decoding threads; 0 = cores left after --threads'],
  ['decodeNiceness', '--decode-niceness <n>', 'nice value of the decode threads (Linux); 0 = normal priority'],
  ['maxMessageBytes', '--max-message-bytes <n>', 'largest accepted request'],
  ['shutdownGraceSeconds', '--shutdown-grace-seconds <s>', 'time in-flight requests get on SIGTERM'],
  ['warmup', '--warmup <bool>', 'run synthetic batches at load'],
  ['logLevel', '--log-level <level>', 'trace | debug | info | warn | error'],
  ['logPretty', '--log-pretty <bool>', 'human-readable logs (development)'],
];

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('serve the models of a repository over gRPC');
  cmd.option('--config <file>', 'JSON config file with the same keys as the flags (camelCase)', process.env.DUST_CONFIG);
  for (const [key, flag, help] of FLAGS) {
    cmd.option(flag, `${help} (env ${envName(key)}; default ${JSON.stringify(DEFAULT_SERVE_OPTIONS[key])})`);
  }
  cmd.action(async (flags: Record<string, string | undefined>) => {
    const fromFile: ServeOptionsInput = flags.config ? optionsFromFile(JSON.parse(readFileSync(flags.config, 'utf8')), flags.config) : {};
    const fromFlags: ServeOptionsInput = {};
    for (const [key] of FLAGS) if (flags[key] !== undefined) (fromFlags as Record<string, string>)[key] = flags[key]!;
    const options = compileServeOptions(fromFile, optionsFromEnv(process.env), fromFlags);
    const log = createLogger({ level: options.logLevel, pretty: options.logPretty });
    log.info({ options }, 'starting dust-serve');
    const server = await startServer(options, log);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        void server.shutdown(signal).then(() => process.exit(0));
      });
    }
  });
}
