/**
 * Loaded models and versions, their states (LOADING/READY/FAILED/UNLOADING, serving-api.md ListModels), and
 * the resolution of a request's model field to a handle that travels with the request through the engine.
 * What a READY version runs on is opaque here: a RuntimeFactory supplied by the composition root starts it,
 * so this folder stays free of the engine and of ONNX Runtime.
 */
import { NotFoundError, ModelPackageError, UnavailableError, quote } from '../errors/index.js';
import type { Manifest } from './manifest.js';
import type { ModelRef } from './model-ref.js';
import { readPackage, scanRepository, type ModelPackage, type PackageLocation } from './package.js';

export type VersionState = 'LOADING' | 'READY' | 'FAILED' | 'UNLOADING';

/** How a started runtime reports that it cannot serve for a while, serves again, or cannot serve any more. */
export interface RuntimeEvents {
  /** It is recovering (e.g. replacing a dead inference thread): the version is LOADING until recovered(). */
  recovering(reason: string): void;
  recovered(): void;
  /** It gave up: the version is FAILED. */
  failed(reason: string): void;
}

export interface RuntimeFactory<R> {
  start(pkg: ModelPackage, events: RuntimeEvents): Promise<R>;
  /** Finishes in-flight work (bounded by the caller's grace period), then releases everything. */
  stop(runtime: R): Promise<void>;
}

export interface ModelVersionEntry<R> {
  readonly name: string;
  readonly version: number;
  state: VersionState;
  /** Why the version FAILED. */
  reason?: string;
  manifest?: Manifest;
  runtime?: R;
}

/** A READY version: what a request carries through the engine. */
export interface ModelHandle<R> {
  readonly name: string;
  readonly version: number;
  readonly manifest: Manifest;
  readonly runtime: R;
}

export interface RegistryLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export type StateListener<R> = (entry: ModelVersionEntry<R>) => void;

export class ModelRegistry<R> {
  private readonly entries = new Map<string, ModelVersionEntry<R>>();
  private readonly listeners: StateListener<R>[] = [];

  constructor(
    private readonly repository: string,
    private readonly factory: RuntimeFactory<R>,
    private readonly log: RegistryLogger,
    /** The model that requests with an empty model field get; undefined = the first model name (sorted). */
    private readonly defaultModel: string | undefined = undefined,
  ) {}

  onStateChange(listener: StateListener<R>): void {
    this.listeners.push(listener);
  }

  private key(name: string, version: number): string {
    return `${name}@${version}`;
  }

  private setState(entry: ModelVersionEntry<R>, state: VersionState, reason?: string): void {
    entry.state = state;
    entry.reason = reason;
    for (const l of this.listeners) l(entry);
  }

  /** Loads every version found in the repository. A bad package is FAILED with a log line; others load. */
  async loadRepository(): Promise<void> {
    const found = await scanRepository(this.repository);
    if (found.length === 0) {
      this.log.error({ repository: this.repository }, 'no model packages (<name>/<version>/manifest.json) found in the model repository');
    }
    for (const loc of found) await this.loadLocation(loc);
  }

  /** Loads one version; version 0 means the newest in the repository. */
  async load(name: string, version = 0): Promise<ModelVersionEntry<R>> {
    const found = (await scanRepository(this.repository)).filter((l) => l.name === name && (version === 0 || l.version === version));
    const loc = found.at(-1);
    if (!loc) throw new NotFoundError(`model ${name}${version ? `@${version}` : ''} is not in the repository ${this.repository}`);
    return this.loadLocation(loc);
  }

  private async loadLocation(loc: PackageLocation): Promise<ModelVersionEntry<R>> {
    const key = this.key(loc.name, loc.version);
    const existing = this.entries.get(key);
    if (existing?.state === 'READY' || existing?.state === 'LOADING') return existing;
    const entry: ModelVersionEntry<R> = existing ?? { name: loc.name, version: loc.version, state: 'LOADING' };
    this.entries.set(key, entry);
    this.setState(entry, 'LOADING');
    const t0 = performance.now();
    try {
      const pkg = await readPackage(loc);
      entry.manifest = pkg.manifest;
      entry.runtime = await this.factory.start(pkg, this.eventsOf(entry));
      this.setState(entry, 'READY');
      this.log.info({ model: loc.name, version: loc.version, dir: loc.dir, loadMs: Math.round(performance.now() - t0) }, 'model version ready');
    } catch (err) {
      const reason = err instanceof ModelPackageError ? err.message : `loading failed: ${(err as Error).message}`;
      this.setState(entry, 'FAILED', reason);
      this.log.error({ model: loc.name, version: loc.version, dir: loc.dir, err }, `model package refused: ${reason}`);
    }
    return entry;
  }

  /** State changes a running version reports itself; ignored once it is being unloaded. */
  private eventsOf(entry: ModelVersionEntry<R>): RuntimeEvents {
    const live = () => entry.state === 'READY' || entry.state === 'LOADING';
    return {
      recovering: (reason) => {
        if (live()) this.setState(entry, 'LOADING', reason);
      },
      recovered: () => {
        if (live()) this.setState(entry, 'READY');
      },
      failed: (reason) => {
        if (!live()) return;
        this.setState(entry, 'FAILED', reason);
        this.log.error({ model: entry.name, version: entry.version, reason }, 'model version failed while serving');
      },
    };
  }

  /** Drains and stops a version; requests pinned to it get UNAVAILABLE meanwhile. */
  async unload(name: string, version: number): Promise<ModelVersionEntry<R>> {
    const entry = this.entries.get(this.key(name, version));
    if (!entry) throw new NotFoundError(`model ${name}@${version} is not loaded`);
    if (entry.runtime && entry.state === 'READY') {
      this.setState(entry, 'UNLOADING');
      await this.factory.stop(entry.runtime);
    }
    this.entries.delete(this.key(name, version));
    return entry;
  }

  list(): ModelVersionEntry<R>[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
  }

  /** The model an empty model field means. */
  defaultModelName(): string | undefined {
    if (this.defaultModel) return this.defaultModel;
    return this.list().find((e) => e.state === 'READY')?.name ?? this.list()[0]?.name;
  }

  /**
   * The handle a request runs on. Unpinned requests get the newest READY version of the model (traffic
   * splits across versions build on this point).
   */
  resolve(ref: ModelRef): ModelHandle<R> {
    const name = ref.name ?? this.defaultModelName();
    if (!name) throw new UnavailableError('no model is loaded on this server');
    const versions = this.list().filter((e) => e.name === name);
    if (versions.length === 0) {
      const known = [...new Set(this.list().map((e) => e.name))].join(', ') || 'none';
      throw new NotFoundError(`unknown model ${quote(name)}; loaded models: ${known}`);
    }
    let entry: ModelVersionEntry<R> | undefined;
    if (ref.version !== undefined) {
      entry = versions.find((e) => e.version === ref.version);
      if (!entry) {
        throw new NotFoundError(`model ${name} has no version ${ref.version}; loaded versions: ${versions.map((e) => e.version).join(', ')}`);
      }
    } else {
      entry = versions.filter((e) => e.state === 'READY').at(-1) ?? versions.at(-1)!;
    }
    if (entry.state !== 'READY' || !entry.runtime || !entry.manifest) {
      throw new UnavailableError(`model ${name}@${entry.version} is ${entry.state}${entry.reason ? ` (${entry.reason})` : ''}; retry later or pin another version`);
    }
    return { name: entry.name, version: entry.version, manifest: entry.manifest, runtime: entry.runtime };
  }

  /** Stops every version (each finishes its in-flight work first). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.list()
        .filter((e) => e.runtime)
        .map(async (e) => {
          this.setState(e, 'UNLOADING');
          await this.factory.stop(e.runtime!);
        }),
    );
  }
}
