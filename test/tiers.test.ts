/**
 * The tiers of vitest.config.ts stay true: every file they list exists, and a file left in the unit tier does
 * nothing a unit test must not (docs/testing.md: no sockets, no child processes, no server, no model runtime).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INTEGRATION, SYSTEM } from '../vitest.config.js';

/** What makes a test file integration or system, as it appears in its source. */
const NOT_UNIT =
  /\b(startTestServer|serveVersions|spawnServe|bindAsync|createServer|createSecureServer|loadNativeOrt)\b|from '(testcontainers|onnxruntime-node|node:child_process|node:net|node:worker_threads)'|\.listen\(/;
/** Unit test files allowed one of those, and why. */
const ALLOWED = new Map([
  ['src/engine/thread-priority.test.ts', 'a worker thread of inline code (no dist/, no model) whose priority it lowers'],
  ['test/tiers.test.ts', 'this file, which names the patterns'],
]);

function testFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(dir, f).split(path.sep).join('/'));
}

describe('test tiers', () => {
  it('list only files that exist, each in one tier', () => {
    for (const f of [...INTEGRATION, ...SYSTEM]) expect(existsSync(f), f).toBe(true);
    expect(new Set([...INTEGRATION, ...SYSTEM]).size).toBe(INTEGRATION.length + SYSTEM.length);
  });

  it('leave in the unit tier no file that starts a server, a process or a model runtime', () => {
    const listed = new Set([...INTEGRATION, ...SYSTEM]);
    const unit = [...testFiles('src'), ...testFiles('clients'), ...testFiles('sim'), ...testFiles('bench'), ...testFiles('test')].filter(
      (f) => !listed.has(f) && !ALLOWED.has(f),
    );
    expect(unit.length).toBeGreaterThan(50);
    expect(unit.filter((f) => NOT_UNIT.test(readFileSync(f, 'utf8')))).toEqual([]);
  });
});
