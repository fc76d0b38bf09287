import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError, NotFoundError, UnavailableError } from '../errors/index.js';
import { eventually, settle } from '../../test/support/eventually.js';
import { ModelRegistry, type ModelPackage, type RuntimeEvents, type RuntimeFactory } from './index.js';

const TINY = path.resolve('models/dust-tiny/1');
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** A repository with copies of dust-tiny as the given versions of model "m". */
function repository(versions: number[]): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dust-registry-'));
  roots.push(root);
  for (const v of versions) copyVersion(root, v);
  return root;
}

function copyVersion(root: string, version: number): string {
  const dir = path.join(root, 'm', String(version));
  cpSync(TINY, dir, { recursive: true });
  editManifest(dir, (m) => ({ ...m, name: 'm', version }));
  return dir;
}

function editManifest(dir: string, edit: (m: Record<string, unknown>) => Record<string, unknown>): void {
  const file = path.join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)));
}

interface FakeRuntime {
  readonly id: number;
  readonly dir: string;
  /** What the copy reports of itself (a dead worker being replaced, given up). */
  readonly events: RuntimeEvents;
  stopped: boolean;
}

/** Starts numbered fake runtimes; records stops. */
function fakeFactory(): RuntimeFactory<FakeRuntime> & { started: FakeRuntime[] } {
  const started: FakeRuntime[] = [];
  return {
    started,
    async start(pkg: ModelPackage, events: RuntimeEvents) {
      const r = { id: started.length + 1, dir: pkg.dir, events, stopped: false };
      started.push(r);
      return r;
    },
    async stop(r) {
      r.stopped = true;
    },
  };
}

const errors: string[] = [];
const warnings: string[] = [];
const log = { info: () => undefined, warn: (_: object, msg: string) => void warnings.push(msg), error: (_: object, msg: string) => void errors.push(msg) };

function registry(root: string, factory = fakeFactory(), trafficWindowMs = 60_000, allowPackageSymlinks = false) {
  return { reg: new ModelRegistry(root, factory, log, { drainTimeoutMs: 2000, trafficWindowMs, allowPackageSymlinks }), factory };
}

describe('ModelRegistry versions', () => {
  it('loads every version; pins lease that version; unpinned resolution is the newest READY', async () => {
    const { reg } = registry(repository([1, 2]));
    await reg.loadRepository();
    expect(reg.list().map((e) => [e.version, e.state])).toEqual([
      [1, 'READY'],
      [2, 'READY'],
    ]);
    expect(reg.readyVersions('m')).toEqual([1, 2]);
    expect(reg.resolve({ name: undefined, version: undefined }).version).toBe(2);
    const lease = reg.acquire('m', 1);
    expect(lease.handle.version).toBe(1);
    lease.release();
    expect(() => reg.acquire('m', 3)).toThrow(NotFoundError);
    expect(() => reg.modelName({ name: 'nope', version: undefined })).toThrow(/unknown model "nope"; loaded models: m/);
  });

  it('a corrupt, mismatched or mirrored-statistics package is FAILED and takes no traffic; the others serve', async () => {
    const root = repository([1]);
    writeFileSync(path.join(copyVersion(root, 2), 'vlm.onnx'), 'not a graph');
    editManifest(copyVersion(root, 3), (m) => ({ ...m, version: 7 }));
    editManifest(copyVersion(root, 4), (m) => {
      const emb = m.embodiments as Record<string, { normalization: { action: { min: number[]; max: number[] } } }>;
      const action = emb.franka_fr3.normalization.action;
      emb.franka_fr3.normalization.action = { min: action.max, max: action.min };
      return m;
    });
    const { reg } = registry(root);
    await reg.loadRepository();
    const state = Object.fromEntries(reg.list().map((e) => [e.version, [e.state, e.reason ?? '']]));
    expect(state[1][0]).toBe('READY');
    expect(state[2]).toEqual(['FAILED', expect.stringMatching(/vlm\.onnx has sha256 .* the file is corrupt or the manifest is stale/)]);
    expect(state[3]).toEqual(['FAILED', expect.stringMatching(/manifest says m@7 but the package lives at m\/3/)]);
    expect(state[4]).toEqual(['FAILED', expect.stringMatching(/embodiments\.franka_fr3\.normalization\.action: max\[0\] = .* is less than min\[0\]/)]);
    expect(reg.readyVersions('m')).toEqual([1]);
    expect(() => reg.acquire('m', 2)).toThrow(UnavailableError);
  });

  it('a reload swaps in the new copy; the old one stops only after its leased requests finish', async () => {
    const { reg, factory } = registry(repository([1]));
    await reg.loadRepository();
    const inFlight = reg.acquire('m', 1);
    const before = inFlight.handle.runtime;
    const entry = await reg.load('m', 1);
    expect(entry.state).toBe('READY');
    const after = reg.acquire('m', 1);
    expect(after.handle.runtime).not.toBe(before);
    expect(factory.started).toHaveLength(2);
    await settle();
    expect(before.stopped).toBe(false); // its request is still running
    inFlight.release();
    inFlight.release(); // idempotent
    await eventually(() => before.stopped, { what: 'the replaced copy to stop' });
    expect(before.stopped).toBe(true);
    after.release();
  });

  it('a reload from a broken package keeps the loaded copy serving and says why', async () => {
    const root = repository([1]);
    const { reg, factory } = registry(root);
    await reg.loadRepository();
    writeFileSync(path.join(root, 'm/1/denoiser.onnx'), 'truncated');
    const entry = await reg.load('m', 0);
    expect(entry.state).toBe('READY');
    expect(entry.lastLoadError).toMatch(/denoiser\.onnx has sha256/);
    expect(factory.started).toHaveLength(1);
    expect(factory.started[0].stopped).toBe(false);
    expect(reg.acquire('m', 1).handle.runtime).toBe(factory.started[0]);
    expect(errors.at(-1)).toMatch(/reload refused, the loaded copy keeps serving/);
  });

  it('LoadModel of version 0 loads the newest version in the repository; a missing one is NOT_FOUND', async () => {
    const root = repository([1]);
    const { reg } = registry(root);
    await reg.loadRepository();
    copyVersion(root, 2);
    expect((await reg.load('m')).version).toBe(2);
    expect(reg.readyVersions('m')).toEqual([1, 2]);
    await expect(reg.load('m', 9)).rejects.toThrow(NotFoundError);
  });

  it('unload drains leased requests first, and refuses the last READY version while it has traffic', async () => {
    const { reg, factory } = registry(repository([1, 2]));
    await reg.loadRepository();
    const lease = reg.acquire('m', 1);
    const unloading = reg.unload('m', 1);
    await eventually(() => reg.list().find((e) => e.version === 1)?.state === 'UNLOADING', { what: 'version 1 to be UNLOADING' });
    expect(reg.list().find((e) => e.version === 1)?.state).toBe('UNLOADING');
    expect(() => reg.acquire('m', 1)).toThrow(UnavailableError);
    expect(factory.started[0].stopped).toBe(false);
    lease.release();
    await unloading;
    expect(factory.started[0].stopped).toBe(true);
    expect(reg.list().map((e) => e.version)).toEqual([2]);
    reg.acquire('m', 2).release();
    await expect(reg.unload('m', 2)).rejects.toThrow(FailedPreconditionError);
    await expect(reg.unload('m', 5)).rejects.toThrow(NotFoundError);
  });

  it('the last READY version without recent traffic can be unloaded', async () => {
    const { reg } = registry(repository([1]), fakeFactory(), 0);
    await reg.loadRepository();
    reg.acquire('m', 1).release();
    await reg.unload('m', 1);
    expect(reg.list()).toEqual([]);
  });
});

describe('ModelRegistry: a copy that replaces its dead worker', () => {
  const state = (reg: ModelRegistry<FakeRuntime>, v = 1) => reg.list().find((e) => e.version === v)?.state;

  it('is LOADING while it recovers (new requests UNAVAILABLE, leases held on it stay valid), then READY on the same copy', async () => {
    const { reg, factory } = registry(repository([1]));
    await reg.loadRepository();
    const copy = factory.started[0];
    const held = reg.acquire('m', 1);
    expect(copy.events.recovering('worker died')).toBe(true);
    expect(state(reg)).toBe('LOADING');
    expect(reg.list()[0].reason).toBe('worker died');
    expect(() => reg.acquire('m', 1)).toThrow(/LOADING \(worker died\)/);
    copy.events.recovered();
    expect(state(reg)).toBe('READY');
    expect(reg.acquire('m', 1).handle.runtime).toBe(copy);
    held.release();
    expect(copy.stopped).toBe(false);
  });

  it('gives up: FAILED; a later LoadModel is a fresh load that retires the dead copy', async () => {
    const { reg, factory } = registry(repository([1]));
    await reg.loadRepository();
    factory.started[0].events.recovering('died');
    factory.started[0].events.failed('died 4 times');
    expect(state(reg)).toBe('FAILED');
    expect(() => reg.acquire('m', 1)).toThrow(UnavailableError);
    await reg.load('m', 1);
    expect(state(reg)).toBe('READY');
    await eventually(() => factory.started[0].stopped, { what: 'the dead copy to stop' });
    expect(factory.started[0].stopped).toBe(true);
    expect(reg.acquire('m', 1).handle.runtime).toBe(factory.started[1]);
  });

  it('a copy a reload replaced, or one being unloaded, is not recovered and does not change the version', async () => {
    const { reg, factory } = registry(repository([1, 2]), fakeFactory(), 0);
    await reg.loadRepository();
    const old = factory.started.find((r) => r.dir.endsWith('1'))!;
    const held = reg.acquire('m', 1); // keeps the old copy from stopping
    await reg.load('m', 1);
    expect(old.events.recovering('died while retiring')).toBe(false);
    old.events.failed('gave up');
    expect(state(reg)).toBe('READY');
    held.release();
    const fresh = factory.started.at(-1)!;
    const last = reg.acquire('m', 1); // keeps version 1 UNLOADING
    const unloading = reg.unload('m', 1);
    await eventually(() => state(reg) === 'UNLOADING', { what: 'version 1 to be UNLOADING' });
    expect(state(reg)).toBe('UNLOADING');
    expect(fresh.events.recovering('died while unloading')).toBe(false);
    expect(state(reg)).toBe('UNLOADING');
    last.release();
    await unloading;
    expect(state(reg, 2)).toBe('READY');
  });

  it('LoadModel while the copy recovers reloads beside it: a broken package leaves the recovering copy in place', async () => {
    const root = repository([1]);
    const { reg, factory } = registry(root);
    await reg.loadRepository();
    const copy = factory.started[0];
    copy.events.recovering('died');
    writeFileSync(path.join(root, 'm/1/denoiser.onnx'), 'truncated');
    const entry = await reg.load('m', 1);
    expect(entry.state).toBe('LOADING');
    expect(entry.lastLoadError).toMatch(/denoiser\.onnx has sha256/);
    copy.events.recovered();
    expect(state(reg)).toBe('READY');
    expect(reg.acquire('m', 1).handle.runtime).toBe(copy);
  });
});

describe('ModelRegistry: entries of the repository that cannot be used', () => {
  it('a dangling link in the repository is skipped with one warning; every other model loads, now and on LoadModel', async () => {
    const root = repository([1]);
    symlinkSync(path.join(root, 'gone'), path.join(root, 'a-dangling-model'));
    symlinkSync(path.join(root, 'gone'), path.join(root, 'm', '5'));
    warnings.length = 0;
    const { reg } = registry(root);
    await reg.loadRepository();
    expect(reg.list().map((e) => [e.name, e.version, e.state])).toEqual([['m', 1, 'READY']]);
    copyVersion(root, 2);
    expect(await reg.load('m', 2)).toMatchObject({ state: 'READY' });
    expect(warnings.filter((w) => w.includes('"a-dangling-model" cannot be resolved (ENOENT)'))).toHaveLength(1);
    expect(warnings.filter((w) => w.includes('"m/5" cannot be resolved (ENOENT)'))).toHaveLength(1);
    await expect(reg.load('a-dangling-model')).rejects.toThrow(FailedPreconditionError);
  });

  it('a model folder that links out of the repository is skipped unless allowed; LoadModel says why', async () => {
    const outside = repository([1]);
    const root = repository([]);
    mkdirSync(root, { recursive: true });
    symlinkSync(path.join(outside, 'm'), path.join(root, 'm'));
    const refused = registry(root).reg;
    await refused.loadRepository();
    expect(refused.list()).toEqual([]);
    await expect(refused.load('m')).rejects.toThrow(/"m" is a link out of the model repository; the operator may allow it with --allow-package-symlinks/);
    const allowed = registry(root, fakeFactory(), 60_000, true).reg;
    await allowed.loadRepository();
    expect(allowed.list().map((e) => e.state)).toEqual(['READY']);
  });

  it('a package folder that links out of the repository is FAILED with the reason unless allowed; a link inside serves', async () => {
    const outside = repository([1]);
    const root = repository([1]);
    symlinkSync(path.join(outside, 'm', '1'), path.join(root, 'm', '2'));
    symlinkSync(path.join(root, 'm', '1'), path.join(root, 'm', '3'));
    editManifest(path.join(outside, 'm', '1'), (m) => ({ ...m, version: 2 }));
    const refused = registry(root).reg;
    await refused.loadRepository();
    const states = refused.list().map((e) => [e.version, e.state, e.reason ?? '']);
    expect(states[0]).toEqual([1, 'READY', '']);
    expect(states[1]).toEqual([2, 'FAILED', expect.stringMatching(/the package folder is a link out of the model repository; the operator may allow it/)]);
    // m/3 links to m/1, inside the repository: followed, and refused only because its manifest names m@1.
    expect(states[2]).toEqual([3, 'FAILED', expect.stringMatching(/manifest says m@1 but the package lives at m\/3/)]);
    const allowed = registry(root, fakeFactory(), 60_000, true).reg;
    await allowed.loadRepository();
    expect(allowed.list().find((e) => e.version === 2)?.state).toBe('READY');
  });
});
