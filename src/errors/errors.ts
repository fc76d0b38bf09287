/**
 * Domain errors. Code below `api/` throws these; `api/status.ts` maps them (walking `cause`) to gRPC
 * status codes, so nothing below the edge imports grpc-js. Each message is written for the client: it says
 * what is wrong and how to fix it.
 */

/** The request is malformed: the client must change it before retrying. -> INVALID_ARGUMENT */
export class InvalidArgumentError extends Error {
  override readonly name = 'InvalidArgumentError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** An unknown model, version or embodiment was named. -> NOT_FOUND */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Shed at admission because a bounded queue is full. -> RESOURCE_EXHAUSTED */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
  constructor(
    message: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The request's deadline passed or cannot be met. -> DEADLINE_EXCEEDED */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The server is draining, or the model version is not READY. -> UNAVAILABLE */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The operation is refused in the system's current state (e.g. unloading a model's last serving version). -> FAILED_PRECONDITION */
export class FailedPreconditionError extends Error {
  override readonly name = 'FailedPreconditionError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The client went away; the work was dropped. -> CANCELLED */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'the call was cancelled by the client', options?: ErrorOptions) {
    super(message, options);
  }
}

/** A model package on disk is unusable; the message names the file and the mismatch. */
export class ModelPackageError extends Error {
  override readonly name = 'ModelPackageError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** ONNX Runtime or the inference worker failed. -> INTERNAL (details stay in the logs). */
export class InferenceError extends Error {
  override readonly name = 'InferenceError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * The execution provider asked for (`--device cuda|webgpu`) cannot run here. Raised at start-up, before any
 * model loads: the server refuses to start rather than serve on another device than the operator chose. The
 * message names what is missing and the command that fixes it.
 */
export class DeviceUnavailableError extends Error {
  override readonly name = 'DeviceUnavailableError';
  constructor(
    readonly device: string,
    readonly missing: string,
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(`--device ${device} cannot run here: missing ${missing}. To fix: ${fix}`, options);
  }
}

/**
 * The executor asked for (`--executor native|onnxruntime-node`) cannot run the chosen device here. Raised at start-up,
 * like DeviceUnavailableError: an explicit choice never falls back.
 */
export class ExecutorUnavailableError extends Error {
  override readonly name = 'ExecutorUnavailableError';
  constructor(
    readonly executor: string,
    readonly missing: string,
    readonly fix: string,
    options?: ErrorOptions,
  ) {
    super(`--executor ${executor} cannot run here: missing ${missing}. To fix: ${fix}`, options);
  }
}
