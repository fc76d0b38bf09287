export { compileServeOptions, optionsFromEnv, optionsFromFile, decodeThreadCount, DEFAULT_SERVE_OPTIONS, DEFAULT_PORT } from './options.js';
export type { ServeOptions, ServeOptionsInput } from './options.js';
export { OPTION_TABLE, OPTION_KEYS, COMPONENTS } from './option-table.js';
export { envName, flagName } from './option-names.js';
export { sliceOf, sliceKeys } from './option-slices.js';
export type { OptionSlice } from './option-slices.js';
export { optionsMarkdownTable } from './option-docs.js';
export { bearerTokenOf, readCredentials, readSecretFile } from './credentials.js';
export type { Credential, Role } from './credentials.js';
