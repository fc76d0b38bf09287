export type { Manifest, EmbodimentSpec, MinMax, RealtimeChunkingMethod } from './manifest.js';
export { parseManifest } from './manifest-schema.js';
export { readPackage, checkGraphs } from './package.js';
export type { ModelPackage, GraphInfo } from './package.js';
export { scanRepository } from './repository-scan.js';
export { DEFAULT_PACKAGE_LIMITS } from './package-limits.js';
export { parseModelRef } from './model-ref.js';
export { ModelRegistry } from './registry.js';
export type { Lease, ModelHandle, ModelVersionEntry, RuntimeEvents, RuntimeFactory } from './registry.js';
