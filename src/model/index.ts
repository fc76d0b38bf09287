export type { Manifest, EmbodimentSpec, MinMax } from './manifest.js';
export { parseManifest } from './manifest-schema.js';
export { readPackage, scanRepository, checkGraphs, expectedGraphs } from './package.js';
export type { ModelPackage, PackageLocation, GraphInfo, ValueInfo } from './package.js';
export { parseModelRef } from './model-ref.js';
export type { ModelRef } from './model-ref.js';
export { ModelRegistry } from './registry.js';
export { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_TRAFFIC_WINDOW_MS } from './registry.js';
export type { Lease, ModelHandle, ModelVersionEntry, RegistryOptions, RuntimeEvents, RuntimeFactory, VersionState, RegistryLogger, StateListener } from './registry.js';
