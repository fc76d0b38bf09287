/**
 * The prompt tokenizer: builds vlm.onnx's `input_ids` and `attention_mask` rows (docs/model-package.md, [B, L],
 * L = manifest text.max_tokens) with Hugging Face's `tokenizers` binding and the package's tokenizer.json.
 *
 * - The prompt is the manifest's `prompt_template` with every `{instruction}` replaced by the instruction.
 * - Truncation keeps the first `max_tokens` tokens (the binding's right-side truncation, as Python's
 *   `enable_truncation(max_tokens)` does; special tokens a post-processor adds are kept within the budget).
 * - Padding is on the right to exactly `max_tokens`, with the tokenizer.json's own padding id when it
 *   configures one, else the id of `[PAD]` when the vocabulary has it, else 0; `attention_mask` is 1 for
 *   real tokens and 0 for padding. The manifest's length wins over any length set in tokenizer.json.
 * - The binding's `encode` runs on the libuv threadpool and returns a promise, so `encode` is async too.
 * - WordLevel models map unknown words to their `unk_token` only when that token is in the vocabulary;
 *   otherwise the binding fails every encode that meets an unknown word, so `fromFile` refuses such a file.
 */
import { readFile } from 'node:fs/promises';
import type { OptionSlice } from '../config/index.js';
import { Tokenizer, type Encoding } from 'tokenizers';
import { InvalidArgumentError, ModelPackageError, quote } from '../errors/index.js';
import type { Manifest } from '../model/manifest.js';

/** The placeholder `prompt_template` must contain. */
export const INSTRUCTION_PLACEHOLDER = '{instruction}';

/** Distinct instructions whose token ids are remembered (LRU). */
export const DEFAULT_PROMPT_CACHE_SIZE = 1024;

/**
 * The tokenizer's options, rows of the option table (src/config/option-table.ts): instructions longer than
 * maxInstructionBytes UTF-8 bytes are rejected with INVALID_ARGUMENT before tokenizing.
 */
export type PromptTokenizerOptions = OptionSlice<'tokenizer'>;

/** One prompt's graph inputs, each of length `max_tokens`. */
export interface TokenizedPrompt {
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
}

/** A batch of prompts, row-major [B, max_tokens], ready to be a tensor's data. */
export interface TokenizedBatch extends TokenizedPrompt {
  readonly batchSize: number;
}

/** The parts of tokenizer.json that `fromFile` inspects before handing the file to the binding. */
interface TokenizerJson {
  readonly model?: { readonly type?: string; readonly unk_token?: unknown; readonly vocab?: unknown };
  readonly padding?: { readonly pad_id?: unknown } | null;
}

// Characters in no vocabulary; a probe encode with them proves unknown input does not fail at request time.
const LOAD_PROBE = 'dust-serve load probe \u2603 \u{1F916} zqxjv';

// A lone UTF-16 surrogate cannot be encoded as UTF-8; well-formed pairs match \p{Cs} not at all under /u.
const LONE_SURROGATE = /\p{Cs}/u;

export class PromptTokenizer {
  /** L, the length of every row (manifest text.max_tokens). */
  readonly maxTokens: number;
  /** The id used for padding positions. */
  readonly padId: number;
  private readonly cache = new Map<string, TokenizedPrompt>();

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: string,
    maxTokens: number,
    padId: number,
    /** Longest instruction it accepts, in UTF-8 bytes. */
    readonly maxInstructionBytes: number,
  ) {
    this.maxTokens = maxTokens;
    this.padId = padId;
  }

  /**
   * Loads a tokenizer.json file and configures truncation and padding to the manifest's `max_tokens`.
   * @throws ModelPackageError when the file is missing or unusable, or the manifest's text section is wrong.
   */
  static async fromFile(path: string, text: Manifest['text'], options: PromptTokenizerOptions): Promise<PromptTokenizer> {
    let source: string;
    try {
      source = await readFile(path, 'utf8');
    } catch (cause) {
      throw new ModelPackageError(`${path}: cannot read the tokenizer: ${(cause as Error).message}`, { cause });
    }
    return PromptTokenizer.fromJson(source, path, text, options);
  }

  /**
   * A tokenizer from the text of a tokenizer.json the caller read (a model package's, read confined to its
   * folder); `where` names it in messages.
   * @throws ModelPackageError when the text is unusable, or the manifest's text section is wrong.
   */
  static async fromJson(source: string, where: string, text: Manifest['text'], options: PromptTokenizerOptions): Promise<PromptTokenizer> {
    const maxTokens = text.max_tokens;
    if (!Number.isInteger(maxTokens) || maxTokens <= 0) {
      throw new ModelPackageError(`manifest.json: text.max_tokens must be a positive integer, got ${maxTokens}`);
    }
    if (typeof text.prompt_template !== 'string' || !text.prompt_template.includes(INSTRUCTION_PLACEHOLDER)) {
      throw new ModelPackageError(`manifest.json: text.prompt_template must contain ${INSTRUCTION_PLACEHOLDER}, got ${quote(String(text.prompt_template))}`);
    }
    const { maxInstructionBytes } = options;
    if (!Number.isInteger(maxInstructionBytes) || maxInstructionBytes <= 0) {
      throw new RangeError(`maxInstructionBytes must be a positive integer, got ${maxInstructionBytes}`);
    }

    let json: TokenizerJson;
    try {
      json = JSON.parse(source) as TokenizerJson;
    } catch {
      // Node's message quotes the text it choked on: say where the file is, never what it holds. No `cause`
      // either, since the log's error serializer prints the causes' messages.
      throw new ModelPackageError(`${where}: the tokenizer is not valid JSON`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ModelPackageError(`${where}: the tokenizer is not a JSON object`);
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = Tokenizer.fromString(source);
    } catch (cause) {
      // The binding's message may quote the file: cut like any quoted text, and not carried as `cause`.
      throw new ModelPackageError(`${where}: not a Hugging Face tokenizer.json: ${quote((cause as Error).message)}`);
    }

    if (json.model?.type === 'WordLevel') {
      const unk = json.model.unk_token;
      if (typeof unk !== 'string' || tokenizer.tokenToId(unk) === null) {
        throw new ModelPackageError(
          `${where}: the WordLevel model's unk_token ${quote(String(unk))} is not in the vocabulary, ` +
            'so any unknown word would fail; add it to model.vocab',
        );
      }
    }

    const padId = choosePadId(json, tokenizer);
    const padToken = tokenizer.idToToken(padId) ?? undefined;
    // Lower-case directions: the binding rejects the 'Right' of its own TruncationDirection typings.
    tokenizer.setTruncation(maxTokens, { direction: 'right' });
    tokenizer.setPadding({ maxLength: maxTokens, direction: 'right', padId, ...(padToken ? { padToken } : {}) });

    try {
      const probe = await tokenizer.encode(text.prompt_template.replaceAll(INSTRUCTION_PLACEHOLDER, LOAD_PROBE));
      if (probe.getIds().length !== maxTokens) {
        throw new Error(`it returned ${probe.getIds().length} tokens despite padding to ${maxTokens}`);
      }
    } catch (cause) {
      throw new ModelPackageError(`${where}: the tokenizer fails on a probe prompt: ${quote((cause as Error).message)}`, {
        cause,
      });
    }
    return new PromptTokenizer(tokenizer, text.prompt_template, maxTokens, padId, maxInstructionBytes);
  }

  /**
   * Tokenizes one instruction into rows of exactly `maxTokens`.
   * @throws InvalidArgumentError when the instruction is too long or not valid text.
   */
  async encode(instruction: string): Promise<TokenizedPrompt> {
    // Robots repeat their instruction on every control step: remember recent ones (a hit costs no
    // threadpool round trip and no native call). Callers get copies, since batches take ownership.
    const cached = this.cache.get(instruction);
    if (cached) {
      this.cache.delete(instruction);
      this.cache.set(instruction, cached);
      return { inputIds: cached.inputIds.slice(), attentionMask: cached.attentionMask.slice() };
    }
    const encoding = await this.tokenizer.encode(this.prompt(instruction, 'instruction'));
    const inputIds = new BigInt64Array(this.maxTokens);
    const attentionMask = new BigInt64Array(this.maxTokens);
    this.copyRow(encoding, inputIds, attentionMask, 0);
    this.cache.set(instruction, { inputIds: inputIds.slice(), attentionMask: attentionMask.slice() });
    if (this.cache.size > DEFAULT_PROMPT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return { inputIds, attentionMask };
  }

  /**
   * Tokenizes several instructions in one call into the binding (which parallelizes the batch natively),
   * returning [B, maxTokens] row-major arrays. An invalid instruction rejects the whole call, so callers
   * batching independent requests should validate with `encode` per request instead.
   */
  async encodeBatch(instructions: readonly string[]): Promise<TokenizedBatch> {
    const prompts = instructions.map((s, i) => this.prompt(s, `instructions[${i}]`));
    const encodings = prompts.length === 0 ? [] : await this.tokenizer.encodeBatch(prompts);
    const inputIds = new BigInt64Array(prompts.length * this.maxTokens);
    const attentionMask = new BigInt64Array(prompts.length * this.maxTokens);
    encodings.forEach((e, row) => this.copyRow(e, inputIds, attentionMask, row * this.maxTokens));
    return { inputIds, attentionMask, batchSize: prompts.length };
  }

  private prompt(instruction: string, field: string): string {
    if (typeof instruction !== 'string') {
      throw new InvalidArgumentError(`${field} must be a string, got ${typeof instruction}`);
    }
    const bytes = Buffer.byteLength(instruction, 'utf8');
    if (bytes > this.maxInstructionBytes) {
      throw new InvalidArgumentError(
        `${field} is ${bytes} UTF-8 bytes, more than the limit of ${this.maxInstructionBytes}; ` +
          `shorten it (the model reads only its first ${this.maxTokens} tokens)`,
      );
    }
    if (LONE_SURROGATE.test(instruction)) {
      throw new InvalidArgumentError(`${field} contains an unpaired UTF-16 surrogate; send valid UTF-8 text`);
    }
    // A replacer function, so that `$&`-style patterns in the instruction are inserted literally.
    return this.template.replaceAll(INSTRUCTION_PLACEHOLDER, () => instruction);
  }

  private copyRow(encoding: Encoding, ids: BigInt64Array, mask: BigInt64Array, offset: number): void {
    const rowIds = encoding.getIds();
    const rowMask = encoding.getAttentionMask();
    if (rowIds.length !== this.maxTokens) {
      // setPadding/setTruncation make this impossible; fail loudly rather than misalign a batch.
      throw new Error(`tokenizer returned ${rowIds.length} ids, expected ${this.maxTokens}`);
    }
    for (let i = 0; i < this.maxTokens; i++) {
      ids[offset + i] = BigInt(rowIds[i]);
      mask[offset + i] = BigInt(rowMask[i]);
    }
  }
}

function choosePadId(json: TokenizerJson, tokenizer: Tokenizer): number {
  const configured = json.padding?.pad_id;
  if (typeof configured === 'number' && Number.isInteger(configured) && configured >= 0) {
    return configured;
  }
  return tokenizer.tokenToId('[PAD]') ?? 0;
}
