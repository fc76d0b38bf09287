import { describe, expect, it } from 'vitest';
import {
  COMPONENTS,
  compileServeOptions,
  DEFAULT_SERVE_OPTIONS,
  envName,
  flagName,
  OPTION_KEYS,
  OPTION_TABLE,
  optionsFromEnv,
  optionsMarkdownTable,
  sliceKeys,
  sliceOf,
} from './index.js';

describe('the option table', () => {
  it('every default is valid: compiling nothing gives the defaults', () => {
    expect(compileServeOptions()).toEqual(DEFAULT_SERVE_OPTIONS);
    expect(Object.keys(DEFAULT_SERVE_OPTIONS)).toEqual(OPTION_KEYS);
  });

  it('every option configures a component, and every component has options', () => {
    expect(OPTION_KEYS.filter((key) => (OPTION_TABLE[key].appliesTo as readonly string[]).length === 0)).toEqual([]);
    expect(COMPONENTS.filter((c) => sliceKeys(c).length === 0)).toEqual([]);
  });

  it('names flags and environment variables by one rule, so no two options share one', () => {
    expect(flagName('maxWatchStreamsPerConnection')).toBe('--max-watch-streams-per-connection');
    expect(envName('maxWatchStreamsPerConnection')).toBe('DUST_MAX_WATCH_STREAMS_PER_CONNECTION');
    expect(new Set(OPTION_KEYS.map(flagName)).size).toBe(OPTION_KEYS.length);
    expect(new Set(OPTION_KEYS.map(envName)).size).toBe(OPTION_KEYS.length);
  });

  it('every row documents itself: a flag argument, a help line and a docs text', () => {
    const undocumented = OPTION_KEYS.filter((key) => {
      const row = OPTION_TABLE[key];
      return !/^<[\w-]+>$/.test(row.arg) || row.help.trim() === '' || row.doc.trim() === '';
    });
    expect(undocumented).toEqual([]);
  });

  it("an option set in the environment reaches its component's slice, and the docs table has a row per option", () => {
    const o = compileServeOptions(optionsFromEnv({ DUST_MAX_QUEUE: '7', DUST_BUDGET_LOAD_HEADROOM: '0.5' }));
    expect(sliceOf(o, 'scheduler')).toMatchObject({ maxQueue: 7, budgetLoadHeadroom: 0.5 });
    expect(Object.isFrozen(sliceOf(o, 'scheduler'))).toBe(true);
    expect(Object.keys(sliceOf(o, 'scheduler'))).toEqual(sliceKeys('scheduler'));
    expect(
      optionsMarkdownTable()
        .split('\n')
        .filter((line) => line.startsWith('| ') && !line.startsWith('| option ')).length,
    ).toBe(OPTION_KEYS.length);
  });

  it('hands each component only its own options', () => {
    expect(sliceOf(DEFAULT_SERVE_OPTIONS, 'tokenizer')).toEqual({ maxInstructionBytes: 4096 });
    expect(sliceOf(DEFAULT_SERVE_OPTIONS, 'requestLimits')).toEqual({ maxMessageBytes: 16 * 1024 * 1024, maxIdBytes: 128, maxInstructionBytes: 4096 });
    expect(sliceKeys('scheduler')).toEqual(['maxVlmBatch', 'maxDenoiseBatch', 'maxQueueDelayMs', 'maxQueue', 'batching', 'budgetSafety', 'budgetLoadHeadroom']);
  });
});
