/**
 * A model repository holding only the benchmarked model version, so that other packages of the real repository
 * (e.g. a large random-weight model) are not loaded into the measured server. The package's files are hard
 * links where the file system allows (a large package costs nothing), copies otherwise: the server refuses a
 * package folder that is a symbolic link out of its repository (docs/model-package.md, "Confinement").
 */
import { constants, copyFileSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelLocation } from './requests.js';

export interface IsolatedRepository {
  readonly root: string;
  remove(): void;
}

/** Recreates `from` at `to`: folders made, files hard-linked (copied across file systems). */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) linkTree(source, target);
    else if (entry.isFile()) {
      try {
        linkSync(source, target);
      } catch {
        copyFileSync(source, target, constants.COPYFILE_FICLONE);
      }
    }
  }
}

export function isolatedRepository(model: ModelLocation): IsolatedRepository {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-repo-'));
  const { name, version } = model.manifest;
  linkTree(path.resolve(model.dir), path.join(root, name, String(version)));
  // Removing a hard link leaves the package's own file in place.
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}
