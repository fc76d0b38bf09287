/**
 * Fuzzing the real server (the hostile-client work; BENCHMARKS.md, "Abuse run"): random bytes on the wire, mutated valid messages, hostile values in
 * every field, wrong wire types and the known floods, on Predict, StreamPredict, ListModels and
 * ReportOutcome. Every call must end with a status a client can act on (no hang, no INTERNAL/UNKNOWN, no
 * dropped connection), a seeded good request sent all along must keep getting the same actions, and memory
 * must stay bounded. The CI run is short; DUST_FUZZ_RUNS multiplies the runs, DUST_FUZZ_SEED changes the
 * seed; `npm run bench:abuse` is the long run against a server process.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostilePredictRequest, knownAttacks, mutatedBody, randomBody, wrongWireTypes } from './support/hostile/arbitraries.js';
import { ACCEPTABLE_CODES, POLICY_PATHS, rawStream, rawUnary, type CallOutcome } from './support/hostile/raw-calls.js';
import { policyCodec } from './support/policy-codec.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { floats, predict, startTestServer, validRequest, type TestServer } from './support/harness.js';

const RUNS = Number(process.env.DUST_FUZZ_RUNS ?? 1);
const SEED = Number(process.env.DUST_FUZZ_SEED ?? 20_260_707);
const runs = (n: number) => ({ numRuns: Math.max(1, Math.round(n * RUNS)), seed: SEED });
const MAX_MESSAGE_BYTES = 512 * 1024;
/** Far more than any call on dust-tiny needs: a call that reaches it hung. */
const DEADLINE_MS = 15_000;
/** RSS growth allowed over the bad requests of the memory test (BENCHMARKS.md, "Abuse run", has what 1,000 long ids once cost). */
const RSS_BOUND_MB = 150;
const RSS_REQUESTS = 1000 * RUNS;
const RSS_WARMUP = 100;

const codec = policyCodec();
let t: TestServer;
let base: PredictRequest;
let valid: Buffer[];
let reference: Float32Array;

/** The seeded good request, sent back to back for as long as the fuzzing runs. */
class GoodRobot {
  answered = 0;
  readonly failures: string[] = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        try {
          const a = floats((await predict(t.client, { ...base, robot_id: 'good-robot', sampling: { seed: '42' } }, DEADLINE_MS)).actions);
          const diff = Math.max(...a.map((v, i) => Math.abs(v - reference[i])));
          if (!(diff <= 1e-5)) this.failures.push(`actions differ by ${diff}`);
          this.answered++;
        } catch (err) {
          this.failures.push(String(err));
        }
        // A robot at 50 Hz, not a flood: the fuzzing, not this loop, should keep the server busy.
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
const good = new GoodRobot();

beforeAll(async () => {
  t = await startTestServer({ maxMessageBytes: MAX_MESSAGE_BYTES });
  base = await validRequest({ request_id: 'base' });
  valid = [
    codec.serialize(base),
    codec.serialize({
      ...base,
      embodiment: 'so100_arm',
      state: [0.1, 0.9, 2, 1, 0, 0.3],
      sampling: { action_steps: 2, vision_steps: 8, seed: '5' },
      episode_id: 'ep',
    }),
    codec.serialize({
      ...base,
      images: [{ camera: 'front', encoding: 'IMAGE_ENCODING_RAW_RGB8', width: 4, height: 4, data: Buffer.alloc(48, 9) }, base.images![1]],
    }),
  ];
  reference = floats((await predict(t.client, { ...base, robot_id: 'good-robot', sampling: { seed: '42' } })).actions);
  good.start();
});
afterAll(async () => {
  await good.stop();
  await t?.close();
});

function expectAcceptable(out: CallOutcome, what: string): void {
  if (!ACCEPTABLE_CODES.has(out.code)) {
    throw new Error(`${what}: ${grpc.status[out.code]} (${out.details}) after ${Math.round(out.ms)} ms`);
  }
}

describe('fuzzing the real server', () => {
  it('random bytes on every unary method', async () => {
    const methods = [POLICY_PATHS.predict, POLICY_PATHS.listModels, POLICY_PATHS.reportOutcome];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), randomBody(), async (method, body) => {
        expectAcceptable(await rawUnary(t.client, method, body, DEADLINE_MS), method);
      }),
      runs(200),
    );
  });

  it('random bytes as StreamPredict messages, after a valid one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(randomBody(512), { minLength: 1, maxLength: 4 }), async (bodies) => {
        const out = await rawStream(t.client, POLICY_PATHS.streamPredict, [valid[0], ...bodies], DEADLINE_MS);
        expectAcceptable(out, 'StreamPredict');
        // The valid first request is answered whatever follows it.
        expect(out.responses.length).toBeGreaterThanOrEqual(1);
        expect(codec.deserialize(out.responses[0]).request_id).toBe('base');
      }),
      runs(40),
    );
  });

  it('valid messages with bytes flipped, cut, inserted, deleted or repeated', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedBody(valid), async (body) => {
        expectAcceptable(await rawUnary(t.client, POLICY_PATHS.predict, body, DEADLINE_MS), 'Predict');
      }),
      runs(150),
    );
  });

  it('hostile values in every field of PredictRequest, unary and streamed', async () => {
    const hostile = hostilePredictRequest(base, ['front', 'wrist'], codec.serialize);
    await fc.assert(
      fc.asyncProperty(hostile, fc.boolean(), async (body, streamed) => {
        const out = streamed
          ? await rawStream(t.client, POLICY_PATHS.streamPredict, [body, valid[1]], DEADLINE_MS)
          : await rawUnary(t.client, POLICY_PATHS.predict, body, DEADLINE_MS);
        expectAcceptable(out, streamed ? 'StreamPredict' : 'Predict');
      }),
      runs(150),
    );
  });

  it('known and unknown fields with any wire type', async () => {
    await fc.assert(
      fc.asyncProperty(wrongWireTypes(), async (body) => {
        expectAcceptable(await rawUnary(t.client, POLICY_PATHS.predict, body, DEADLINE_MS), 'Predict');
      }),
      runs(100),
    );
  });

  it('the known hostile bodies: each refused with INVALID_ARGUMENT or NOT_FOUND, on Predict and StreamPredict', async () => {
    for (const { name, body } of knownAttacks(base, codec.serialize, MAX_MESSAGE_BYTES)) {
      const unary = await rawUnary(t.client, POLICY_PATHS.predict, body, DEADLINE_MS);
      expect([name, grpc.status[unary.code]]).toEqual([name, name === 'embodiment-proto' ? 'NOT_FOUND' : 'INVALID_ARGUMENT']);
      const stream = await rawStream(t.client, POLICY_PATHS.streamPredict, [valid[0], body], DEADLINE_MS);
      expect([name, grpc.status[stream.code], stream.responses.length]).toEqual([name, name === 'embodiment-proto' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', 1]);
    }
  });

  it(`memory: RSS grows less than ${RSS_BOUND_MB} MB over ${RSS_REQUESTS} bad requests`, async () => {
    const attacks = knownAttacks(base, codec.serialize, MAX_MESSAGE_BYTES).map((a) => a.body);
    const bodies = fc.sample(
      fc.oneof(
        randomBody(),
        mutatedBody(valid),
        hostilePredictRequest(base, ['front', 'wrist'], codec.serialize),
        wrongWireTypes(),
        fc.constantFrom(...attacks),
      ),
      { numRuns: RSS_WARMUP + RSS_REQUESTS, seed: SEED },
    );
    const send = async (from: number, to: number) => {
      // Eight at a time, as several robots would.
      for (let i = from; i < to; i += 8) {
        const outs = await Promise.all(bodies.slice(i, Math.min(i + 8, to)).map((b) => rawUnary(t.client, POLICY_PATHS.predict, b, DEADLINE_MS)));
        outs.forEach((o) => expectAcceptable(o, 'Predict'));
      }
    };
    // Warm-up first: code paths compiled, pools and caches at their working size.
    await send(0, RSS_WARMUP);
    const before = process.memoryUsage().rss;
    await send(RSS_WARMUP, bodies.length);
    const grownMb = (process.memoryUsage().rss - before) / 2 ** 20;
    if (process.env.DUST_FUZZ_REPORT) console.info(`RSS grew ${grownMb.toFixed(1)} MB over ${RSS_REQUESTS} bad requests`);
    expect(grownMb).toBeLessThan(RSS_BOUND_MB);
  });

  it('the good robot was answered with the same actions all along', async () => {
    await good.stop();
    expect(good.failures).toEqual([]);
    expect(good.answered).toBeGreaterThan(10);
    // And the server answers afresh, on a new connection.
    const client = new (t.client.constructor as typeof grpc.Client)(t.address, grpc.credentials.createInsecure()) as typeof t.client;
    const a = floats((await predict(client, { ...base, robot_id: 'good-robot', sampling: { seed: '42' } })).actions);
    expect(Math.max(...a.map((v, i) => Math.abs(v - reference[i])))).toBeLessThanOrEqual(1e-5);
    client.close();
  });
});
