/**
 * `npm run build:native` where the addon cannot be built: it says what is missing and how to get it, and the build
 * goes on (the server serves the CPU on onnxruntime-node), except under CI=true, where the build fails. A missing
 * C++ compiler is simulated by naming one that does not exist; nothing is compiled or removed.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

function buildWithoutCompiler(ci: boolean) {
  const env = { ...process.env, CXX: 'no-such-compiler-g++', CI: ci ? 'true' : '' };
  return spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs'), '--force'], { cwd: root, env, encoding: 'utf8' });
}

describe('npm run build:native without a C++ compiler', () => {
  it('names what is missing and the fix, and lets the build go on', () => {
    const r = buildWithoutCompiler(false);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/cannot build the native executor: a C\+\+17 compiler/);
    expect(r.stderr).toMatch(/fix: .*apt-get install g\+\+ make python3/);
    expect(r.stderr).toMatch(/still serves --device cpu/);
  });

  it('fails the build under CI=true', () => {
    const r = buildWithoutCompiler(true);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CI=true: failing the build/);
  });
});
