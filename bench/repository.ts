/**
 * A model repository holding only the benchmarked model version (a symlink to its package), so that other
 * packages of the real repository (e.g. a large random-weight model) are not loaded into the measured server.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelLocation } from './requests.js';

export interface IsolatedRepository {
  readonly root: string;
  remove(): void;
}

export function isolatedRepository(model: ModelLocation): IsolatedRepository {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dust-bench-repo-'));
  const { name, version } = model.manifest;
  mkdirSync(path.join(root, name));
  symlinkSync(path.resolve(model.dir), path.join(root, name, String(version)), 'dir');
  // rmSync removes the link, never what it points to.
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}
