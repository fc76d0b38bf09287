/**
 * The rule for a path a manifest names (manifest.files keys, text.tokenizer): relative, inside the package
 * folder, written with "/" (docs/model-package.md, "Confinement"). Checked on the text alone here; the
 * loader checks again after resolving links (confined-file.ts).
 */
import path from 'node:path';
import { quote } from '../errors/index.js';

/** Longest path a manifest may name, in characters (Linux's NAME_MAX is per component; this bounds the whole). */
export const MAX_PACKAGE_PATH_CHARS = 255;

/** Why `name` is not a path inside a package folder, or undefined when it is one. */
export function packagePathProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_PACKAGE_PATH_CHARS) return `must be at most ${MAX_PACKAGE_PATH_CHARS} characters`;
  if (name.includes('\0')) return 'must not contain a NUL character';
  if (name.includes('\\')) return 'must use "/" as separator, not "\\"';
  if (path.posix.isAbsolute(name)) return 'must be relative to the package folder, not absolute';
  const normal = path.posix.normalize(name);
  if (normal === '.' || normal === './') return 'must name a file, not the package folder';
  if (normal === '..' || normal.startsWith('../')) return 'must stay inside the package folder (no ".." out of it)';
  return undefined;
}

/** How a manifest field naming a file appears in a message: `files["vlm.onnx"]`, cut like any quoted text. */
export function filesField(name: string): string {
  return `files[${quote(name)}]`;
}
