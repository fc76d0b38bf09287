#!/usr/bin/env node
// Builds only when the build is stale: the npm scripts that run compiled code (`npm start`, the benches, the fleet,
// the recorder, the options doc) and the test global setup (test/support/build-dist.ts) share this one check, so
// a current build starts at once and a changed source is never run stale.
//
// Stale means: one of the compiled outputs is missing, or a build input (the sources of the server, the client,
// the simulator and the benches, the protos, the native addon's sources, the tsconfigs and package.json files) is
// newer than the oldest compiled file. Then it runs `npm run build:bench` (the product build, the native addon when
// its sources changed, the simulator package, the benches) and says why in one line on stderr.
//
//   node scripts/ensure-build.mjs            build when stale
//   node scripts/ensure-build.mjs --check    only say whether it is stale (exit 1 when it is)
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { markBinsExecutable } from './mark-bins.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Folders whose files are build inputs (less tests, test helpers, generated code and kept results). */
export const INPUT_DIRS = ['src', 'clients/typescript/src', 'sim/push/src', 'bench', 'proto', 'native/src'];
export const INPUT_FILES = [
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
  'bench/tsconfig.json',
  'clients/typescript/package.json',
  'clients/typescript/tsconfig.build.json',
  'sim/push/package.json',
  'sim/push/tsconfig.build.json',
  'native/binding.gyp',
];
/** The folders of compiled JavaScript, each with the folder its sources are in (the tsconfigs' rootDir). */
export const OUTPUT_DIRS = { dist: '', 'clients/typescript/dist': 'clients/typescript/src', 'sim/push/dist': 'sim/push/src' };
/** One output of each build: the build counts as done only when every one is there. */
export const BUILT = ['dist/src/engine/inference-worker.js', 'dist/bench/fleet.js', 'clients/typescript/dist/index.js', 'sim/push/dist/index.js'];

const SKIPPED = ['testing', 'gen', 'results', 'out'];

function files(root, dir, keep) {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true })
    .map((f) => path.join(abs, f))
    .filter((f) => keep(f) && statSync(f).isFile());
}

function isInput(file) {
  return !file.endsWith('.test.ts') && !SKIPPED.some((d) => file.includes(`${path.sep}${d}${path.sep}`));
}

/** Why the build must run, or undefined when it is current. */
export function staleReason(root = ROOT) {
  const missing = BUILT.find((f) => !existsSync(path.join(root, f)));
  if (missing) return `${missing} has not been built`;
  // An output whose source is gone (deleted, or another branch's) is never rewritten: its age says nothing.
  const outputs = Object.entries(OUTPUT_DIRS).flatMap(([out, src]) =>
    files(root, out, (f) => f.endsWith('.js') && existsSync(path.join(root, src, path.relative(path.join(root, out), f)).replace(/\.js$/, '.ts'))),
  );
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  const inputs = [...INPUT_DIRS.flatMap((d) => files(root, d, isInput)), ...INPUT_FILES.map((f) => path.join(root, f)).filter((f) => existsSync(f))];
  const newer = inputs.find((f) => statSync(f).mtimeMs > built);
  return newer ? `${path.relative(root, newer)} is newer than the build` : undefined;
}

/** Runs `npm run build:bench` when the build is stale, saying why; returns whether it built. */
export function ensureBuild(root = ROOT, say = (line) => process.stderr.write(`${line}\n`)) {
  const reason = staleReason(root);
  if (!reason) {
    // A build made before the build marked its bins (or by a bare tsc) is current but not runnable by `npx`.
    markBinsExecutable(root);
    return false;
  }
  say(`build: ${reason}; running \`npm run build:bench\``);
  execFileSync('npm', ['run', 'build:bench', '--silent'], { cwd: root, stdio: ['ignore', process.stderr, 'inherit'] });
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const reason = staleReason();
    process.stdout.write(reason ? `stale: ${reason}\n` : 'current\n');
    process.exit(reason ? 1 : 0);
  }
  try {
    ensureBuild();
  } catch {
    process.stderr.write('build: `npm run build:bench` failed (see above)\n');
    process.exit(1);
  }
}
