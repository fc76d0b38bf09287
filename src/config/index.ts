export {
  compileServeOptions,
  optionsFromEnv,
  optionsFromFile,
  decodeThreadCount,
  DEFAULT_SERVE_OPTIONS,
  DEFAULT_PORT,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_ID_BYTES,
  DEFAULT_MAX_INSTRUCTION_BYTES,
  MAX_ID_BYTES_LIMIT,
  DEFAULT_EXPERIMENT_DB,
} from './options.js';
export type { ServeOptions, ServeOptionsInput, DeviceOption } from './options.js';
export { OPTION_TABLE, OPTION_KEYS, COMPONENTS } from './option-table.js';
export type { OptionKey, OptionSpec, Component } from './option-table.js';
export { envName, flagName } from './option-names.js';
export { sliceOf, sliceKeys } from './option-slices.js';
export type { OptionSlice } from './option-slices.js';
export { optionsMarkdownTable } from './option-docs.js';
export { readCredentials, parseCredentials, readSecretFile, MIN_TOKEN_LENGTH } from './credentials.js';
export type { Credential, Role } from './credentials.js';
