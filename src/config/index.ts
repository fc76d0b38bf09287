export {
  compileServeOptions,
  optionsFromEnv,
  optionsFromFile,
  envName,
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
export { readCredentials, parseCredentials, readSecretFile, MIN_TOKEN_LENGTH } from './credentials.js';
export type { Credential, Role } from './credentials.js';
