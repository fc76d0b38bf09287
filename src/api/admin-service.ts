/**
 * AdminService handlers (docs/api.md): LoadModel, UnloadModel, SetTrafficSplit, GetExperiment. Who may
 * call them is the auth interceptor's business (auth.ts); handlers convert messages, check the versions named
 * against the registry, and hand over to the registry and the experiment book. Errors go through status.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import type { ModelRuntime } from '../engine/index.js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errors/index.js';
import type { ExperimentBook, ExperimentReport, VariantDecision } from '../experiment/index.js';
import type { AdminServiceHandlers } from '@dust-serve/client/gen/dust/serving/v1/AdminService';
import type { Decision } from '@dust-serve/client/gen/dust/serving/v1/Decision';
import type { Experiment } from '@dust-serve/client/gen/dust/serving/v1/Experiment';
import type { ModelState } from '@dust-serve/client/gen/dust/serving/v1/ModelState';
import type { ModelStatus } from '@dust-serve/client/gen/dust/serving/v1/ModelStatus';
import type { TrafficSplit } from '@dust-serve/client/gen/dust/serving/v1/TrafficSplit';
import type { ModelRegistry, ModelVersionEntry } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import { isInternal, toServiceError } from './status.js';

export interface AdminServiceDeps {
  readonly registry: ModelRegistry<ModelRuntime>;
  readonly book: ExperimentBook;
  readonly log: Logger;
}

const DECISIONS: Record<VariantDecision, Decision> = {
  none: 'DECISION_UNSPECIFIED',
  'keep collecting': 'DECISION_KEEP_COLLECTING',
  'candidate better': 'DECISION_CANDIDATE_BETTER',
  'candidate worse': 'DECISION_CANDIDATE_WORSE',
  control: 'DECISION_CONTROL',
};

export function modelStateName(entry: ModelVersionEntry<unknown> | undefined): ModelState {
  return entry ? `MODEL_STATE_${entry.state}` : 'MODEL_STATE_UNSPECIFIED';
}

function status(entry: ModelVersionEntry<unknown>): ModelStatus {
  const reason = entry.reason ?? (entry.lastLoadError ? `reload refused, the loaded copy keeps serving: ${entry.lastLoadError}` : '');
  return { name: entry.name, version: entry.version, state: modelStateName(entry), reason };
}

function toExperiment(report: ExperimentReport, versions: ReadonlyMap<number, ModelVersionEntry<unknown>>): Experiment {
  return {
    name: report.model,
    experiment_id: report.id,
    salt: report.salt,
    started_at: new Date(report.startedAt).toISOString(),
    control_version: report.controlVersion,
    sticky_key: report.stickyKey === 'episode' ? 'STICKY_KEY_EPISODE' : 'STICKY_KEY_ROBOT',
    shadow_version: report.shadowVersion,
    shadow_fraction: report.shadowFraction,
    alpha: report.alpha,
    variants: report.variants.map((v) => ({
      version: v.version,
      state: modelStateName(versions.get(v.version)),
      weight: v.weight,
      requests: v.requests,
      robots: v.robots,
      robots_capped: v.robotsCapped,
      episodes_served: v.episodesServed,
      episodes: v.episodes,
      successes: v.successes,
      success_rate: v.successRate,
      ci95_low: v.ci95.low,
      ci95_high: v.ci95.high,
      p_value_vs_control: v.pValueVsControl,
      always_valid_p_value: v.alwaysValidPValue,
      decision: DECISIONS[v.decision],
      latency_p50_ms: v.latencyP50Ms,
      latency_p99_ms: v.latencyP99Ms,
      mean_vision_steps: v.meanVisionSteps,
      mean_world_model_surprise: v.meanWorldModelSurprise,
      shadow_requests: v.shadowRequests,
      shadow_shed: v.shadowShed,
      shadow_action_divergence: v.shadowActionDivergence,
      shadow_latency_p50_ms: v.shadowLatencyP50Ms,
      shadow_latency_p99_ms: v.shadowLatencyP99Ms,
    })),
  };
}

function stickyKeyOf(key: unknown): 'robot' | 'episode' {
  if (key === 'STICKY_KEY_ROBOT') return 'robot';
  if (key === 'STICKY_KEY_EPISODE') return 'episode';
  throw new InvalidArgumentError(`sticky_key ${String(key)} is not STICKY_KEY_ROBOT or STICKY_KEY_EPISODE`);
}

export function adminService({ registry, book, log }: AdminServiceDeps): AdminServiceHandlers {
  /** The model a request names ("" = the default model), which must be loaded. */
  function modelNamed(name: string): string {
    return registry.modelName({ name: name || undefined, version: undefined });
  }

  function versionsOf(model: string): Map<number, ModelVersionEntry<ModelRuntime>> {
    return new Map(
      registry
        .list()
        .filter((e) => e.name === model)
        .map((e) => [e.version, e]),
    );
  }

  /** Versions a split gives traffic to (or mirrors to) must be READY now. */
  function checkServable(model: string, versions: readonly number[], what: string): void {
    const loaded = versionsOf(model);
    for (const v of versions) {
      const entry = loaded.get(v);
      if (!entry)
        throw new NotFoundError(`${what}: ${model} has no version ${v} loaded (loaded: ${[...loaded.keys()].join(', ') || 'none'}); LoadModel it first`);
      if (entry.state !== 'READY') {
        throw new UnavailableError(`${what}: ${model}@${v} is ${entry.state}${entry.reason ? ` (${entry.reason})` : ''}; only READY versions can take traffic`);
      }
    }
  }

  /** Runs a handler body, answering with its result or its mapped error. */
  function answer<Res>(callback: grpc.sendUnaryData<Res>, method: string, body: () => Res | Promise<Res>): void {
    Promise.resolve()
      .then(body)
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (isInternal(err)) log.error({ err, method }, 'admin call failed');
          else log.info({ method, err: (err as Error).message }, 'admin call refused');
          callback(toServiceError(err));
        },
      );
  }

  return {
    LoadModel(call, callback) {
      answer(callback, 'LoadModel', async () => {
        const { name, version } = call.request;
        if (!name) throw new InvalidArgumentError('name is required: the model to load from the repository');
        const entry = await registry.load(name, version);
        if (entry.state === 'READY') await book.ensure(name);
        return status(entry);
      });
    },

    UnloadModel(call, callback) {
      answer(callback, 'UnloadModel', async (): Promise<ModelStatus> => {
        const { name, version } = call.request;
        if (!name || !version) throw new InvalidArgumentError('name and version are required: the loaded version to unload');
        await registry.unload(name, version);
        return { name, version, state: 'MODEL_STATE_UNSPECIFIED', reason: 'unloaded' };
      });
    },

    SetTrafficSplit(call, callback) {
      answer(callback, 'SetTrafficSplit', async (): Promise<TrafficSplit> => {
        const req = call.request;
        const model = modelNamed(req.name);
        const weights = req.weights.map((w) => ({ version: w.version, weight: w.weight }));
        checkServable(
          model,
          weights.map((w) => w.version),
          'weights',
        );
        if (req.shadow_version) checkServable(model, [req.shadow_version], 'shadow_version');
        await book.ensure(model);
        const before = book.split(model)?.id;
        const record = await book.setSplit(model, {
          weights,
          controlVersion: req.control_version,
          stickyKey: stickyKeyOf(req.sticky_key),
          salt: req.salt,
          shadowVersion: req.shadow_version,
          shadowFraction: req.shadow_fraction,
        });
        return {
          name: model,
          salt: record.salt,
          weights: record.weights.map((w) => ({ version: w.version, weight: w.weight })),
          control_version: record.controlVersion,
          sticky_key: record.stickyKey === 'episode' ? 'STICKY_KEY_EPISODE' : 'STICKY_KEY_ROBOT',
          shadow_version: record.shadowVersion,
          shadow_fraction: record.shadowFraction,
          experiment_id: record.id,
          new_experiment: record.id !== before,
        };
      });
    },

    GetExperiment(call, callback) {
      answer(callback, 'GetExperiment', async () => {
        const model = modelNamed(call.request.name);
        const versions = versionsOf(model);
        const report = await book.report(model, [...versions.keys()], registry.readyVersions(model));
        return toExperiment(report, versions);
      });
    },
  };
}
