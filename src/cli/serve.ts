/** `dust-serve serve`: flags, DUST_* environment variables and a config file feed one options object. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { startServer } from '../api/index.js';
import {
  compileServeOptions,
  envName,
  flagName,
  OPTION_KEYS,
  OPTION_TABLE,
  optionsFromEnv,
  optionsFromFile,
  sliceOf,
  type ServeOptionsInput,
} from '../config/index.js';
import { redactUrl } from '../experiment/index.js';
import { createLogger, startTracing } from '../telemetry/index.js';

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('serve the models of a repository over gRPC');
  cmd.option('--config <file>', 'JSON config file with the same keys as the flags (camelCase)', process.env.DUST_CONFIG);
  // One flag per row of the option table; commander names each flag's value by the option's key.
  for (const key of OPTION_KEYS) {
    const { arg, help, default: value } = OPTION_TABLE[key];
    cmd.option(`${flagName(key)} ${arg}`, `${help} (env ${envName(key)}; default ${JSON.stringify(value)})`);
  }
  cmd.action(async (flags: Record<string, string | undefined>) => {
    const fromFile: ServeOptionsInput = flags.config ? optionsFromFile(JSON.parse(readFileSync(flags.config, 'utf8')), flags.config) : {};
    const fromFlags: ServeOptionsInput = {};
    for (const key of OPTION_KEYS) if (flags[key] !== undefined) (fromFlags as Record<string, string>)[key] = flags[key]!;
    const options = compileServeOptions(fromFile, optionsFromEnv(process.env), fromFlags);
    const { logLevel, logPretty } = sliceOf(options, 'logger');
    const log = createLogger({ level: logLevel, pretty: logPretty });
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
