/**
 * The staleness check the npm scripts and the test setup share (scripts/ensure-build.mjs), on a temporary tree
 * with chosen modification times: a current build is left alone, and a changed input or a missing output names
 * itself as the reason to build.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILT, ensureBuild, INPUT_FILES, staleReason } from '../scripts/ensure-build.mjs';

const OLD = new Date('2026-01-01T00:00:00Z');
const BUILT_AT = new Date('2026-01-02T00:00:00Z');
const LATER = new Date('2026-01-03T00:00:00Z');

let root: string;

function put(file: string, at: Date, text = ''): void {
  const abs = path.join(root, file);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, text);
  utimesSync(abs, at, at);
}

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'dust-ensure-build-'));
  const sources = ['src/engine/inference-worker.ts', 'src/cli/main.ts', 'bench/fleet.ts', 'clients/typescript/src/index.ts', 'sim/push/src/index.ts'];
  for (const f of [...INPUT_FILES, ...sources, 'proto/dust.proto']) put(f, OLD);
  for (const f of [...BUILT, 'dist/src/cli/main.js']) put(f, BUILT_AT);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('staleReason', () => {
  it('finds a build newer than every input current', () => {
    expect(staleReason(root)).toBeUndefined();
  });

  it('names a source edited after the build', () => {
    put('src/engine/inference-worker.ts', LATER);
    expect(staleReason(root)).toBe(`${path.join('src', 'engine', 'inference-worker.ts')} is newer than the build`);
  });

  it('names a changed tsconfig or package.json', () => {
    put('sim/push/package.json', LATER);
    expect(staleReason(root)).toMatch(/^sim\/push\/package\.json is newer/);
  });

  it('compares with the oldest compiled file, so a half-finished build counts as stale', () => {
    put('dist/src/cli/main.js', OLD);
    put('bench/fleet.ts', new Date('2026-01-01T12:00:00Z'));
    expect(staleReason(root)).toMatch(/^bench\/fleet\.ts is newer/);
  });

  it('leaves out a compiled file whose source is gone, which no build rewrites', () => {
    put('dist/src/engine/removed-module.js', OLD);
    put('bench/fleet.ts', new Date('2026-01-01T12:00:00Z'));
    expect(staleReason(root)).toBeUndefined();
  });

  it('ignores tests, generated code and kept results', () => {
    put('src/engine/step-batcher.test.ts', LATER);
    put('clients/typescript/src/gen/dust.ts', LATER);
    put('bench/results/fleet/2026-01-03-abc-2core.json', LATER);
    put('bench/out/fleet-2026-01-03.json', LATER);
    expect(staleReason(root)).toBeUndefined();
  });

  it('asks for a build when an output is missing (a fresh clone)', () => {
    rmSync(path.join(root, 'dist'), { recursive: true });
    expect(staleReason(root)).toBe('dist/src/engine/inference-worker.js has not been built');
  });
});

describe('ensureBuild on a current build', () => {
  // tsc writes a fresh dist/ without execute bits, and `npx dust-serve` runs the bin itself: npm sets the bit only
  // when it first puts the checkout into its npx cache, so a clone at a path used before was refused.
  it('makes the bins package.json names executable without building', () => {
    put('package.json', OLD, JSON.stringify({ bin: { 'dust-serve': 'dist/src/cli/main.js' } }));
    const bin = path.join(root, 'dist/src/cli/main.js');
    chmodSync(bin, 0o644);
    expect(ensureBuild(root, () => undefined)).toBe(false);
    expect(statSync(bin).mode & 0o777).toBe(0o755);
  });
});
