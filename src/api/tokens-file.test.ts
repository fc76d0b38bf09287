import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { tokensFile, type TokensFile } from './tokens-file.js';

const ROBOT = { token: 'robot-token-0123456789', role: 'robot', name: 'arm-7' };
const ADMIN = { token: 'admin-token-0123456789', role: 'admin', name: 'ops' };
const NEW_ROBOT = { token: 'newer-token-0123456789', role: 'robot', name: 'arm-8' };

let dir: string;
let file: string;
let tokens: TokensFile | undefined;
const logs: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });

/** Atomic replacement, as kubelet and careful editors do. */
function install(json: unknown): void {
  writeFileSync(`${file}.tmp`, typeof json === 'string' ? json : JSON.stringify(json));
  renameSync(`${file}.tmp`, file);
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dust-tokens-'));
  file = path.join(dir, 'tokens.json');
  install([ROBOT, ADMIN]);
  logs.length = 0;
});

afterEach(() => {
  tokens?.close();
  tokens = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('tokens file', () => {
  it('refuses to start on an unusable file', async () => {
    install([{ ...ROBOT, token: 'short' }]);
    await expect(tokensFile(file, log)).rejects.toThrow(/at least 16 characters/);
  });

  it('reload on request: a new token is known, a removed one is not; an unchanged file is no reload', async () => {
    tokens = await tokensFile(file, log, { pollMs: 3_600_000 });
    const robot = tokens.credentials.identify(ROBOT.token)!;
    expect(await tokens.reload('test')).toBe(false);
    install([ADMIN, NEW_ROBOT]);
    expect(await tokens.reload('test')).toBe(true);
    expect(tokens.credentials.identify(NEW_ROBOT.token)).toMatchObject({ name: 'arm-8', role: 'robot' });
    expect(tokens.credentials.identify(ROBOT.token)).toBeUndefined();
    expect(tokens.credentials.holds(robot)).toBe(false);
  });

  it('keeps the previous credentials when the new file is broken, and logs no token', async () => {
    tokens = await tokensFile(file, log, { pollMs: 3_600_000 });
    install(`[{"token": ${NEW_ROBOT.token}, "role": "robot", "name": "x"}]`);
    expect(await tokens.reload('test')).toBe(false);
    install([{ ...NEW_ROBOT, role: 'root' }]);
    expect(await tokens.reload('test')).toBe(false);
    expect(tokens.credentials.identify(ROBOT.token)).toMatchObject({ name: 'arm-7' });
    expect(tokens.credentials.identify(NEW_ROBOT.token)).toBeUndefined();
    const all = logs.join('');
    expect(all).toContain('tokens file reload refused');
    for (const t of [ROBOT, ADMIN, NEW_ROBOT]) expect(all).not.toContain(t.token.slice(0, 11));
  });

  it('reloads by itself when the file changes', async () => {
    tokens = await tokensFile(file, log, { pollMs: 3_600_000, settleMs: 50 });
    install([ROBOT, ADMIN, NEW_ROBOT]);
    await eventually(() => tokens!.credentials.identify(NEW_ROBOT.token) !== undefined);
    expect(logs.join('')).toContain('"reason":"files changed"');
  });

  it('re-reads periodically where no change is seen', async () => {
    tokens = await tokensFile(file, log, { pollMs: 100, settleMs: 3_600_000 });
    install([ROBOT, ADMIN, NEW_ROBOT]);
    await eventually(() => tokens!.credentials.identify(NEW_ROBOT.token) !== undefined);
  });
});
