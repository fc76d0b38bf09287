export {
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  DeadlineExceededError,
  UnavailableError,
  CancelledError,
  ModelPackageError,
  InferenceError,
} from './errors.js';
