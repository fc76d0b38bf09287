export { ExperimentBook, experimentSettings } from './experiment-book.js';
export type { Assignment, ExperimentLogger, ExperimentReport, VariantDecision } from './experiment-book.js';
export { SqliteExperimentStore, DEFAULT_FLUSH_INTERVAL_MS } from './sqlite-store.js';
export { PostgresExperimentStore, redactUrl } from './postgres-store.js';
export type { PostgresStoreOptions } from './postgres-store.js';
export type { ExperimentStore } from './store.js';
export { wilsonInterval, twoProportionZTest } from './statistics.js';
export { actionDivergence } from './divergence.js';
