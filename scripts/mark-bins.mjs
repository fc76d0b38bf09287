#!/usr/bin/env node
// Makes the files package.json names under "bin" executable. tsc writes new files without the execute bit, and
// `npx dust-serve` runs the bin directly: npm sets the bit only when it first installs the checkout into its npx
// cache, so a later fresh build in the same folder (a CI clone at a path used before) would be refused with
// "Permission denied". The build runs this after tsc; scripts/ensure-build.mjs runs it on every check.
//
//   node scripts/mark-bins.mjs
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The bin files package.json declares, as absolute paths. */
export function binFiles(root = ROOT) {
  const { bin } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const entries = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
  return entries.map((f) => path.join(root, f));
}

/** Adds the execute bits to every built bin file that lacks them; returns the files it changed. */
export function markBinsExecutable(root = ROOT) {
  const changed = [];
  for (const file of binFiles(root)) {
    if (!existsSync(file)) continue;
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o111) === 0o111) continue;
    chmodSync(file, mode | 0o111);
    changed.push(file);
  }
  return changed;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) markBinsExecutable();
