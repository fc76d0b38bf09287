import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCredentials, readCredentials } from './credentials.js';

const robot = { token: 'robot-token-0123456789', role: 'robot', name: 'arm-7' };
const admin = { token: 'admin-token-0123456789', role: 'admin', name: 'ops' };

describe('tokens file', () => {
  it('reads credentials', () => {
    expect(parseCredentials([robot, admin], 't.json')).toEqual([robot, admin]);
  });

  it.each([
    [[], /lists no credentials/],
    [[{ ...robot, role: 'root' }], /entry 0\.role/],
    [[{ ...robot, token: 'short' }], /at least 16 characters/],
    [[{ ...robot, name: '' }], /name identifies the caller/],
    [[{ ...robot, extra: 1 }], /entry 0/],
    [[robot, { ...admin, token: robot.token }], /entry 1 \(ops\) repeats another entry's token/],
    [{ token: 'x' }, /file: Expected array/],
  ])('refuses %j without echoing a token', (json, message) => {
    let error: Error | undefined;
    try {
      parseCredentials(json, 't.json');
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('0123456789');
  });

  it('says which flag to fix when the file is unreadable', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-tokens-'));
    try {
      const file = path.join(dir, 'tokens.json');
      writeFileSync(file, '[{');
      await expect(readCredentials(file)).rejects.toThrow(/is not valid JSON .*--tokens-file/);
      await expect(readCredentials(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot be read \(ENOENT\).*--tokens-file/);
      writeFileSync(file, JSON.stringify([admin]));
      expect(await readCredentials(file)).toEqual([admin]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['an unquoted token', '[{"token": robot-token-0123456789, "role": "robot", "name": "arm-7"}]'],
    ['a token alone', 'robot-token-0123456789'],
    ['a cut file', '[{"token": "robot-token-0123456789'],
  ])('never quotes the file in a syntax error (%s)', async (_case, text) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-tokens-'));
    try {
      const file = path.join(dir, 'tokens.json');
      writeFileSync(file, text);
      const err = (await readCredentials(file).catch((e: unknown) => e)) as Error;
      expect(err.message).toMatch(/is not valid JSON/);
      expect(err.message).not.toMatch(/robot-t|token-0|0123/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
