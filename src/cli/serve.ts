/** `dust-serve serve`: flags, DUST_* environment variables and a config file feed one options object. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { startServer } from '../api/index.js';
import { compileServeOptions, DEFAULT_SERVE_OPTIONS, envName, optionsFromEnv, optionsFromFile, type ServeOptions, type ServeOptionsInput } from '../config/index.js';
import { redactUrl } from '../experiment/index.js';
import { createLogger, startTracing } from '../telemetry/index.js';

const FLAGS: ReadonlyArray<[keyof ServeOptions, string, string]> = [
  ['host', '--host <host>', 'interface to listen on'],
  ['port', '--port <port>', 'gRPC port'],
  ['modelRepository', '--model-repository <dir>', 'model repository root (<name>/<version>/manifest.json)'],
  ['defaultModel', '--default-model <name>', 'model for requests with an empty model field'],
  ['allowPackageSymlinks', '--allow-package-symlinks <bool>', 'load model and package folders that link out of the model repository'],
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
  ['workerNiceness', '--worker-niceness <n>', 'nice value of the inference and helper threads, all but the event loop (Linux); 0 = normal priority'],
  ['maxMessageBytes', '--max-message-bytes <n>', 'largest accepted request'],
  ['maxIdBytes', '--max-id-bytes <n>', 'longest request_id, robot_id, episode_id'],
  ['maxInstructionBytes', '--max-instruction-bytes <n>', 'longest instruction'],
  ['maxConcurrentStreams', '--max-concurrent-streams <n>', 'streams one HTTP/2 connection may have open (advertised in SETTINGS)'],
  ['maxOpenCalls', '--max-open-calls <n>', 'calls open on the whole server (all but health) before RESOURCE_EXHAUSTED'],
  ['maxWatchStreams', '--max-watch-streams <n>', 'health Watch streams open on the whole server (0 = Watch refused)'],
  ['maxWatchStreamsPerConnection', '--max-watch-streams-per-connection <n>', 'health Watch streams open on one connection (0 = Watch refused)'],
  ['peerRefusalsPerSecond', '--peer-refusals-per-second <n>', 'calls one peer address may have refused before sending a message, per second and at once; beyond it its refused connections are closed (0 = no limit)'],
  ['shutdownGraceSeconds', '--shutdown-grace-seconds <s>', 'time in-flight requests get on SIGTERM'],
  ['maxConnectionAgeSeconds', '--max-connection-age-seconds <s>', 'ask clients to reconnect (and re-resolve DNS) after this long; 0 = never'],
  ['warmup', '--warmup <bool>', 'run synthetic batches at load'],
  ['logLevel', '--log-level <level>', 'trace | debug | info | warn | error'],
  ['logPretty', '--log-pretty <bool>', 'human-readable logs (development)'],
  ['metricsPort', '--metrics-port <port>', 'Prometheus /metrics port; 0 = off'],
  ['metricsHost', '--metrics-host <host>', 'interface of the /metrics port; empty = --host'],
  ['metricsTokenFile', '--metrics-token-file <file>', 'file with the bearer token /metrics requires; empty = none'],
  ['tlsCert', '--tls-cert <file>', 'PEM certificate chain: TLS on the gRPC port (reloaded on change and SIGHUP)'],
  ['tlsKey', '--tls-key <file>', 'PEM private key of --tls-cert'],
  ['tlsClientCa', '--tls-client-ca <file>', 'PEM CA bundle: mutual TLS, clients need a certificate from it'],
  ['robotRateLimit', '--robot-rate-limit <per-second>', 'requests/s per caller (its credential, else its robot_id); 0 = no limit'],
  ['robotRateBurst', '--robot-rate-burst <n>', 'burst per caller; 0 = one second of --robot-rate-limit'],
  ['experimentDb', '--experiment-db <file>', 'SQLite file for experiments (":memory:" = not persisted)'],
  ['experimentStore', '--experiment-store <kind>', 'sqlite (one process, --experiment-db) | postgres (shared by replicas, --postgres-url)'],
  ['postgresUrl', '--postgres-url <url>', 'PostgreSQL URL of the shared experiment store (a secret: prefer the environment variable)'],
  ['experimentCountWaitMs', '--experiment-count-wait-ms <ms>', 'postgres: longest a response waits for its count to be committed'],
  ['experimentRefreshSeconds', '--experiment-refresh-seconds <s>', 'postgres: re-read splits this often in case a change notification is lost'],
  ['experimentAlpha', '--experiment-alpha <alpha>', 'significance level of experiment decisions'],
  ['experimentMixtureSd', '--experiment-mixture-sd <sd>', 'mixture SPRT: sd of the mixing distribution of the success-rate difference'],
  ['maxShadowInflight', '--max-shadow-inflight <n>', 'mirrored shadow requests in flight at once (0 = no shadow traffic)'],
  ['tokensFile', '--tokens-file <file>', 'JSON credentials [{token, role: robot|admin, name}]; turns authentication on (reloaded on change and SIGHUP)'],
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
    log.info({ options: { ...options, postgresUrl: redactUrl(options.postgresUrl) } }, 'starting dust-serve');
    const tracing = startTracing(process.env);
    const server = await startServer(options, log, { tracing });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        void server
          .shutdown(signal)
          .then(() => tracing?.shutdown())
          .then(() => process.exit(0));
      });
    }
    // SIGHUP re-reads the TLS certificate files and the tokens file (they are also watched); it never stops
    // the server.
    process.on('SIGHUP', () => void Promise.all([server.reloadCertificates(), server.reloadTokens()]));
  });
}
