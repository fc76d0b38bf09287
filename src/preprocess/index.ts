export { checkViews, decodeViews } from './images.js';
export type { ImageInput, ImageSpec } from './images.js';
export { PromptTokenizer } from './tokenizer.js';
export type { PromptTokenizerOptions } from './tokenizer.js';
export { normalizeState, denormalizeActions, normalizeActions, checkNormalization } from './normalize.js';
