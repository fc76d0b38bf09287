export {
  decodeViews,
  configureImageDecoding,
  pixelValuesLength,
  DEFAULT_MAX_IMAGE_PIXELS,
  DEFAULT_SHARP_CONCURRENCY,
  RESIZE_KERNEL,
} from './images.js';
export type { ImageInput, ImageEncodingName, ImageSpec, DecodeViewsOptions, ImageDecodingSettings } from './images.js';
export { PromptTokenizer, INSTRUCTION_PLACEHOLDER } from './tokenizer.js';
export type { PromptTokenizerOptions, TokenizedPrompt, TokenizedBatch } from './tokenizer.js';
export { normalizeState, denormalizeActions, checkNormalization, MAX_NORMALIZED_STATE } from './normalize.js';
