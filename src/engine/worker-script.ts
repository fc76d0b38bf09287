/**
 * Where a worker thread's compiled script is. Under vitest the engine runs from its .ts sources, and a worker
 * thread cannot load TypeScript, so it falls back to the build output (vitest's global setup rebuilds it when
 * stale).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function workerScript(name: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, `${name}.js`);
  if (existsSync(sibling)) return sibling;
  const built = path.resolve(here, `../../dist/src/engine/${name}.js`);
  if (existsSync(built)) return built;
  throw new Error(`worker script ${name}.js not found next to ${here} nor at ${built}; run \`npm run build\``);
}
