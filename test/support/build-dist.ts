/**
 * vitest global setup: the inference worker thread runs the compiled dist/ (a worker cannot load .ts), and
 * the CLI and benchmark tests spawn dist/ too (the server's, the benches', and the workspace packages' they
 * import). When any build input is newer than the oldest compiled file, or a build is missing, build first
 * (`npm run build:bench`: the product build, the simulator package, the benches), so `npx vitest` never runs
 * stale engine code next to current sources. `npm run build` also builds the native addon when its sources
 * changed (scripts/build-native.mjs).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const INPUT_DIRS = ['src', 'clients/typescript/src', 'sim/push/src', 'bench', 'proto', 'native/src'];
const INPUT_FILES = [
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
/** One output of each build: dist/ counts as built only when every one is there. */
const BUILT = ['dist/src/engine/inference-worker.js', 'dist/bench/fleet.js', 'clients/typescript/dist/index.js', 'sim/push/dist/index.js'];

function files(dir: string, keep: (file: string) => boolean): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return (readdirSync(abs, { recursive: true }) as string[]).map((f) => path.join(abs, f)).filter((f) => keep(f) && statSync(f).isFile());
}

/** Why dist/ must be rebuilt, or undefined when it is current. */
export function staleReason(): string | undefined {
  const outputs = ['dist', 'clients/typescript/dist', 'sim/push/dist'].flatMap((d) => files(d, (f) => f.endsWith('.js')));
  if (BUILT.some((f) => !existsSync(path.join(ROOT, f)))) return 'dist/ has not been built';
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  const isInput = (f: string) =>
    !f.endsWith('.test.ts') &&
    !f.includes(`${path.sep}testing${path.sep}`) &&
    !f.includes(`${path.sep}gen${path.sep}`) &&
    !f.includes(`${path.sep}results${path.sep}`);
  const inputs = [...INPUT_DIRS.flatMap((d) => files(d, isInput)), ...INPUT_FILES.map((f) => path.join(ROOT, f))];
  const newer = inputs.find((f) => statSync(f).mtimeMs > built);
  return newer ? `${path.relative(ROOT, newer)} is newer than dist/` : undefined;
}

export default function setup(): void {
  const reason = staleReason();
  if (!reason) return;
  console.warn(`[vitest setup] ${reason}: running \`npm run build:bench\` so the inference worker runs the current sources`);
  try {
    execFileSync('npm', ['run', 'build:bench', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  } catch {
    throw new Error(
      '`npm run build:bench` failed (see above): the tests need a current dist/ for the inference worker; fix the build, then run the tests again',
    );
  }
}
