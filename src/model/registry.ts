/**
 * Loaded models and versions, their states (LOADING/READY/FAILED/UNLOADING, docs/api.md ListModels), and
 * leases on a version's runtime for the requests that run on it. What a READY version runs on is opaque here:
 * a RuntimeFactory supplied by the composition root starts it, so this folder stays free of the engine and of
 * ONNX Runtime.
 *
 * Versions change under load without failing requests (docs/experiments.md, docs/api.md LoadModel):
 * - A request leases the runtime it runs on; a runtime is stopped only when its last lease is released (or
 *   the drain grace period is over), so a request that was routed to it always finishes on it.
 * - Reloading a READY version starts the new copy beside the serving one and swaps them only when the new
 *   copy is READY; a package that fails to load (corrupt, incomplete, mismatched, bad statistics, graphs that
 *   fail warm-up) never replaces a serving copy: the old one keeps serving, and the failure is in the log and
 *   in the entry's `lastLoadError` (ListModels). A new version that fails is FAILED and takes no traffic.
 * - Loads and unloads of one version run one at a time.
 * - A running copy reports its own trouble (RuntimeEvents): while it replaces a dead inference worker the
 *   version is LOADING (its leases stay valid: the copy, not the worker, is leased), then READY again, or
 *   FAILED when it gives up. A copy a reload replaced, or one being unloaded, is not recovered.
 */
import { FailedPreconditionError, ModelPackageError, NotFoundError, UnavailableError, quote } from '../errors/index.js';
import type { Manifest } from './manifest.js';
import type { ModelRef } from './model-ref.js';
import { readPackage, type ModelPackage } from './package.js';
import type { PackageLimits } from './package-limits.js';
import { scanRepository, type PackageLocation, type SkippedEntry } from './repository-scan.js';

export type VersionState = 'LOADING' | 'READY' | 'FAILED' | 'UNLOADING';

/** How a started runtime reports that it cannot serve for a while, serves again, or cannot serve any more. */
export interface RuntimeEvents {
  /**
   * It must recover (e.g. replace a dead inference thread): the version is LOADING until recovered(). False
   * when the version no longer serves this runtime (a reload replaced it, or it is being unloaded): it is
   * retired, so it should not recover.
   */
  recovering(reason: string): boolean;
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
  /** Why the last reload failed while the copy loaded before kept serving. */
  lastLoadError?: string;
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

/** A handle held for the life of one request; release it exactly when the request is done (more calls are no-ops). */
export interface Lease<R> {
  readonly handle: ModelHandle<R>;
  release(): void;
}

export interface RegistryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RegistryOptions {
  /** The model that requests with an empty model field get; undefined = the first model name (sorted). */
  readonly defaultModel?: string;
  /** How long a runtime being replaced or unloaded waits for its leased requests before it is stopped (the shutdownGraceSeconds option). */
  readonly drainTimeoutMs: number;
  /** A model's last READY version that served a request this recently cannot be unloaded. @default 60000 */
  readonly trafficWindowMs?: number;
  /** Load model and package folders that are links out of the repository (docs/model-package.md, "Confinement"). */
  readonly allowPackageSymlinks: boolean;
  /** @default DEFAULT_PACKAGE_LIMITS */
  readonly packageLimits?: PackageLimits;
}

export const DEFAULT_TRAFFIC_WINDOW_MS = 60_000;

export type StateListener<R> = (entry: ModelVersionEntry<R>) => void;

interface Leases {
  count: number;
  /** performance.now() of the last acquire. */
  lastUsed: number;
  idle: Array<() => void>;
}

export class ModelRegistry<R> {
  private readonly entries = new Map<string, ModelVersionEntry<R>>();
  private readonly listeners: StateListener<R>[] = [];
  private readonly leases = new Map<R, Leases>();
  /** Per version: the tail of its queue of loads and unloads. */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Runtimes being retired in the background (replaced by a reload). */
  private readonly retiring = new Set<Promise<void>>();
  private readonly defaultModel: string | undefined;
  private readonly drainTimeoutMs: number;
  private readonly trafficWindowMs: number;
  private readonly allowPackageSymlinks: boolean;
  private readonly packageLimits: PackageLimits | undefined;
  /** Skipped repository entries already warned about: each is logged once, not at every scan. */
  private readonly warnedSkips = new Set<string>();

  constructor(
    private readonly repository: string,
    private readonly factory: RuntimeFactory<R>,
    private readonly log: RegistryLogger,
    options: RegistryOptions,
  ) {
    this.defaultModel = options.defaultModel || undefined;
    this.drainTimeoutMs = options.drainTimeoutMs;
    this.trafficWindowMs = options.trafficWindowMs ?? DEFAULT_TRAFFIC_WINDOW_MS;
    this.allowPackageSymlinks = options.allowPackageSymlinks;
    this.packageLimits = options.packageLimits;
  }

  /** The repository's packages; entries that cannot be scanned are skipped with a warning and returned apart. */
  private async scan(): Promise<{ found: PackageLocation[]; skipped: SkippedEntry[] }> {
    const skipped: SkippedEntry[] = [];
    const found = await scanRepository(this.repository, {
      allowSymlinks: this.allowPackageSymlinks,
      stallMs: this.packageLimits?.stallMs,
      onSkip: (s) => skipped.push(s),
    });
    for (const s of skipped) {
      const key = `${s.entry}\u0000${s.reason}`;
      if (this.warnedSkips.has(key)) continue;
      this.warnedSkips.add(key);
      this.log.warn({ repository: this.repository, entry: s.entry, reason: s.reason }, `model repository entry skipped: ${s.entry} ${s.reason}`);
    }
    return { found, skipped };
  }

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

  /** Runs `task` after every earlier load or unload of the same version. */
  private serialized<T>(key: string, task: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(key) ?? Promise.resolve()).then(task, task);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  /** Loads every version found in the repository. A bad package is FAILED with a log line; others load. */
  async loadRepository(): Promise<void> {
    const { found } = await this.scan();
    if (found.length === 0) {
      this.log.error({ repository: this.repository }, 'no model packages (<name>/<version>/manifest.json) found in the model repository');
    }
    for (const loc of found) await this.serialized(this.key(loc.name, loc.version), () => this.loadLocation(loc));
  }

  /**
   * Loads one version (0 = the newest in the repository), or reloads it from disk when it is loaded already.
   * Resolves when the version is READY or the load failed (see the entry's state, reason and lastLoadError).
   */
  async load(name: string, version = 0): Promise<ModelVersionEntry<R>> {
    const scanned = await this.scan();
    const found = scanned.found.filter((l) => l.name === name && (version === 0 || l.version === version));
    const loc = found.at(-1);
    const skipped = scanned.skipped.find((s) => s.name === name);
    if (!loc && skipped) throw new FailedPreconditionError(`model repository entry ${skipped.entry} ${skipped.reason}`);
    if (!loc) {
      throw new NotFoundError(
        `model ${quote(name)}${version ? ` version ${version}` : ''} is not in the repository ${this.repository}; expected ${this.repository}/<name>/<version>/manifest.json`,
      );
    }
    return this.serialized(this.key(loc.name, loc.version), () => this.loadLocation(loc));
  }

  private async loadLocation(loc: PackageLocation): Promise<ModelVersionEntry<R>> {
    const key = this.key(loc.name, loc.version);
    let entry = this.entries.get(key);
    // A copy that serves, or recovers to serve (LOADING with a runtime: a dead worker being replaced), is
    // reloaded beside it: a failed reload leaves it in place.
    const reload = entry?.runtime !== undefined && (entry.state === 'READY' || entry.state === 'LOADING');
    if (!entry) {
      entry = { name: loc.name, version: loc.version, state: 'LOADING' };
      this.entries.set(key, entry);
    }
    if (!reload) this.setState(entry, 'LOADING');
    const t0 = performance.now();
    let pkg: ModelPackage;
    let runtime: R;
    try {
      pkg = await readPackage(loc, { repository: this.repository, allowSymlinks: this.allowPackageSymlinks, limits: this.packageLimits });
      runtime = await this.factory.start(
        pkg,
        this.eventsOf(entry, () => runtime),
      );
    } catch (err) {
      const reason = err instanceof ModelPackageError ? err.message : `loading failed: ${(err as Error).message}`;
      if (reload) {
        entry.lastLoadError = reason;
        this.log.error({ model: loc.name, version: loc.version, dir: loc.dir, err }, `reload refused, the loaded copy keeps serving: ${reason}`);
      } else {
        this.setState(entry, 'FAILED', reason);
        this.log.error({ model: loc.name, version: loc.version, dir: loc.dir, err }, `model package refused: ${reason}`);
      }
      return entry;
    }
    const previous = entry.runtime;
    entry.manifest = pkg.manifest;
    entry.runtime = runtime;
    entry.lastLoadError = undefined;
    this.setState(entry, 'READY');
    this.log.info(
      { model: loc.name, version: loc.version, dir: loc.dir, reload, loadMs: Math.round(performance.now() - t0) },
      reload ? 'model version reloaded' : 'model version ready',
    );
    if (previous !== undefined) {
      const retired = this.retire(previous).finally(() => this.retiring.delete(retired));
      this.retiring.add(retired);
    }
    return entry;
  }

  /**
   * State changes a running copy reports itself. They count only while the version serves that copy: not once
   * a reload has replaced it or the version is being unloaded (or FAILED), and then it need not recover.
   */
  private eventsOf(entry: ModelVersionEntry<R>, runtime: () => R | undefined): RuntimeEvents {
    const live = () => entry.runtime !== undefined && entry.runtime === runtime() && (entry.state === 'READY' || entry.state === 'LOADING');
    return {
      recovering: (reason) => {
        if (!live()) return false;
        this.setState(entry, 'LOADING', reason);
        return true;
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

  /**
   * Drains and unloads a version: it stops taking requests at once (UNAVAILABLE for pins meanwhile), its
   * leased requests finish, then its runtime stops. Refused for a model's last READY version while it has
   * traffic: robots would have nowhere to go.
   */
  unload(name: string, version: number): Promise<ModelVersionEntry<R>> {
    return this.serialized(this.key(name, version), async () => {
      const entry = this.entries.get(this.key(name, version));
      if (!entry) throw new NotFoundError(`model ${quote(name)} version ${version} is not loaded; loaded versions: ${this.versionList(name)}`);
      if (entry.state === 'READY' && this.readyVersions(name).length === 1 && entry.runtime !== undefined) {
        const use = this.leases.get(entry.runtime);
        const recent = use && (use.count > 0 || performance.now() - use.lastUsed < this.trafficWindowMs);
        if (recent) {
          throw new FailedPreconditionError(
            `${name}@${version} is the last READY version of ${name} and served requests in the last ${Math.round(this.trafficWindowMs / 1000)} s; load another version first (LoadModel), or stop its traffic`,
          );
        }
      }
      this.setState(entry, 'UNLOADING');
      if (entry.runtime !== undefined) await this.retire(entry.runtime);
      this.entries.delete(this.key(name, version));
      this.log.info({ model: name, version }, 'model version unloaded');
      return entry;
    });
  }

  /** Waits for the runtime's leases to be released (at most the drain timeout), then stops it. */
  private async retire(runtime: R): Promise<void> {
    const use = this.leases.get(runtime);
    if (use && use.count > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        use.idle.push(resolve);
        timer = setTimeout(resolve, this.drainTimeoutMs);
      });
      clearTimeout(timer);
    }
    this.leases.delete(runtime);
    await this.factory.stop(runtime);
  }

  list(): ModelVersionEntry<R>[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
  }

  /** The model's READY versions, ascending. */
  readyVersions(name: string): number[] {
    return this.list()
      .filter((e) => e.name === name && e.state === 'READY')
      .map((e) => e.version);
  }

  private versionList(name: string): string {
    return (
      this.list()
        .filter((e) => e.name === name)
        .map((e) => e.version)
        .join(', ') || 'none'
    );
  }

  /** The model an empty model field means. */
  defaultModelName(): string | undefined {
    if (this.defaultModel) return this.defaultModel;
    return this.list().find((e) => e.state === 'READY')?.name ?? this.list()[0]?.name;
  }

  /** The model a request's model field names, checked to be loaded. */
  modelName(ref: ModelRef): string {
    const name = ref.name ?? this.defaultModelName();
    if (!name) throw new UnavailableError('no model is loaded on this server');
    if (!this.list().some((e) => e.name === name)) {
      const known = [...new Set(this.list().map((e) => e.name))].join(', ') || 'none';
      throw new NotFoundError(`unknown model ${quote(name)}; loaded models: ${known}`);
    }
    return name;
  }

  /** The entry of a READY version (a runtime that cannot serve says so itself: RuntimeEvents). */
  private readyEntry(name: string, version: number): ModelVersionEntry<R> & { runtime: R; manifest: Manifest } {
    const entry = this.entries.get(this.key(name, version));
    if (!entry) throw new NotFoundError(`model ${name} has no version ${version}; loaded versions: ${this.versionList(name)}`);
    if (entry.state !== 'READY' || entry.runtime === undefined || !entry.manifest) {
      throw new UnavailableError(
        `model ${name}@${entry.version} is ${entry.state}${entry.reason ? ` (${entry.reason})` : ''}; retry later or pin another version`,
      );
    }
    return entry as ModelVersionEntry<R> & { runtime: R; manifest: Manifest };
  }

  /** Leases a READY version's runtime for one request. */
  acquire(name: string, version: number): Lease<R> {
    const entry = this.readyEntry(name, version);
    const runtime = entry.runtime;
    let use = this.leases.get(runtime);
    if (!use) {
      use = { count: 0, lastUsed: 0, idle: [] };
      this.leases.set(runtime, use);
    }
    use.count++;
    use.lastUsed = performance.now();
    const held = use;
    let released = false;
    return {
      handle: { name: entry.name, version: entry.version, manifest: entry.manifest, runtime },
      release: () => {
        if (released) return;
        released = true;
        held.count--;
        if (held.count === 0) for (const resolve of held.idle.splice(0)) resolve();
      },
    };
  }

  /**
   * The handle a model reference means now, without a lease (introspection; requests use acquire): a pinned
   * version, or the model's newest READY version.
   */
  resolve(ref: ModelRef): ModelHandle<R> {
    const name = this.modelName(ref);
    const version =
      ref.version ??
      this.readyVersions(name).at(-1) ??
      this.list()
        .filter((e) => e.name === name)
        .at(-1)!.version;
    const { manifest, runtime } = this.readyEntry(name, version);
    return { name, version, manifest, runtime };
  }

  /** Stops every version (each finishes its leased requests first, within the drain timeout). */
  async stopAll(): Promise<void> {
    await Promise.all([
      ...this.retiring,
      ...this.list()
        .filter((e) => e.runtime !== undefined)
        .map(async (e) => {
          this.setState(e, 'UNLOADING');
          await this.retire(e.runtime!);
        }),
    ]);
  }
}
