export {
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  DeadlineExceededError,
  UnavailableError,
  CancelledError,
  FailedPreconditionError,
  ModelPackageError,
  InferenceError,
  DeviceUnavailableError,
  ExecutorUnavailableError,
} from './errors.js';
export { errorToWire, errorFromWire } from './wire.js';
export type { WireError } from './wire.js';
export { quote } from './quote.js';
