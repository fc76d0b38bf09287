/**
 * The one error type the client rejects with. It wraps the grpc-js ServiceError (kept as `cause`) and names
 * the status code, so callers can branch on `code` without importing grpc-js and can show `details`, the
 * server's actionable explanation (docs/api.md, Errors).
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

/** A gRPC status code's name, e.g. `INVALID_ARGUMENT`. */
export type StatusName = keyof typeof status;

export function statusName(code: number): StatusName | `CODE_${number}` {
  const name = (status as unknown as Record<number, string | undefined>)[code];
  return name !== undefined ? (name as StatusName) : `CODE_${code}`;
}

export class DustClientError extends Error {
  override readonly name = 'DustClientError';
  /** Status code number, e.g. 3. */
  readonly code: status;
  /** Status code name, e.g. `INVALID_ARGUMENT`. */
  readonly codeName: StatusName | `CODE_${number}`;
  /** What the server (or grpc-js, for transport failures) said is wrong. */
  readonly details: string;
  /** Trailing metadata of the failed call; empty for errors raised by the client itself. */
  readonly metadata: Metadata;

  constructor(code: status, details: string, options?: ErrorOptions & { metadata?: Metadata }) {
    const codeName = statusName(code);
    super(`${codeName}: ${details}`, options);
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.metadata = options?.metadata ?? new Metadata();
  }

  /** Wraps a grpc-js ServiceError (or any other thrown value, as UNKNOWN) once; DustClientErrors pass through. */
  static from(err: unknown): DustClientError {
    if (err instanceof DustClientError) return err;
    if (isServiceError(err)) return new DustClientError(err.code, err.details, { cause: err, metadata: err.metadata });
    const message = err instanceof Error ? err.message : String(err);
    return new DustClientError(status.UNKNOWN, message, { cause: err });
  }
}

/**
 * A call that ended without a status from any server: its HTTP/2 stream was reset on the way. A load balancer
 * whose backend died resets the stream with NO_ERROR, which grpc-js reports as INTERNAL "Received RST_STREAM with
 * code 0 (Call ended without gRPC status)". No dust-serve answered it, so it is a lost replica, as UNAVAILABLE is,
 * and gRPC's retry policy (which retries by status code only) would otherwise pass it to the robot.
 */
export function brokenInTransit(err: DustClientError): boolean {
  return err.codeName === 'INTERNAL' && /^Received RST_STREAM with code \d+|Call ended without gRPC status/.test(err.details);
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && typeof (err as Partial<ServiceError>).details === 'string';
}
