/** ListModels and ReportOutcome messages <-> the client's camelCase types. Pure. */
import type { ListModelsResponse__Output } from './gen/dust/serving/v1/ListModelsResponse.js';
import type { ModelVersionInfo__Output } from './gen/dust/serving/v1/ModelVersionInfo.js';
import type { ReportOutcomeRequest } from './gen/dust/serving/v1/ReportOutcomeRequest.js';
import type { ReportOutcomeResponse__Output } from './gen/dust/serving/v1/ReportOutcomeResponse.js';
import type { ChunkingMethodName } from './request.js';

export type ModelState = 'UNSPECIFIED' | 'LOADING' | 'READY' | 'FAILED' | 'UNLOADING';

export interface EmbodimentInfo {
  name: string;
  id: number;
  stateDim: number;
  actionDim: number;
}

export interface ModelVersionInfo {
  name: string;
  version: number;
  state: ModelState;
  /** Why the version FAILED, or is LOADING again (its dead inference worker being replaced); empty otherwise. */
  reason: string;
  /** Why the last reload failed while the copy loaded before kept serving; empty otherwise. */
  lastLoadError: string;
  embodiments: EmbodimentInfo[];
  cameras: string[];
  imageHeight: number;
  imageWidth: number;
  actionHorizon: number;
  futureTokens: number;
  futureDim: number;
  defaultActionSteps: number;
  defaultVisionSteps: number;
  maxVisionSteps: number;
  /** Share of the model's unpinned traffic. */
  trafficWeight: number;
  /** The execution provider serving it. */
  device: string;
  /**
   * The real-time chunking methods it answers a committed prefix with; empty: it refuses one (as a server older
   * than the field does). Always set by ListModels.
   */
  realtimeChunking?: ChunkingMethodName[];
}

export interface ModelList {
  models: ModelVersionInfo[];
  /** The model a request with an empty `model` goes to. */
  defaultModel: string;
}

const STATES: Record<string, ModelState> = {
  MODEL_STATE_LOADING: 'LOADING',
  MODEL_STATE_READY: 'READY',
  MODEL_STATE_FAILED: 'FAILED',
  MODEL_STATE_UNLOADING: 'UNLOADING',
};

const CHUNKING: Record<string, ChunkingMethodName> = {
  CHUNKING_METHOD_CONDITION: 'condition',
  CHUNKING_METHOD_INPAINT: 'inpaint',
  CHUNKING_METHOD_NAIVE: 'naive',
  CHUNKING_METHOD_ENSEMBLE: 'ensemble',
};

/** A state this client's proto does not know arrives as its number: UNSPECIFIED. */
export function modelState(state: unknown): ModelState {
  return STATES[String(state)] ?? 'UNSPECIFIED';
}

function fromModelVersionInfo(m: ModelVersionInfo__Output): ModelVersionInfo {
  return {
    name: m.name,
    version: m.version,
    state: modelState(m.state),
    reason: m.reason,
    lastLoadError: m.last_load_error,
    realtimeChunking: m.realtime_chunking.flatMap((c) => CHUNKING[String(c)] ?? []),
    embodiments: m.embodiments.map((e) => ({ name: e.name, id: e.id, stateDim: e.state_dim, actionDim: e.action_dim })),
    cameras: [...m.cameras],
    imageHeight: m.image_height,
    imageWidth: m.image_width,
    actionHorizon: m.action_horizon,
    futureTokens: m.future_tokens,
    futureDim: m.future_dim,
    defaultActionSteps: m.default_action_steps,
    defaultVisionSteps: m.default_vision_steps,
    maxVisionSteps: m.max_vision_steps,
    trafficWeight: m.traffic_weight,
    device: m.device,
  };
}

export function fromListModelsResponse(msg: ListModelsResponse__Output): ModelList {
  return { models: msg.models.map(fromModelVersionInfo), defaultModel: msg.default_model };
}

export interface OutcomeInit {
  robotId: string;
  episodeId: string;
  success: boolean;
  /** Optional scalar reward; left out of the message when undefined. */
  reward?: number;
}

export interface OutcomeResult {
  /** The model and version the episode was credited to. */
  modelName: string;
  modelVersion: number;
  /** Whether the outcome entered the model's current experiment (not for pinned episodes, earlier experiments or repeats). */
  counted: boolean;
}

export function toReportOutcomeRequest(init: OutcomeInit): ReportOutcomeRequest {
  const out: ReportOutcomeRequest = { robot_id: init.robotId, episode_id: init.episodeId, success: init.success };
  if (init.reward !== undefined) out.reward = init.reward;
  return out;
}

export function fromReportOutcomeResponse(msg: ReportOutcomeResponse__Output): OutcomeResult {
  return { modelName: msg.model_name, modelVersion: msg.model_version, counted: msg.counted };
}
