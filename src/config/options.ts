/**
 * Server options, compiled once at start-up into a frozen object. Command-line flags, DUST_* environment
 * variables and a JSON config file all feed it (precedence: flag > environment > file > default). Each option's
 * schema, default and documentation are a row of option-table.ts; the type and the defaults here come from it.
 */
import os from 'node:os';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors/index.js';
import { envName } from './option-names.js';
import { OPTION_KEYS, OPTION_TABLE, type OptionKey } from './option-table.js';

export { MAX_CONCURRENT_STREAMS_LIMIT, MAX_ID_BYTES_LIMIT } from './option-table.js';

/** One field per row of the option table, of the type its schema produces. */
export type ServeOptions = { [K in OptionKey]: z.output<(typeof OPTION_TABLE)[K]['schema']> };

export type DeviceOption = ServeOptions['device'];

export const DEFAULT_SERVE_OPTIONS: Readonly<ServeOptions> = Object.freeze(
  Object.fromEntries(OPTION_KEYS.map((key) => [key, OPTION_TABLE[key].default])) as ServeOptions,
);

export const DEFAULT_PORT = DEFAULT_SERVE_OPTIONS.port;
export const DEFAULT_EXPERIMENT_DB = DEFAULT_SERVE_OPTIONS.experimentDb;
export const DEFAULT_MAX_MESSAGE_BYTES = DEFAULT_SERVE_OPTIONS.maxMessageBytes;
export const DEFAULT_MAX_ID_BYTES = DEFAULT_SERVE_OPTIONS.maxIdBytes;
export const DEFAULT_MAX_INSTRUCTION_BYTES = DEFAULT_SERVE_OPTIONS.maxInstructionBytes;

const schema = z.object(Object.fromEntries(OPTION_KEYS.map((key) => [key, OPTION_TABLE[key].schema]))).strict();

export type ServeOptionsInput = { [K in keyof ServeOptions]?: ServeOptions[K] | string };

/** Validates and freezes; every problem is reported with the option's name. */
export function compileServeOptions(...layers: ServeOptionsInput[]): Readonly<ServeOptions> {
  const merged: Record<string, unknown> = { ...DEFAULT_SERVE_OPTIONS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) merged[k] = v;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new InvalidArgumentError(`invalid configuration: ${issues}`);
  }
  if (parsed.data.maxActive < parsed.data.maxDenoiseBatch) {
    throw new InvalidArgumentError('invalid configuration: maxActive must be at least maxDenoiseBatch');
  }
  if (!parsed.data.tlsCert !== !parsed.data.tlsKey) {
    throw new InvalidArgumentError('invalid configuration: tlsCert and tlsKey go together (the certificate chain and its private key)');
  }
  if (parsed.data.tlsClientCa && !parsed.data.tlsCert) {
    throw new InvalidArgumentError('invalid configuration: tlsClientCa (mutual TLS) needs tlsCert and tlsKey as well');
  }
  if (parsed.data.experimentStore === 'postgres' && !parsed.data.postgresUrl) {
    throw new InvalidArgumentError(
      'invalid configuration: experimentStore "postgres" needs postgresUrl (DUST_POSTGRES_URL=postgres://user@host:5432/db, the password in it or in PGPASSWORD)',
    );
  }
  if (parsed.data.metricsPort !== 0 && parsed.data.metricsPort === parsed.data.port) {
    throw new InvalidArgumentError('invalid configuration: metricsPort must differ from the gRPC port');
  }
  return Object.freeze(parsed.data as ServeOptions);
}

/** Decode threads to start: the option, or the cores the inference threads leave (at least 1). */
export function decodeThreadCount(options: Pick<ServeOptions, 'decodeThreads' | 'threads'>, cores = os.availableParallelism()): number {
  return options.decodeThreads > 0 ? options.decodeThreads : Math.max(1, cores - options.threads);
}

export function optionsFromEnv(env: NodeJS.ProcessEnv): ServeOptionsInput {
  const out: ServeOptionsInput = {};
  for (const key of OPTION_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') (out as Record<string, string>)[key] = v;
  }
  return out;
}

/** A config file is JSON with the same keys as ServeOptions. */
export function optionsFromFile(json: unknown, file: string): ServeOptionsInput {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError(`config file ${file} must hold a JSON object of options`);
  }
  const unknown = Object.keys(json).filter((k) => !Object.hasOwn(OPTION_TABLE, k));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`config file ${file}: unknown option(s) ${unknown.join(', ')}; known: ${OPTION_KEYS.join(', ')}`);
  }
  return json as ServeOptionsInput;
}
