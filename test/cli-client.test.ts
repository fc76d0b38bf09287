/**
 * The built `dust-serve` client commands as an operator meets them: the version, and a server that is not there
 * (one sentence with the address and the cause, exit status 1).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort } from './support/harness.js';

const BIN = path.resolve('dist/src/cli/main.js');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { env: { ...process.env, DUST_ADDRESS: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('dust-serve client commands', () => {
  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await cli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('says in one sentence that nothing listens at the address, for every client command', async () => {
    // A port just found free: nothing listens there.
    const address = `127.0.0.1:${await freePort()}`;
    const expected = `dust-serve: cannot reach dust-serve at ${address}: connection refused (is the server running? start it with npm start)\n`;
    const runs = await Promise.all([
      cli(['models', '--address', address]),
      cli(['outcome', '--address', address, '--episode-id', 'e1', '--success']),
      cli(['load', 'dust-tiny', '--address', address]),
      cli(['experiment', 'show', '--address', address]),
    ]);
    for (const run of runs) expect(run).toEqual({ code: 1, stdout: '', stderr: expected });
  });
});
