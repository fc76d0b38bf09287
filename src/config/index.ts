export {
  compileServeOptions,
  optionsFromEnv,
  optionsFromFile,
  envName,
  decodeThreadCount,
  DEFAULT_SERVE_OPTIONS,
  DEFAULT_PORT,
  DEFAULT_MAX_MESSAGE_BYTES,
} from './options.js';
export type { ServeOptions, ServeOptionsInput, DeviceOption } from './options.js';
