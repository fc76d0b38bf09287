/**
 * The tokens file in use: read at start (an unusable file stops the start), then re-read on change,
 * periodically and on SIGHUP like the TLS certificates (file-watch.ts), so a token can be added or revoked
 * without a restart. A new file that does not validate is refused with an error log and the previous
 * credentials stay in use; log lines name callers, never tokens.
 */
import { readCredentials, type Credential } from '../config/index.js';
import type { Logger } from '../telemetry/index.js';
import { CredentialSet } from './auth.js';
import { watchFiles, type FileWatchOptions } from './file-watch.js';

export interface TokensFile {
  /** The credentials the auth interceptor checks; replaced in place on a reload. */
  readonly credentials: CredentialSet;
  /** Re-reads the file now; resolves true when a changed list is in use. */
  reload(reason: string): Promise<boolean>;
  close(): void;
}

const sameList = (a: readonly Credential[], b: readonly Credential[]) =>
  a.length === b.length && a.every((c, i) => c.token === b[i]!.token && c.role === b[i]!.role && c.name === b[i]!.name);

const roleCounts = (list: readonly Credential[]) => ({
  robots: list.filter((c) => c.role === 'robot').length,
  admins: list.filter((c) => c.role === 'admin').length,
});

export async function tokensFile(file: string, log: Logger, options: FileWatchOptions = {}): Promise<TokensFile> {
  const first = await readCredentials(file);
  const credentials = new CredentialSet(first);
  log.info({ file, ...roleCounts(first) }, 'tokens file loaded');
  const reloader = watchFiles(
    {
      files: [file],
      read: () => readCredentials(file),
      same: sameList,
      apply(next, reason) {
        credentials.replace(next);
        log.info({ file, reason, ...roleCounts(next) }, 'tokens file reloaded: calls with a removed token are refused from their next message');
      },
      what: 'tokens file',
    },
    first,
    log,
    options,
  );
  return { credentials, reload: (reason) => reloader.reload(reason), close: () => reloader.close() };
}
