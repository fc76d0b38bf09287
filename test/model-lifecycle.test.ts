/**
 * Model versions changing under load on the real server (AdminService LoadModel/UnloadModel): reloads and a
 * new version fail no request, a broken package never replaces a serving version, and unloading drains.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DustClient } from '@dust-serve/client';
import { jpeg, TINY_DIR } from './support/harness.js';
import { editManifest, failureCode, MODEL, robotRequest, serveVersions, withStatistics, type VersionsServer } from './support/versions.js';
import { eventually } from './support/eventually.js';

let s: VersionsServer;
let client: DustClient;

beforeAll(async () => {
  s = await serveVersions([1]);
  client = s.client;
});

afterAll(() => s?.close());

/** Adds dust-tiny to the repository as `version`, with its manifest naming that place. */
function addVersion(version: number): string {
  const dir = path.join(s.repo.root, MODEL, String(version));
  cpSync(TINY_DIR, dir, { recursive: true });
  editManifest(s.repo.root, version, (m) => ({ ...m, version }));
  return dir;
}

describe('versions under load', () => {
  it('reloads, a new version and an unload fail no request', async () => {
    let running = true;
    let streaming = true;
    const failures: string[] = [];
    const versions = new Set<number>();
    let answered = 0;
    // Camera-sized images: preprocessing takes a while, so a swap or drain often lands between a request's
    // routing and its submission to the engine, the window the registry's leases cover.
    const images = [
      { camera: 'front', encoding: 'jpeg' as const, data: await jpeg(640, 480, [200, 40, 40]) },
      { camera: 'wrist', encoding: 'jpeg' as const, data: await jpeg(640, 480, [40, 40, 200]) },
    ];
    const robotLoop = async (robot: string) => {
      const req = await robotRequest(robot, { images });
      while (running) {
        try {
          versions.add((await client.predict(req)).modelVersion);
          answered++;
        } catch (err) {
          failures.push(`${robot}: ${(err as Error).message}`);
        }
      }
    };
    const streamLoop = async () => {
      const stream = client.stream();
      const req = await robotRequest('streaming-robot', { episodeId: 'long-episode' });
      try {
        while (streaming) {
          const res = await stream.send(req);
          expect(res.modelVersion).toBe(1);
          answered++;
        }
      } catch (err) {
        failures.push(`stream: ${(err as Error).message}`);
      } finally {
        stream.end();
      }
    };
    const loops = [...['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].map(robotLoop), streamLoop()];
    // Between steps, traffic runs on: a few more answers, so the next step lands among requests in flight.
    const pause = () => {
      const at = answered;
      return eventually(() => answered >= at + 6 || failures.length > 0, { what: 'six more answers', timeoutMs: 30_000 });
    };
    try {
      await pause();
      // Reload the serving version twice while robots and a stream use it.
      for (let i = 0; i < 2; i++) {
        expect(await client.loadModel(MODEL, 1)).toMatchObject({ version: 1, state: 'READY', reason: '' });
        await pause();
      }
      // The stream's version stays READY throughout the reloads; end it before version 1 goes away.
      streaming = false;
      await loops[6];
      // A new version takes the unpinned traffic; then the old one is unloaded while requests run on it.
      addVersion(2);
      expect(await client.loadModel(MODEL)).toMatchObject({ version: 2, state: 'READY' });
      await pause();
      expect(await client.unloadModel(MODEL, 1)).toMatchObject({ version: 1, reason: 'unloaded' });
      await pause();
    } finally {
      running = false;
      streaming = false;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(20);
    expect(versions).toEqual(new Set([1, 2]));
    expect((await client.listModels()).models.map((m) => [m.version, m.state])).toEqual([[2, 'READY']]);
  });

  it('a corrupt copy on disk never replaces the serving version: the reload is refused and the old copy serves', async () => {
    const dir = path.join(s.repo.root, MODEL, '2');
    const file = path.join(dir, 'denoiser.onnx');
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, good.length >> 1)); // an incomplete copy
    try {
      const status = await client.loadModel(MODEL, 2);
      expect(status.state).toBe('READY');
      expect(status.reason).toMatch(/reload refused, the loaded copy keeps serving: .*denoiser\.onnx has sha256/);
      const listed = (await client.listModels()).models.find((m) => m.version === 2)!;
      expect(listed).toMatchObject({ state: 'READY', trafficWeight: 1 });
      expect(listed.lastLoadError).toMatch(/denoiser\.onnx/);
      expect((await client.predict(await robotRequest('after-corrupt'))).modelVersion).toBe(2);
      expect(await client.health(`${MODEL}@2`)).toBe('SERVING');
    } finally {
      writeFileSync(file, good);
    }
  });

  it('a new version whose statistics have min > max is FAILED and takes no traffic', async () => {
    addVersion(3);
    editManifest(s.repo.root, 3, (m) => withStatistics(m, 'action', ({ min, max }) => ({ min: max, max: min })));
    const status = await client.loadModel(MODEL, 3);
    expect(status.state).toBe('FAILED');
    expect(status.reason).toMatch(/normalization\.action: max\[\d+\] = .* is less than min/);
    expect(await client.health(`${MODEL}@3`)).toBe('NOT_SERVING');
    expect(await client.health(MODEL)).toBe('SERVING');
    expect((await client.predict(await robotRequest('after-failed'))).modelVersion).toBe(2);
    expect(await failureCode(client.predict(await robotRequest('pinned', { model: `${MODEL}@3` })))).toBe('UNAVAILABLE');
    // A FAILED version can be unloaded; it held no traffic.
    expect(await client.unloadModel(MODEL, 3)).toMatchObject({ reason: 'unloaded' });
  });

  it('refuses to unload the last READY version while it has traffic', async () => {
    await client.predict(await robotRequest('keeps-traffic'));
    expect(await failureCode(client.unloadModel(MODEL, 2))).toBe('FAILED_PRECONDITION');
    expect(await failureCode(client.unloadModel(MODEL, 9))).toBe('NOT_FOUND');
    expect((await client.predict(await robotRequest('still-served'))).modelVersion).toBe(2);
  });
});

describe('a dead inference worker under load, beside another version', () => {
  it('fails only the requests it held (UNAVAILABLE); unpinned traffic goes to the other version while it is replaced', async () => {
    const v = await serveVersions([1, 2]);
    const robots = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
    let running = true;
    const failures: string[] = [];
    const served: number[] = [];
    const robotLoop = async (robot: string) => {
      const req = await robotRequest(robot);
      while (running) {
        try {
          served.push((await v.client.predict(req)).modelVersion);
        } catch (err) {
          failures.push(await failureCode(Promise.reject(err)));
        }
      }
    };
    const loops = robots.map(robotLoop);
    const states: string[] = [];
    try {
      await eventually(() => served.length >= 20);
      // Version 2 (the newest) takes the unpinned traffic; its thread dies between two ONNX Runtime calls.
      const { registry } = v.server.server;
      registry.onStateChange((e) => e.version === 2 && states.push(e.state === 'LOADING' ? `LOADING: ${e.reason}` : e.state));
      registry.resolve({ name: MODEL, version: 2 }).runtime.worker.injectCrash('injected crash');
      await eventually(() => states.at(-1) === 'READY');
      expect(states).toEqual(['LOADING: restarting the inference worker, which stopped (injected crash)', 'READY']);
      expect((await v.client.listModels()).models.map((m) => [m.version, m.state])).toEqual([
        [1, 'READY'],
        [2, 'READY'],
      ]);
      const atRecovery = served.length;
      await eventually(() => served.slice(atRecovery).includes(2));
    } finally {
      running = false;
      await Promise.all(loops);
      await v.close();
    }
    // At most one request per robot was in flight on the dead worker.
    expect(failures.length).toBeLessThanOrEqual(robots.length);
    expect(new Set(failures)).toEqual(new Set(failures.length > 0 ? ['UNAVAILABLE'] : []));
    // While version 2 was replaced, version 1 served the robots.
    expect(served).toContain(1);
  });
});
