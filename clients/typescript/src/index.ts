/** The dust-serve client library (@dust-serve/client): what a robot program imports. */
export { DustClient } from './dust-client.js';
export type { DustClientOptions, CallOptions, StreamOptions, ServingStatus } from './dust-client.js';
export { PredictStream } from './predict-stream.js';
export { RealtimeChunker } from './realtime-chunker.js';
export type { ChunkerSession, RealtimeChunkerOptions } from './realtime-chunker.js';
export { DustClientError, statusName } from './errors.js';
export { compileRetryPolicy, DEFAULT_LOAD_BALANCING, DEFAULT_RETRY_POLICY, DEFAULT_SERVICE_CONFIG, serviceConfig } from './service-config.js';
export type { LoadBalancingPolicy, RetryPolicy, RetryPolicyInit, ServiceConfigJson } from './service-config.js';
export type { StatusName } from './errors.js';
export { MAX_SEED, seedToWire, toPredictRequest } from './request.js';
export type { PredictRequestInit, ImageInit, ImageEncodingName, SamplingInit, PrefixInit, ChunkingMethodName } from './request.js';
export { actionRows, fromPredictResponse } from './response.js';
export type { PredictResult, SamplingReport, Timing, ChunkingReport } from './response.js';
export type { ModelList, ModelVersionInfo, ModelState, EmbodimentInfo, OutcomeInit, OutcomeResult } from './models.js';
export type {
  SplitInit,
  VersionWeightInit,
  StickyKeyName,
  DecisionName,
  TrafficSplitResult,
  ExperimentResult,
  VariantStatsResult,
  ModelStatusResult,
} from './admin.js';
export { decodeTensor, encodeTensor, tensorRows, tensorToArrays, shortestFloat32 } from './tensor.js';
export type { FloatTensor } from './tensor.js';
