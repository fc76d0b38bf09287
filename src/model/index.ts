export type { Manifest, EmbodimentSpec, MinMax } from './manifest.js';
