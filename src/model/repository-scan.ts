/**
 * Finding the packages of a model repository (docs/model-package.md, "Layout of a model repository" and
 * "Confinement"). One bad entry never hides the others: a dangling link, an unreadable folder or a model
 * folder that links out of the repository is skipped (reported through `onSkip`) and the scan goes on.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError, quote } from '../errors/index.js';
import { isInside, stallGuard, type StallGuard } from './confined-file.js';
import { DEFAULT_PACKAGE_LIMITS } from './package-limits.js';

/** A version directory found in the repository: `<repository>/<name>/<version>/`. */
export interface PackageLocation {
  readonly name: string;
  readonly version: number;
  readonly dir: string;
}

/** An entry of the repository that was not scanned, and why (the reason names no link target). */
export interface SkippedEntry {
  /** The model folder's name. */
  readonly name: string;
  /** `<name>` or `<name>/<version>`, quoted for a message. */
  readonly entry: string;
  readonly reason: string;
}

export interface ScanOptions {
  /** Follow model and package folders that are links out of the repository. @default false */
  readonly allowSymlinks?: boolean;
  /** Longest one disk operation may take before the entry is skipped, in ms. @default DEFAULT_PACKAGE_LIMITS.stallMs */
  readonly stallMs?: number;
  readonly onSkip?: (skipped: SkippedEntry) => void;
}

export const ALLOW_SYMLINKS_HINT = 'the operator may allow it with --allow-package-symlinks';

export interface LinkProblem {
  /** `unresolvable`: dangling, a loop, unreadable or stalled; `outside`: a link out of the repository. */
  readonly kind: 'unresolvable' | 'outside';
  readonly reason: string;
}

const codeOf = (err: unknown) => (err instanceof ModelPackageError ? 'stalled' : ((err as NodeJS.ErrnoException).code ?? 'error'));

/**
 * Why a folder of the repository may not be followed, or undefined when it may: it cannot be resolved, or it
 * resolves out of the repository and links out are not allowed.
 */
export async function linkProblem(realRoot: string, dir: string, allowSymlinks: boolean, guard: StallGuard): Promise<LinkProblem | undefined> {
  let real: string;
  try {
    real = await guard(realpath(dir), 'resolving the folder');
  } catch (err) {
    return { kind: 'unresolvable', reason: `cannot be resolved (${codeOf(err)}): a dangling link, a link loop or unreadable` };
  }
  if (!allowSymlinks && !isInside(realRoot, real)) return { kind: 'outside', reason: `is a link out of the model repository; ${ALLOW_SYMLINKS_HINT}` };
  return undefined;
}

/** Every `<name>/<positive integer>/` directory with a manifest.json, and every such directory that links out. */
export async function scanRepository(root: string, options: ScanOptions = {}): Promise<PackageLocation[]> {
  const allow = options.allowSymlinks ?? false;
  const skip = options.onSkip ?? (() => undefined);
  const guard = stallGuard(options.stallMs ?? DEFAULT_PACKAGE_LIMITS.stallMs, `model repository ${root}`);
  let realRoot: string;
  let names: string[];
  try {
    realRoot = await guard(realpath(root), 'resolving the repository');
    names = await guard(readdir(root), 'listing the repository');
  } catch (err) {
    throw new ModelPackageError(`model repository ${root} cannot be read; check --model-repository`, { cause: err });
  }
  const found: PackageLocation[] = [];
  for (const name of names.sort()) {
    const modelDir = path.join(root, name);
    const problem = await linkProblem(realRoot, modelDir, allow, guard);
    if (problem) {
      skip({ name, entry: quote(name), reason: problem.reason });
      continue;
    }
    // Files beside the model folders (a README, __init__.py) are not packages.
    if (
      !(await guard(stat(modelDir), 'checking a model folder').then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      continue;
    let versions: string[];
    try {
      versions = await guard(readdir(modelDir), 'listing a model folder');
    } catch (err) {
      skip({ name, entry: quote(name), reason: `cannot be listed (${codeOf(err)})` });
      continue;
    }
    for (const v of versions) {
      if (!/^[1-9][0-9]*$/.test(v)) continue;
      const dir = path.join(modelDir, v);
      const link = await linkProblem(realRoot, dir, allow, guard);
      if (link?.kind === 'unresolvable') {
        skip({ name, entry: quote(`${name}/${v}`), reason: link.reason });
        continue;
      }
      // A package folder that links out is listed without looking into it, so that its load is refused with
      // the reason (ListModels shows it).
      const listed =
        link !== undefined ||
        (await guard(stat(path.join(dir, 'manifest.json')), 'checking a manifest').then(
          (s) => s.isFile(),
          () => false,
        ));
      if (listed) found.push({ name, version: Number(v), dir });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
}
