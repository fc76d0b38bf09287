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

  it('experiment and credential options', () => {
    const o = compileServeOptions(optionsFromEnv({ DUST_EXPERIMENT_DB: ':memory:', DUST_EXPERIMENT_ALPHA: '0.01', DUST_TOKENS_FILE: '/etc/dust/tokens.json' }));
    expect(o).toMatchObject({
      experimentDb: ':memory:',
      experimentAlpha: 0.01,
      experimentMixtureSd: 0.1,
      tokensFile: '/etc/dust/tokens.json',
      maxShadowInflight: 4,
    });
    expect(() => compileServeOptions({ experimentAlpha: 1 })).toThrow(/experimentAlpha/);
    expect(() => compileServeOptions({ experimentMixtureSd: 0 })).toThrow(/experimentMixtureSd/);
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
    const o = compileServeOptions(
      optionsFromEnv({ DUST_DECODE_THREADS: '2', DUST_DECODE_NICENESS: '0', DUST_WORKER_NICENESS: '5', DUST_BUDGET_LOAD_HEADROOM: '1.5' }),
    );
    expect([o.decodeThreads, o.decodeNiceness, o.workerNiceness, o.budgetLoadHeadroom]).toEqual([2, 0, 5, 1.5]);
    expect(() => compileServeOptions({ decodeNiceness: 20 })).toThrow(/decodeNiceness/);
    expect(() => compileServeOptions({ workerNiceness: -1 })).toThrow(/workerNiceness/);
    expect(compileServeOptions({}).workerNiceness).toBe(19);
  });

  it('bounds the id limit, since ids travel in metadata and logs', () => {
    expect(compileServeOptions(optionsFromEnv({ DUST_MAX_ID_BYTES: '1024', DUST_MAX_INSTRUCTION_BYTES: '100000' }))).toMatchObject({
      maxIdBytes: 1024,
      maxInstructionBytes: 100_000,
    });
    expect(() => compileServeOptions({ maxIdBytes: 1025 })).toThrow(/maxIdBytes/);
    expect(() => compileServeOptions({ maxInstructionBytes: 0 })).toThrow(/maxInstructionBytes/);
  });

  it('checks the TLS files go together and the metrics port stays off the gRPC port', () => {
    expect(compileServeOptions().metricsPort).toBe(9464);
    expect(compileServeOptions(optionsFromEnv({ DUST_METRICS_PORT: '0' })).metricsPort).toBe(0);
    expect(() => compileServeOptions({ tlsCert: 'c.pem' })).toThrow(/tlsCert and tlsKey go together/);
    expect(() => compileServeOptions({ tlsKey: 'k.pem' })).toThrow(/tlsCert and tlsKey go together/);
    expect(() => compileServeOptions({ tlsClientCa: 'ca.pem' })).toThrow(/tlsClientCa \(mutual TLS\) needs tlsCert/);
    expect(compileServeOptions(optionsFromEnv({ DUST_TLS_CERT: 'c.pem', DUST_TLS_KEY: 'k.pem', DUST_TLS_CLIENT_CA: 'ca.pem' })).tlsClientCa).toBe('ca.pem');
    expect(() => compileServeOptions({ port: 9000, metricsPort: 9000 })).toThrow(/metricsPort must differ/);
    expect(compileServeOptions(optionsFromEnv({ DUST_METRICS_HOST: '127.0.0.1', DUST_METRICS_TOKEN_FILE: '/run/metrics-token' }))).toMatchObject({
      metricsHost: '127.0.0.1',
      metricsTokenFile: '/run/metrics-token',
    });
    expect(() => compileServeOptions({ robotRateLimit: -1 })).toThrow(/robotRateLimit/);
  });
});
