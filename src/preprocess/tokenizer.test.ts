import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ModelPackageError } from '../errors/index.js';
import type { Manifest } from '../model/manifest.js';
import { DEFAULT_SERVE_OPTIONS, sliceOf } from '../config/index.js';
import { PromptTokenizer } from './index.js';

/** The server's defaults. */
const OPTIONS = sliceOf(DEFAULT_SERVE_OPTIONS, 'tokenizer');

const VOCAB: Record<string, number> = {
  '[PAD]': 0,
  '[UNK]': 1,
  pick: 2,
  up: 3,
  the: 4,
  red: 5,
  cube: 6,
  task: 7,
  ':': 8,
  $: 9,
  '&': 10,
};

/** A WordLevel tokenizer.json as Hugging Face `tokenizers` saves it. */
function tokenizerJson(vocab: Record<string, number>, unk = '[UNK]'): string {
  const special = (content: string) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]'].filter((t) => t in vocab).map(special),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: unk },
  });
}

const text = (max_tokens: number, prompt_template = '{instruction}'): Manifest['text'] => ({
  max_tokens,
  tokenizer: 'tokenizer.json',
  prompt_template,
});

const ids = (a: BigInt64Array): number[] => Array.from(a, Number);

let dir: string;
let path: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dust-tokenizer-'));
  path = join(dir, 'tokenizer.json');
  await writeFile(path, tokenizerJson(VOCAB));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PromptTokenizer', () => {
  it('lowercases, maps words to ids, pads with [PAD] and masks the padding', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(8), OPTIONS);
    const { inputIds, attentionMask } = await tok.encode('Pick up the RED cube');
    expect(inputIds).toBeInstanceOf(BigInt64Array);
    expect(attentionMask).toBeInstanceOf(BigInt64Array);
    expect(ids(inputIds)).toEqual([2, 3, 4, 5, 6, 0, 0, 0]);
    expect(ids(attentionMask)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it('maps unknown words to [UNK]', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(6), OPTIONS);
    const { inputIds, attentionMask } = await tok.encode('pick up the blue sphere');
    expect(ids(inputIds)).toEqual([2, 3, 4, 1, 1, 0]);
    expect(ids(attentionMask)).toEqual([1, 1, 1, 1, 1, 0]);
  });

  it('keeps the first max_tokens tokens of a long prompt', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(4), OPTIONS);
    const { inputIds, attentionMask } = await tok.encode('pick up the red cube pick up the red cube');
    expect(ids(inputIds)).toEqual([2, 3, 4, 5]);
    expect(ids(attentionMask)).toEqual([1, 1, 1, 1]);
  });

  it('applies the prompt template, inserting the instruction literally', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(8, 'task: {instruction}'), OPTIONS);
    expect(ids((await tok.encode('pick up')).inputIds)).toEqual([7, 8, 2, 3, 0, 0, 0, 0]);
    // `$&` would mean "the match" to String.replace with a string replacement.
    expect(ids((await tok.encode('$ &')).inputIds)).toEqual([7, 8, 9, 10, 0, 0, 0, 0]);
    // An empty instruction leaves the template alone.
    expect(ids((await tok.encode('')).attentionMask)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("pads with the vocabulary's [PAD] id when it is not 0", async () => {
    const file = join(dir, 'pad9.json');
    await writeFile(file, tokenizerJson({ '[UNK]': 0, pick: 1, '[PAD]': 9 }));
    const tok = await PromptTokenizer.fromFile(file, text(4), OPTIONS);
    expect(tok.padId).toBe(9);
    const { inputIds, attentionMask } = await tok.encode('pick zzz');
    expect(ids(inputIds)).toEqual([1, 0, 9, 9]);
    expect(ids(attentionMask)).toEqual([1, 1, 0, 0]);
  });

  it('pads with 0 when the vocabulary has no [PAD]', async () => {
    const file = join(dir, 'nopad.json');
    await writeFile(file, tokenizerJson({ '[UNK]': 3, pick: 5 }));
    const tok = await PromptTokenizer.fromFile(file, text(3), OPTIONS);
    expect(ids((await tok.encode('pick')).inputIds)).toEqual([5, 0, 0]);
  });

  it('encodes a batch into [B, max_tokens] rows equal to single encodes', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(5), OPTIONS);
    const prompts = ['pick up', 'the red cube pick up the', 'unknown'];
    const batch = await tok.encodeBatch(prompts);
    expect(batch.batchSize).toBe(3);
    expect(ids(batch.inputIds)).toEqual([2, 3, 0, 0, 0, 4, 5, 6, 2, 3, 1, 0, 0, 0, 0]);
    const singles = await Promise.all(prompts.map((p) => tok.encode(p)));
    expect(ids(batch.attentionMask)).toEqual(singles.flatMap((s) => ids(s.attentionMask)));
    expect((await tok.encodeBatch([])).inputIds.length).toBe(0);
  });

  it('gives each concurrent request its own result', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(3), OPTIONS);
    const words = ['pick', 'up', 'the', 'red', 'cube'];
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tok.encode(words[i % 5])));
    results.forEach((r, i) => expect(ids(r.inputIds)).toEqual([VOCAB[words[i % 5]], 0, 0]));
  });

  it('repeats of an instruction are answered from the cache with independent copies', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(3), OPTIONS);
    const first = await tok.encode('red cube');
    first.inputIds.fill(99n); // a batch takes ownership of its rows and may overwrite them
    const again = await tok.encode('red cube');
    expect(ids(again.inputIds)).toEqual([VOCAB.red, VOCAB.cube, 0]);
    expect(again.inputIds).not.toBe(first.inputIds);
  });

  it('rejects an instruction over the byte limit, counting UTF-8 bytes', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(8), { maxInstructionBytes: 10 });
    await tok.encode('pick up!!!');
    // 4 characters, 12 UTF-8 bytes.
    await expect(tok.encode('\u20ac\u20ac\u20ac\u20ac')).rejects.toThrow(
      new InvalidArgumentError('instruction is 12 UTF-8 bytes, more than the limit of 10; shorten it (the model reads only its first 8 tokens)'),
    );
    const byDefault = await PromptTokenizer.fromFile(path, text(8), OPTIONS);
    await byDefault.encode('a'.repeat(4096));
    await expect(byDefault.encode('a'.repeat(4097))).rejects.toThrow(/4097 UTF-8 bytes, more than the limit of 4096/);
  });

  it('rejects text that is not valid Unicode', async () => {
    const tok = await PromptTokenizer.fromFile(path, text(8), OPTIONS);
    await expect(tok.encode('pick \ud800 up')).rejects.toThrow(InvalidArgumentError);
    await expect(tok.encodeBatch(['pick', 'x\udc00'])).rejects.toThrow(/instructions\[1\] contains an unpaired/);
    // A well-formed surrogate pair (an emoji) is fine and unknown.
    expect(ids((await tok.encode('pick \u{1F916}')).inputIds).slice(0, 2)).toEqual([2, 1]);
  });
});

describe('PromptTokenizer.fromFile refuses unusable packages', () => {
  it('a missing file', async () => {
    await expect(PromptTokenizer.fromFile(join(dir, 'absent.json'), text(8), OPTIONS)).rejects.toThrow(ModelPackageError);
  });

  it('a file that is not a tokenizer', async () => {
    const file = join(dir, 'bogus.json');
    await writeFile(file, '{"hello": 1}');
    await expect(PromptTokenizer.fromFile(file, text(8), OPTIONS)).rejects.toThrow(/not a Hugging Face tokenizer.json/);
  });

  it('a WordLevel model whose unk_token is not in the vocabulary', async () => {
    const file = join(dir, 'nounk.json');
    await writeFile(file, tokenizerJson({ '[PAD]': 0, pick: 1 }, '<unk>'));
    await expect(PromptTokenizer.fromFile(file, text(8), OPTIONS)).rejects.toThrow(
      new ModelPackageError(`${file}: the WordLevel model's unk_token "<unk>" is not in the vocabulary, so any unknown word would fail; add it to model.vocab`),
    );
  });

  it('a template without {instruction} or a bad max_tokens', async () => {
    await expect(PromptTokenizer.fromFile(path, text(8, 'do it'), OPTIONS)).rejects.toThrow(/text.prompt_template must contain \{instruction\}/);
    await expect(PromptTokenizer.fromFile(path, text(0), OPTIONS)).rejects.toThrow(ModelPackageError);
  });
});

describe('PromptTokenizer.fromJson quotes nothing of the text it refuses', () => {
  const secret = 'root:x:0:0:root:/root:/bin/bash';

  it("text that is not JSON: where it is, not what it holds, and no cause carrying Node's excerpt", async () => {
    const err = await PromptTokenizer.fromJson(`${secret}\n`, 'pkg: text.tokenizer', text(8), OPTIONS).then(
      () => new Error('accepted'),
      (e: unknown) => e as Error,
    );
    expect(err).toEqual(new ModelPackageError('pkg: text.tokenizer: the tokenizer is not valid JSON'));
    expect(String(err.cause ?? '')).not.toContain('root:x');
  });

  it("JSON the binding refuses: the binding's message cut, not carried as cause", async () => {
    const err = await PromptTokenizer.fromJson(JSON.stringify({ model: { type: secret.repeat(10) } }), 'pkg', text(8), OPTIONS).then(
      () => new Error('accepted'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ModelPackageError);
    expect(err.message.length).toBeLessThan(200);
    expect(err.cause).toBeUndefined();
  });
});
