/** Longest piece of client-sent text echoed into an error message. */
export const MAX_QUOTED_CHARS = 64;

/**
 * A client-sent string as it appears in an error message: JSON-quoted and cut, so a hostile or broken
 * client cannot blow up status details (gRPC trailers) or log lines.
 */
export function quote(s: string): string {
  return JSON.stringify(s.length > MAX_QUOTED_CHARS ? `${s.slice(0, MAX_QUOTED_CHARS)}...` : s);
}
