/**
 * Domain errors crossing a thread boundary (structured clone keeps neither the class nor extra fields):
 * flattened to plain data on one side, rebuilt as the same class on the other.
 */
import {
  CancelledError,
  DeadlineExceededError,
  InferenceError,
  InvalidArgumentError,
  ModelPackageError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
} from './errors.js';

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly reason?: string;
  readonly stack?: string;
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof OverloadedError) return { name: err.name, message: err.message, reason: err.reason };
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: String(err) };
}

export function errorFromWire(w: WireError): Error {
  switch (w.name) {
    case 'InvalidArgumentError':
      return new InvalidArgumentError(w.message);
    case 'NotFoundError':
      return new NotFoundError(w.message);
    case 'OverloadedError':
      return new OverloadedError(w.message, w.reason ?? 'overloaded');
    case 'DeadlineExceededError':
      return new DeadlineExceededError(w.message);
    case 'UnavailableError':
      return new UnavailableError(w.message);
    case 'CancelledError':
      return new CancelledError(w.message);
    case 'ModelPackageError':
      return new ModelPackageError(w.message);
    default:
      return new InferenceError(w.message, { cause: w.stack });
  }
}
