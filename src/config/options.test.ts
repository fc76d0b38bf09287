import { describe, expect, it } from 'vitest';
import { compileServeOptions, decodeThreadCount, DEFAULT_SERVE_OPTIONS, envName, optionsFromEnv, optionsFromFile } from './index.js';

describe('serve options', () => {
  it('defaults, then file < environment < flags', () => {
    const o = compileServeOptions({ port: 1000, maxQueue: 5 }, optionsFromEnv({ DUST_PORT: '2000', DUST_DEVICE: 'webgpu' }), { port: '3000' });
    expect(o.port).toBe(3000);
    expect(o.device).toBe('webgpu');
    expect(o.maxQueue).toBe(5);
    expect(o.maxDenoiseBatch).toBe(DEFAULT_SERVE_OPTIONS.maxDenoiseBatch);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('names every environment variable DUST_<FLAG_IN_CAPS>', () => {
    expect(envName('modelRepository')).toBe('DUST_MODEL_REPOSITORY');
    expect(envName('port')).toBe('DUST_PORT');
    expect(optionsFromEnv({ DUST_MODEL_REPOSITORY: '/srv/models', DUST_WARMUP: 'false' })).toEqual({ modelRepository: '/srv/models', warmup: 'false' });
    expect(compileServeOptions(optionsFromEnv({ DUST_WARMUP: 'false' })).warmup).toBe(false);
  });

  it('reports every invalid option by name', () => {
    expect(() => compileServeOptions({ port: '70000', device: 'tpu' as never })).toThrow(/port.*device|device.*port/s);
    expect(() => compileServeOptions({ maxActive: 8, maxDenoiseBatch: 64 })).toThrow(/maxActive must be at least maxDenoiseBatch/);
    expect(() => optionsFromFile({ prot: 1 }, 'c.json')).toThrow(/unknown option\(s\) prot/);
    expect(() => optionsFromFile([], 'c.json')).toThrow(/JSON object/);
  });

  it('sizes the decode pool to the cores the inference threads leave, unless set', () => {
    expect(decodeThreadCount({ decodeThreads: 0, threads: 1 }, 2)).toBe(1);
    expect(decodeThreadCount({ decodeThreads: 0, threads: 12 }, 16)).toBe(4);
    expect(decodeThreadCount({ decodeThreads: 0, threads: 16 }, 16)).toBe(1);
    expect(decodeThreadCount({ decodeThreads: 3, threads: 1 }, 2)).toBe(3);
    const o = compileServeOptions(optionsFromEnv({ DUST_DECODE_THREADS: '2', DUST_DECODE_NICENESS: '0', DUST_BUDGET_LOAD_HEADROOM: '1.5' }));
    expect([o.decodeThreads, o.decodeNiceness, o.budgetLoadHeadroom]).toEqual([2, 0, 1.5]);
    expect(() => compileServeOptions({ decodeNiceness: 20 })).toThrow(/decodeNiceness/);
  });
});
