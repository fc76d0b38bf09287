/**
 * The one boundary where thrown values become gRPC statuses (serving-api.md "Errors"). Walks the `cause`
 * chain for the first domain error; anything else is INTERNAL, with the details kept in the logs and the
 * client told only the request id to quote.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  CancelledError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  OverloadedError,
  UnavailableError,
} from '../errors/index.js';

const CODES: ReadonlyArray<[abstract new (...args: never[]) => Error, status]> = [
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [NotFoundError, status.NOT_FOUND],
  [OverloadedError, status.RESOURCE_EXHAUSTED],
  [DeadlineExceededError, status.DEADLINE_EXCEEDED],
  [UnavailableError, status.UNAVAILABLE],
  [CancelledError, status.CANCELLED],
];

export interface MappedStatus {
  readonly code: status;
  readonly details: string;
  /** The domain error that decided the code, when one did. */
  readonly domain: Error | undefined;
}

export function mapError(err: unknown): MappedStatus {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    for (const [cls, code] of CODES) if (e instanceof cls) return { code, details: e.message, domain: e };
  }
  return { code: status.INTERNAL, details: 'internal error while serving the request; the server log has the cause', domain: undefined };
}

export function toServiceError(err: unknown, requestId?: string): Partial<ServiceError> & { code: status; details: string } {
  const { code, details } = mapError(err);
  const metadata = new Metadata();
  if (requestId) metadata.set('x-request-id', requestId);
  return { code, details: requestId && code === status.INTERNAL ? `${details} (request_id ${requestId})` : details, metadata };
}

export function isInternal(err: unknown): boolean {
  return mapError(err).code === status.INTERNAL;
}
