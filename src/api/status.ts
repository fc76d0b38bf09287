/**
 * The one boundary where thrown values become gRPC statuses (docs/api.md, "Errors"). Walks the `cause`
 * chain for the first domain error; anything else is INTERNAL, with the details kept in the logs and the
 * client told only the request id to quote.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
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
  [FailedPreconditionError, status.FAILED_PRECONDITION],
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

/** Longest status details sent. Client text inside them is already cut by quote(); this bounds the whole. */
export const MAX_DETAILS_CHARS = 1024;
/** A request_id that may go into x-request-id: a valid metadata value, short (the edge enforces both). */
const METADATA_SAFE_ID = /^[\x21-\x7e]{1,1024}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Status details as they may leave: at most MAX_DETAILS_CHARS, and without lone UTF-16 surrogates (grpc-js
 * percent-encodes details with encodeURI, which throws on them; the throw would escape into grpc-js).
 */
export function safeDetails(details: string | undefined): string {
  const s = details ?? '';
  const cut = s.length > MAX_DETAILS_CHARS ? `${s.slice(0, MAX_DETAILS_CHARS)}...` : s;
  return cut.replace(LONE_SURROGATE, '\uFFFD');
}

/** Never throws: an id that is not a safe metadata value is left out rather than echoed. */
export function toServiceError(err: unknown, requestId?: string): Partial<ServiceError> & { code: status; details: string } {
  const { code, details } = mapError(err);
  const metadata = new Metadata();
  const id = requestId !== undefined && METADATA_SAFE_ID.test(requestId) ? requestId : undefined;
  if (id) metadata.set('x-request-id', id);
  return { code, details: safeDetails(id && code === status.INTERNAL ? `${details} (request_id ${id})` : details), metadata };
}

export function isInternal(err: unknown): boolean {
  return mapError(err).code === status.INTERNAL;
}
