export { checkViews, decodeViews, emptyPixelRow, pixelDtypeOf, pixelRowDtype, pixelValuesLength } from './images.js';
export type { ImageInput, ImageSpec, PixelDtype, PixelRow } from './images.js';
export { PromptTokenizer } from './tokenizer.js';
export type { PromptTokenizerOptions } from './tokenizer.js';
export { normalizeState, denormalizeActions, normalizeActions, checkNormalization } from './normalize.js';
