/**
 * Keeps something read from files current while the server runs (the TLS certificates, the tokens file): it
 * is re-read when the files change (fs.watch on their folders, which also sees the atomic `..data` symlink
 * swap of Kubernetes secret volumes), periodically (where watching is unreliable: network file systems,
 * some container runtimes) and on request (SIGHUP). A read that fails keeps the previous value in use.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../telemetry/index.js';

/** How often the files are re-read when no watch event came. */
export const DEFAULT_FILE_POLL_MS = 30_000;
/** Editors and secret updaters write in several steps: wait for the burst of events to settle. */
export const DEFAULT_FILE_SETTLE_MS = 200;

export interface FileWatchOptions {
  readonly pollMs?: number;
  readonly settleMs?: number;
}

export interface WatchedFiles<T> {
  /** The files to watch. */
  readonly files: readonly string[];
  /** Reads them; throws with what is wrong when they are unusable. */
  readonly read: () => Promise<T>;
  /** True when a new read is the value in use (no reload to log). */
  readonly same: (a: T, b: T) => boolean;
  /** Puts a new value in use. */
  readonly apply: (next: T, reason: string) => void;
  /** What the files hold, for log lines ("TLS certificate", "tokens file"). */
  readonly what: string;
}

export interface FileReloader {
  /** Re-reads the files now; resolves true when a new value is in use. Concurrent requests share one read. */
  reload(reason: string): Promise<boolean>;
  close(): void;
}

/** Watches `spec.files` from now on, starting from `current` (already read and in use). */
export function watchFiles<T>(spec: WatchedFiles<T>, current: T, log: Logger, options: FileWatchOptions = {}): FileReloader {
  let inUse = current;
  let reloading: Promise<boolean> | undefined;
  const reload = (reason: string): Promise<boolean> => {
    reloading ??= spec
      .read()
      .then((next) => {
        if (spec.same(next, inUse)) return false;
        spec.apply(next, reason);
        inUse = next;
        return true;
      })
      .catch((err: Error) => {
        log.error({ reason, err: err.message }, `${spec.what} reload refused; the previous one stays in use`);
        return false;
      })
      .finally(() => (reloading = undefined));
    return reloading;
  };

  const fileNames = new Set(spec.files.map((f) => path.resolve(f)));
  const dirs = new Set([...fileNames].map((f) => path.dirname(f)));
  let settle: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      const w = watch(dir, (_event, name) => {
        // Kubernetes swaps a `..data` symlink; any change in the folder may be ours.
        if (name && !fileNames.has(path.join(dir, String(name))) && !String(name).startsWith('..')) return;
        clearTimeout(settle);
        settle = setTimeout(() => void reload('files changed'), options.settleMs ?? DEFAULT_FILE_SETTLE_MS);
      });
      w.on('error', (err) => log.warn({ dir, err: err.message }, `watching the ${spec.what} failed; relying on the periodic re-read`));
      watchers.push(w);
    } catch (err) {
      log.warn({ dir, err: (err as Error).message }, `cannot watch the ${spec.what}; relying on the periodic re-read`);
    }
  }
  const poll = setInterval(() => void reload('periodic re-read'), options.pollMs ?? DEFAULT_FILE_POLL_MS);
  poll.unref();

  return {
    reload,
    close() {
      clearInterval(poll);
      clearTimeout(settle);
      for (const w of watchers) w.close();
    },
  };
}
