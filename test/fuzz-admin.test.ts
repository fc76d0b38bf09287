/**
 * Fuzzing AdminService on the real server: hostile names, versions, weights (NaN, infinities, 1e308, negative
 * zero), salts, sticky keys and shadow fractions. Every call must end with a status an operator can act on,
 * its details must not echo client text raw (control characters, unbounded length), and the robots' traffic
 * must keep being routed after every accepted or refused split, also after a restart on the stored split.
 * DUST_FUZZ_RUNS multiplies the runs, DUST_FUZZ_SEED changes the seed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos } from '../src/api/proto.js';
import type { AdminServiceClient } from '@dust-serve/client/gen/dust/serving/v1/AdminService';
import type { StickyKey } from '@dust-serve/client/gen/dust/serving/v1/StickyKey';
import { predict, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { MODEL, versionsRepository } from './support/versions.js';

const RUNS = Number(process.env.DUST_FUZZ_RUNS ?? 1);
const SEED = Number(process.env.DUST_FUZZ_SEED ?? 20_261_207);
const runs = (n: number) => ({ numRuns: Math.max(1, Math.round(n * RUNS)), seed: SEED });
const DEADLINE_MS = 15_000;
/** What an operator may get back for a hostile admin call: an answer or a refusal that says what to fix. */
const ACCEPTABLE = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.FAILED_PRECONDITION]);
/** Details quote client text cut to 64 characters (src/errors/quote.ts); with the message around it, far less than this. */
const MAX_DETAILS_CHARS = 600;

const repo = versionsRepository([1, 2]);
const dbDir = mkdtempSync(path.join(os.tmpdir(), 'dust-fuzz-admin-'));
const experimentDb = path.join(dbDir, 'experiments.sqlite');
let t: TestServer;
let admin: AdminServiceClient;

function adminClient(address: string): AdminServiceClient {
  const { policy } = loadProtos();
  return new policy.AdminService(address, grpc.credentials.createInsecure()) as unknown as AdminServiceClient;
}

async function start(): Promise<void> {
  t = await startTestServer({ modelRepository: repo.root, experimentDb });
  admin = adminClient(t.address);
}

async function stop(): Promise<void> {
  admin?.close();
  await t?.close();
}

beforeAll(start);
afterAll(async () => {
  await stop();
  repo.remove();
  rmSync(dbDir, { recursive: true, force: true });
});

type Outcome = { code: grpc.status; details: string };

function call<Req>(
  method: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => unknown,
  req: Req,
): Promise<Outcome> {
  return new Promise((resolve) => {
    method.call(admin, req, new grpc.Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err: grpc.ServiceError | null) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    );
  });
}

function expectActionable(out: Outcome, what: unknown): void {
  const where = JSON.stringify(what)?.slice(0, 300);
  if (!ACCEPTABLE.has(out.code)) throw new Error(`${where}: ${grpc.status[out.code]} (${out.details})`);
  // No raw control characters (a NUL or a newline from the client must arrive quoted), and bounded length.
  expect(/[\u0000-\u001f\u007f]/.test(out.details), `${where}: details with a control character: ${JSON.stringify(out.details)}`).toBe(false);
  expect(out.details.length, `${where}: details of ${out.details.length} characters`).toBeLessThanOrEqual(MAX_DETAILS_CHARS);
}

/** An unpinned request of a fresh robot: the split must route it to a READY version. */
async function expectRouted(robot: string): Promise<void> {
  const res = await predict(t.client, await validRequest({ robot_id: robot, request_id: `${robot}-check` }), DEADLINE_MS);
  expect(res.actions?.data.length).toBeGreaterThan(0);
}

const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom('', MODEL, `${MODEL}\u0000`, `${MODEL}\n`, `../${MODEL}`, `${MODEL}/../../etc`, '/etc/passwd', '..', '.', 'x'.repeat(250), '\u202e\ud800'),
);
const version = fc.oneof(fc.constantFrom(0, 1, 2, 3), fc.nat({ max: 2 ** 32 - 1 }));
const weight = fc.oneof(
  fc.double(),
  fc.constantFrom(1e308, Number.MAX_VALUE, -1, 0, -0, Number.MIN_VALUE, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 1),
);
const split = fc.record({
  name: fc.oneof(fc.constant(MODEL), fc.constant(''), hostileText),
  weights: fc.array(fc.record({ version, weight }), { maxLength: 4 }),
  control_version: version,
  // An enum number the proto does not define arrives as a number.
  sticky_key: fc.constantFrom<StickyKey>('STICKY_KEY_ROBOT', 'STICKY_KEY_EPISODE', 1, 7 as StickyKey),
  salt: fc.oneof(fc.constant(''), fc.string({ unit: 'binary', maxLength: 80 })),
  shadow_version: version,
  shadow_fraction: weight,
});

describe('fuzzing AdminService', () => {
  it('SetTrafficSplit with hostile weights, versions and names: an actionable status, and robots still routed', async () => {
    let robot = 0;
    await fc.assert(
      fc.asyncProperty(split, async (req) => {
        expectActionable(await call(admin.SetTrafficSplit, req), req);
        await expectRouted(`fuzz-robot-${robot++}`);
      }),
      runs(60),
    );
  });

  it('the overflowing split of two 1e308 weights is refused, and routing holds', async () => {
    const out = await call(admin.SetTrafficSplit, {
      name: MODEL,
      weights: [
        { version: 1, weight: 1e308 },
        { version: 2, weight: 1e308 },
      ],
    });
    expect(grpc.status[out.code]).toBe('INVALID_ARGUMENT');
    await expectRouted('overflow-check');
  });

  it('LoadModel, UnloadModel and GetExperiment with hostile names: an actionable status with the name quoted', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileText.filter((n) => n !== MODEL),
        version,
        async (name, v) => {
          expectActionable(await call(admin.LoadModel, { name, version: v }), { LoadModel: name, v });
          expectActionable(await call(admin.UnloadModel, { name, version: v }), { UnloadModel: name, v });
          expectActionable(await call(admin.GetExperiment, { name }), { GetExperiment: name });
        },
      ),
      runs(60),
    );
    // Unknown versions of the real model too.
    expectActionable(await call(admin.LoadModel, { name: MODEL, version: 2 ** 32 - 1 }), 'LoadModel max version');
    expectActionable(await call(admin.UnloadModel, { name: MODEL, version: 77 }), 'UnloadModel unknown version');
    await expectRouted('after-admin-names');
  });

  it('a restart on the stored split still routes robots', async () => {
    await stop();
    await start();
    await expectRouted('after-restart');
  });
});
