import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCredentials, parseCredentials } from './credentials.js';

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

  it('says which flag to fix when the file is unreadable', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-tokens-'));
    try {
      const file = path.join(dir, 'tokens.json');
      writeFileSync(file, '[{');
      expect(() => loadCredentials(file)).toThrow(/cannot be read as JSON .*--tokens-file/);
      expect(() => loadCredentials(path.join(dir, 'missing.json'))).toThrow(/--tokens-file/);
      writeFileSync(file, JSON.stringify([admin]));
      expect(loadCredentials(file)).toEqual([admin]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
