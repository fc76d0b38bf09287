export { ExperimentBook, experimentSettings } from './experiment-book.js';
export type {
  Assignment,
  Credit,
  ExperimentLogger,
  ExperimentOptions,
  ExperimentSettings,
  ExperimentReport,
  SplitSpec,
  VariantDecision,
  VariantReport,
} from './experiment-book.js';
export { SqliteExperimentStore, DEFAULT_FLUSH_INTERVAL_MS } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export { IN_MEMORY, DEFAULT_LEDGER_RETENTION } from './sqlite-database.js';
export { PostgresExperimentStore, redactUrl } from './postgres-store.js';
export type { PostgresStoreOptions } from './postgres-store.js';
export type { ExperimentStore, ExperimentRecord, ServedRequest } from './store.js';
export { actionDivergence } from './divergence.js';
export type { ActionChunk } from './divergence.js';
export { DEFAULT_ALPHA, DEFAULT_MIXTURE_SD, wilsonInterval, twoProportionZTest, mixtureLogLikelihoodRatio, updateAlwaysValid } from './statistics.js';
export type { Decision } from './statistics.js';
export { normalizeWeights, assignVersion, stickyKeyOf } from './traffic-split.js';
export type { StickyKeyKind, VersionWeight } from './traffic-split.js';
export { DEFAULT_MAX_TRACKED_ROBOTS } from './distinct-counter.js';
export { DEFAULT_LEDGER_CAPACITY } from './episode-ledger.js';
