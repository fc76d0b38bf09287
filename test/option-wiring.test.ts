/**
 * Every option reaches the component its row of the option table names (src/config/option-table.ts, appliesTo).
 * Three layers hold that together: a component declares its options as its slice of the table, so reading an
 * option it is not given does not compile; the composition root hands each component its slice (checked here on
 * the source, for every component the table names); and the running server's components hold the values set,
 * checked here for the engine's (scheduler, tokenizer, runtime, decode pool), and on the wire for the request
 * limits, where an option that stopped at the edge once let the tokenizer keep its own limit.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENTS, compileServeOptions, sliceKeys, sliceOf, type ServeOptions } from '../src/config/index.js';
import { nativeStatus, type ModelRuntime } from '../src/engine/index.js';
import { loadProtos } from '../src/api/index.js';
import type { PolicyServiceClient } from '@dust-serve/client/gen/dust/serving/v1/PolicyService';
import { floats, predict, predictError, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { requireTool } from './support/requires.js';
import { spawnServe } from './support/serve-process.js';

/** Where the serving process builds its components: the server's composition root and the CLI (its logger). */
const COMPOSITION = ['src/api/server.ts', 'src/cli/serve.ts'].map((file) => readFileSync(file, 'utf8')).join('\n');

describe('the composition root', () => {
  it.each(COMPONENTS.map((component) => ({ component, keys: sliceKeys(component).join(', ') })))(
    'hands $component its slice of the options ($keys)',
    ({ component }) => {
      expect(sliceKeys(component).length, `no option applies to ${component}`).toBeGreaterThan(0);
      expect(COMPOSITION).toContain(`sliceOf(options, '${component}')`);
    },
  );
});

describe('--max-instruction-bytes reaches the tokenizer, not only the wire scan', () => {
  it('a 5000-byte instruction is served under --max-instruction-bytes 8192, and one over it is refused naming 8192', async () => {
    const { child, address } = await spawnServe(['--max-instruction-bytes', '8192']);
    const { policy } = loadProtos();
    const client = new policy.PolicyService(address, grpc.credentials.createInsecure()) as unknown as PolicyServiceClient;
    try {
      const served = await predict(client, await validRequest({ instruction: 'a'.repeat(5000) }));
      expect(floats(served.actions).length).toBeGreaterThan(0);
      const refused = await predictError(client, await validRequest({ instruction: 'a'.repeat(8193) }));
      expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refused.details).toMatch(/8192/);
    } finally {
      client.close();
      child.kill('SIGKILL');
    }
  });

  it('by default the limit stays 4096', async () => {
    const t = await startTestServer({ warmup: false });
    try {
      await predict(t.client, await validRequest({ instruction: 'a'.repeat(4096) }));
      const refused = await predictError(t.client, await validRequest({ instruction: 'a'.repeat(5000) }));
      expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(refused.details).toMatch(/limit of 4096/);
    } finally {
      await t.close();
    }
  });
});

describe("the engine's components hold the options set, none of their own", () => {
  // Every value differs from its default.
  const set = {
    maxVlmBatch: 7,
    maxDenoiseBatch: 5,
    maxQueueDelayMs: 3,
    maxQueue: 9,
    batching: 'request',
    budgetSafety: 0.7,
    budgetLoadHeadroom: 2,
    maxActive: 11,
    maxInstructionBytes: 8000,
    decodeThreads: 2,
    warmup: false,
    executor: 'onnxruntime-node',
    cudaGraphs: true,
  } as const;
  let t: TestServer;
  let options: Readonly<ServeOptions>;
  let runtime: ModelRuntime;

  beforeAll(async () => {
    t = await startTestServer(set);
    options = compileServeOptions(set);
    runtime = t.server.registry.list().find((e) => e.state === 'READY')!.runtime!;
  });
  afterAll(() => t?.close());

  it('the scheduler (in the inference worker) has every scheduler option', () => {
    expect(runtime.worker.options).toEqual(sliceOf(options, 'scheduler'));
  });

  it('the tokenizer has maxInstructionBytes', () => {
    expect(runtime.tokenizer.maxInstructionBytes).toBe(set.maxInstructionBytes);
  });

  it('the decode pool has decodeThreads', () => {
    expect(runtime.decoder.size).toBe(set.decodeThreads);
  });

  it('the runtime has every runtime option, and runs on the executor set', () => {
    // The harness sets threads and shutdownGraceSeconds itself.
    expect(Object.keys(runtime.settings)).toEqual(sliceKeys('runtime'));
    expect(runtime.settings).toMatchObject({ maxActive: set.maxActive, warmup: set.warmup, cudaGraphs: set.cudaGraphs });
    expect(runtime.executor).toBe('onnxruntime-node');
  });
});

const native = nativeStatus();
requireTool('the native addon', native.ok, native.ok ? '' : `${native.missing}; ${native.fix}`).it(
  'by default (--executor auto) a model runs on the native executor where the addon loads',
  async () => {
    const t = await startTestServer({ warmup: false });
    try {
      const runtime = t.server.registry.list().find((e) => e.state === 'READY')!.runtime!;
      expect(runtime.executor).toBe('native');
      expect(floats((await predict(t.client, await validRequest())).actions).length).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  },
);
