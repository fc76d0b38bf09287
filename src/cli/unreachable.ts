/**
 * When a call failed because no connection to the server could be made, what an operator should read: the cause
 * in words and what to try, instead of grpc-js's load-balancer text (`round_robin: No connection established.
 * Last error: Error: connect ECONNREFUSED ...`). Pure.
 */
import { DustClientError } from '@dust-serve/client';

/** Socket error codes (node:net, getaddrinfo) -> the cause in words and, where there is one, what to try. */
const CAUSES: ReadonlyArray<{ pattern: RegExp; cause: string; hint?: string }> = [
  { pattern: /\bECONNREFUSED\b/, cause: 'connection refused', hint: 'is the server running? start it with npm start' },
  {
    pattern: /\b(ENOTFOUND|EAI_AGAIN|EAI_NONAME)\b|Name resolution failed|DNS resolution failed/i,
    cause: 'the host name does not resolve',
    hint: 'check the host in --address or DUST_ADDRESS',
  },
  { pattern: /\bETIMEDOUT\b/, cause: 'the connection timed out', hint: 'is the address reachable from here?' },
  { pattern: /\b(EHOSTUNREACH|ENETUNREACH)\b/, cause: 'no route to the host', hint: 'is the address reachable from here?' },
  { pattern: /\bECONNRESET\b|\bEPIPE\b/, cause: 'the connection was reset', hint: 'does the server expect TLS, or is a proxy in the way?' },
  {
    pattern: /SSL|TLS|certificate|handshake/i,
    cause: 'the TLS handshake failed',
    hint: 'does the server use TLS? check the certificate and the address',
  },
];

/** One sentence for a call that never reached the server; undefined for any other failure. */
export function unreachableMessage(address: string, err: unknown): string | undefined {
  if (!(err instanceof DustClientError) || err.codeName !== 'UNAVAILABLE') return undefined;
  // A server that answered UNAVAILABLE (draining, version not READY) says so in its own details; only
  // transport failures carry grpc-js's connection text or a socket error code.
  const found = CAUSES.find(({ pattern }) => pattern.test(err.details));
  if (!found && !/No connection established|Connection dropped|Failed to connect/i.test(err.details)) return undefined;
  const cause = found?.cause ?? 'no connection could be made';
  const hint = found?.hint ?? 'is the server running? start it with npm start';
  return `cannot reach dust-serve at ${address}: ${cause} (${hint})`;
}
