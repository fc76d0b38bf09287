/**
 * Hostile model packages on the real server (docs/model-package.md, "Confinement"): files entries and a
 * tokenizer that reach outside the package by ../, an absolute path or a link (to /etc/passwd, /dev/zero), a
 * FIFO, an oversize file, a manifest that links out, a dangling repository entry and a model folder that links
 * out of the repository. Each is refused with a reason that names the manifest field, nothing of the outside
 * file shows in a status, ListModels or a log line, the server starts, and the good model keeps serving.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DustClient } from '@dust-serve/client';
import { startTestServer, TINY_DIR, type TestServer } from './support/harness.js';
import {
  addDanglingEntry,
  addHostilePackages,
  addLinkedOutModel,
  addPackage,
  OUTSIDE_SHA256,
  OUTSIDE_TEXT,
  replaceWithLink,
  type HostilePackage,
} from './support/hostile/packages.js';
import { clientOf, robotRequest } from './support/versions.js';

/** The disk-operation bound of docs/model-package.md, "Confinement": a hostile package is refused within this long. */
const REFUSED_WITHIN_MS = 10_000;

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'dust-hostile-'));
  dirs.push(d);
  return d;
};
let root: string;
let hostile: HostilePackage[];
let server: TestServer;
let client: DustClient;
const logs: string[] = [];

/** Nothing of /etc/passwd: neither its text nor its digest (whole or a prefix). */
function expectNoLeak(text: string): void {
  expect(text).not.toContain(OUTSIDE_TEXT.slice(0, 10));
  expect(text).not.toContain(OUTSIDE_SHA256.slice(0, 12));
}

beforeAll(async () => {
  root = tempDir();
  addPackage(TINY_DIR, root, 'dust-tiny');
  // A hostile second version beside the serving one.
  addPackage(
    TINY_DIR,
    root,
    'dust-tiny',
    (m, dir) => {
      rmSync(path.join(dir, 'tokenizer.json'));
      m.text.tokenizer = '../../../../../../etc/passwd';
    },
    2,
  );
  hostile = addHostilePackages(TINY_DIR, root);
  addDanglingEntry(root, 'a-dangling-entry');
  addLinkedOutModel(TINY_DIR, root, tempDir(), 'linked-out');
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  server = await startTestServer({ modelRepository: root, warmup: false }, { log });
  client = clientOf(server.address);
});

afterAll(async () => {
  client?.close();
  await server?.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('hostile packages in the repository at start', () => {
  it('the server starts and the good model serves; its hostile version 2 is FAILED', async () => {
    expect(await client.health('')).toBe('SERVING');
    expect(await client.health('dust-tiny')).toBe('SERVING');
    expect((await client.predict(await robotRequest('good-robot', { model: 'dust-tiny' }))).modelVersion).toBe(1);
    const v2 = (await client.listModels()).models.find((m) => m.name === 'dust-tiny' && m.version === 2);
    expect(v2).toMatchObject({ state: 'FAILED', reason: expect.stringMatching(/text\.tokenizer must stay inside the package folder/) });
  });

  it('each hostile package is FAILED with a reason naming the manifest field', async () => {
    const listed = new Map((await client.listModels()).models.map((m) => [m.name, m]));
    for (const h of hostile) {
      expect([h.name, listed.get(h.name)?.state]).toEqual([h.name, 'FAILED']);
      expect([h.name, listed.get(h.name)?.reason]).toEqual([h.name, expect.stringMatching(h.reason)]);
    }
  });

  it('a dangling entry and a model folder that links out are skipped with a warning', async () => {
    const names = (await client.listModels()).models.map((m) => m.name);
    expect(names).not.toContain('a-dangling-entry');
    expect(names).not.toContain('linked-out');
    const warnings = logs
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level === 40)
      .map((l) => l.msg);
    expect(warnings).toContain('model repository entry skipped: "a-dangling-entry" cannot be resolved (ENOENT): a dangling link, a link loop or unreadable');
    expect(warnings).toContain(
      'model repository entry skipped: "linked-out" is a link out of the model repository; the operator may allow it with --allow-package-symlinks',
    );
  });

  it('LoadModel of each returns at once: FAILED, or FAILED_PRECONDITION for the model folder that links out', async () => {
    for (const h of hostile) {
      const t0 = performance.now();
      const status = await client.loadModel(h.name, 1, { deadlineMs: REFUSED_WITHIN_MS });
      expect([h.name, status.state, status.reason]).toEqual([h.name, 'FAILED', expect.stringMatching(h.reason)]);
      expect(performance.now() - t0).toBeLessThan(REFUSED_WITHIN_MS);
    }
    await expect(client.loadModel('linked-out')).rejects.toMatchObject({
      codeName: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/links? out of the model repository/),
    });
    expect((await client.predict(await robotRequest('still-good', { model: 'dust-tiny' }))).modelVersion).toBe(1);
  });

  it('nothing of the outside file in ListModels, any status or any log line', async () => {
    const statuses = await Promise.all(hostile.map((h) => client.loadModel(h.name, 1)));
    expectNoLeak(JSON.stringify(await client.listModels()));
    expectNoLeak(JSON.stringify(statuses));
    expect(logs.length).toBeGreaterThan(hostile.length);
    expectNoLeak(logs.join('\n'));
  });
});

describe('--allow-package-symlinks', () => {
  it('serves a model folder that links out of the repository; files stay confined to the package either way', async () => {
    const allowRoot = tempDir();
    addPackage(TINY_DIR, allowRoot, 'dust-tiny');
    addLinkedOutModel(TINY_DIR, allowRoot, tempDir(), 'linked-out');
    addLinkedOutModel(TINY_DIR, allowRoot, tempDir(), 'linked-passwd', (_, dir) => replaceWithLink(dir, 'denoiser.onnx', '/etc/passwd'));
    const allowed = await startTestServer({ modelRepository: allowRoot, warmup: false, allowPackageSymlinks: true });
    const c = clientOf(allowed.address);
    try {
      const models = (await c.listModels()).models.map((m) => [m.name, m.state]);
      expect(models).toEqual([
        ['dust-tiny', 'READY'],
        ['linked-out', 'READY'],
        ['linked-passwd', 'FAILED'],
      ]);
      const refused = (await c.listModels()).models.find((m) => m.name === 'linked-passwd');
      expect(refused?.reason).toMatch(/files\["denoiser\.onnx"\] resolves outside the package folder/);
      expect((await c.predict(await robotRequest('linked-robot', { model: 'linked-out' }))).modelVersion).toBe(1);
    } finally {
      c.close();
      await allowed.close();
    }
  });
});
