/**
 * The openpi door (docs/openpi.md) on the real server: a Python client speaking openpi_client's wire format
 * (clients/openpi-check/openpi_check.py: msgpack with numpy arrays, Api-Key header, control frames) runs an
 * evaluation session that feeds the A/B experiment and a list of hostile frames, each refused with a text frame
 * while the connection and gRPC keep serving; a Node WebSocket client checks what needs the transport: the hard
 * frame cap, one frame at a time, the upgrade's refusals and their reasons, batching with gRPC traffic, the idle
 * timeout and draining.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { loadProtos } from '../src/api/index.js';
import type { AdminServiceClient } from '@dust-serve/client/gen/dust/serving/v1/AdminService';
import type { Experiment__Output } from '@dust-serve/client/gen/dust/serving/v1/Experiment';
import { freePort, predict, startTestServer, validRequest, type TestServer } from './support/harness.js';
import { PYTHON, WITH_OPENPI_PYTHON } from './support/tools.js';
import { versionsRepository } from './support/versions.js';

const CHECK = 'clients/openpi-check/openpi_check.py';
const MAX_MESSAGE_BYTES = 1024 * 1024;
const ROBOT_TOKEN = 'robot-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
const RATE_TOKEN = 'rate-token-0123456789abcdef';

async function runCheck(mode: string, url: string, ...args: string[]): Promise<Record<string, any>> {
  const { stdout } = await promisify(execFile)(PYTHON, [CHECK, mode, url, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  return JSON.parse(stdout) as Record<string, any>;
}

const textKeys = (k: unknown) => (typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString('utf8'));
const unpack = (data: Buffer) => decode(data, { mapKeyConverter: textKeys, useBigInt64: true }) as Record<string, any>;
const ndarray = (data: Uint8Array, dtype: string, shape: number[]) => ({ __ndarray__: true, data, dtype, shape });

/** A LIBERO-keyed observation for dust-tiny's franka_fr3 (state_dim 8, cameras front and wrist). */
function observation(): Record<string, unknown> {
  const state = new Float32Array([0, 1, 0, -2, 0, 2.5, 0.5, 0.02]);
  return {
    'observation/image': ndarray(new Uint8Array(64 * 64 * 3).fill(120), '|u1', [64, 64, 3]),
    'observation/wrist_image': ndarray(new Uint8Array(3 * 48 * 64).fill(30), '|u1', [3, 48, 64]),
    'observation/state': ndarray(new Uint8Array(state.buffer), '<f4', [8]),
    prompt: 'push the red block left',
  };
}

type Frame = { readonly binary: true; readonly value: Record<string, any> } | { readonly binary: false; readonly text: string };

/** A WebSocket client that queues what arrives, so a test awaits frames and the close in order. */
class Conn {
  private readonly frames: Frame[] = [];
  private readonly waiters: Array<(f: Frame) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const f: Frame = isBinary ? { binary: true, value: unpack(data) } : { binary: false, text: data.toString('utf8') };
      const w = this.waiters.shift();
      if (w) w(f);
      else this.frames.push(f);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects and returns with the metadata frame read. */
  static async open(url: string, headers?: Record<string, string>): Promise<{ conn: Conn; meta: Record<string, any> }> {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const conn = new Conn(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const meta = await conn.next();
    if (!meta.binary) throw new Error(`metadata frame was text: ${meta.text}`);
    return { conn, meta: meta.value };
  }

  next(): Promise<Frame> {
    const f = this.frames.shift();
    return f ? Promise.resolve(f) : new Promise((resolve) => this.waiters.push(resolve));
  }

  send(value: unknown): void {
    this.ws.send(encode(value));
  }

  close(): void {
    this.ws.close();
  }
}

/** The HTTP status and body of an upgrade the server refuses. */
function refusedUpgrade(url: string, headers?: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

function adminClient(address: string): AdminServiceClient {
  const { policy } = loadProtos();
  return new policy.AdminService(address, grpc.credentials.createInsecure()) as unknown as AdminServiceClient;
}

function unary<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res!))));
}

describe('the openpi door beside gRPC, two versions under a 50/50 split', () => {
  let t: TestServer;
  let admin: AdminServiceClient;
  let url: string;
  let repo: { root: string; remove(): void };

  beforeAll(async () => {
    repo = versionsRepository([1, 2]);
    t = await startTestServer({ modelRepository: repo.root, warmup: false, openpiPort: 0, maxMessageBytes: MAX_MESSAGE_BYTES, metricsPort: await freePort() });
    url = `ws://127.0.0.1:${t.server.openpiPort}`;
    admin = adminClient(t.address);
    await unary(admin.SetTrafficSplit.bind(admin), {
      name: 'dust-tiny',
      weights: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
      control_version: 1,
      salt: 'openpi-eval',
    });
  });

  afterAll(async () => {
    admin?.close();
    await t?.close();
    repo?.remove();
  });

  WITH_OPENPI_PYTHON.it('an openpi session: metadata, 50 inferences with HWC and CHW images, an episode whose success the experiment counts', async () => {
    const r = await runCheck('session', url, '--steps', '50', '--experiment', 'eval-1', '--episode-id', '7');
    expect(r.metadata).toMatchObject({
      server: 'dust-serve',
      model: 'dust-tiny',
      embodiment: 'franka_fr3',
      action_horizon: 16,
      action_dim: 8,
      state_dim: 8,
      cameras: ['front', 'wrist'],
      key_mapping: { name: 'libero', images: { front: 'observation/image', wrist: 'observation/wrist_image' }, state: ['observation/state'], prompt: 'prompt' },
    });
    const version = r.metadata.version as number;
    expect([1, 2]).toContain(version);
    expect(r.errors).toEqual([]);
    expect(r.inferences).toBe(50);
    expect(r.layouts).toEqual(['CHW', 'HWC']);
    expect(r.action_shapes).toEqual([[16, 8]]);
    expect(r.future_shapes).toEqual([[16, 32]]);
    expect(r.server_timing_keys).toEqual(expect.arrayContaining(['infer_ms', 'prev_total_ms', 'queue_ms', 'vlm_ms', 'denoise_ms', 'total_ms']));
    expect(r.prev_total_ms_reported).toBe(49);
    expect(r.sampling).toMatchObject({ action_steps: 4, vision_steps: 4, budget_met: true });
    expect(r.last).toMatchObject({ model_name: 'dust-tiny', model_version: version, episode_id: 'eval-1/7' });
    expect(r.ack_start).toMatchObject({ __ack__: 'episode_start', episode_id: 'eval-1/7' });
    expect(r.ack_end).toEqual({ __ack__: 'episode_end', episode_id: 'eval-1/7', counted: true, model_name: 'dust-tiny', model_version: version });
    expect(r.ack_other).toEqual({ __ack__: 'ignored' });

    const e = await unary<object, Experiment__Output>(admin.GetExperiment.bind(admin), { name: 'dust-tiny' });
    const variant = e.variants.find((v) => v.version === version)!;
    expect(Number(variant.requests)).toBe(50);
    expect(Number(variant.episodes)).toBe(1);
    expect(Number(variant.successes)).toBe(1);
    const other = e.variants.find((v) => v.version !== version)!;
    expect(Number(other.episodes)).toBe(0);
  });

  WITH_OPENPI_PYTHON.it('hostile frames are each answered with a text frame saying what is wrong; the connection and gRPC keep serving', async () => {
    const { results } = await runCheck('hostile', url, '--max-frame-bytes', String(MAX_MESSAGE_BYTES));
    const expected: Record<string, RegExp> = {
      garbage: /not valid msgpack: byte 0xc1 at 0/,
      truncated: /not valid msgpack: .* needs \d+ bytes, \d+ remain/,
      not_a_map: /an observation must be a msgpack map/,
      float_image: /"observation\/image" \(camera front\) has dtype "<f4"; images must be uint8 arrays/,
      object_dtype: /is an object array .*dtype "\|O".*plain numeric arrays/,
      wrong_data_length: /shape \[64, 64, 3\] of 1-byte items needs 12288 bytes of data, got 10/,
      gray_image: /has shape \[64, 64\]; images must be HWC/,
      missing_image: /the observation has no key "observation\/image" \(camera front\)/,
      missing_state: /the observation has no key "observation\/state" \(state\)/,
      short_state: /state: expected 8 values for embodiment franka_fr3, got 2/,
      nan_state: /state\[0\] is NaN/,
      string_state: /is a string array/,
      unknown_camera: /"observation\/third_camera" holds an image, but the libero mapping names no camera for it/,
      prompt_not_string: /"prompt" \(prompt\) must be a string/,
      deep_nesting: /nests maps and arrays more than 32 deep/,
      many_items: /more than 8192 msgpack items/,
      oversized: new RegExp(`above this server's limit of ${MAX_MESSAGE_BYTES}`),
      prefix_not_a_dict: /"prefix" must be a dict with actions, delay_steps, control_period_ms, method/,
      prefix_nan_action: /prefix.actions\[0\]\[0\] is NaN: every value must be finite/,
      prefix_wide: /prefix.actions must have shape \[L, 8\] .* got \[2, 9\]/,
      prefix_long: /prefix.actions must have shape \[L, 8\] .*1 <= L <= 16.* got \[4096, 8\]/,
      prefix_delay_over_length: /prefix.delay_steps 3 exceeds the prefix length 2/,
      prefix_no_delay_or_period: /prefix: set delay_steps, or control_period_ms > 0/,
      bad_ctrl_success: /__success__ must be a boolean/,
      end_without_requests: /no request of episode .* was served/,
      text_frame: /frames must be binary msgpack/,
    };
    for (const [name, pattern] of Object.entries(expected)) expect(results[name], name).toMatch(pattern);
    expect(results.after).toBe('served');
    const res = await predict(t.client, await validRequest());
    expect(res.actions?.shape).toEqual([16, 8]);
  });

  WITH_OPENPI_PYTHON.it('the request metrics count the openpi door\'s requests under method="openpi", beside gRPC\'s', async () => {
    await runCheck('session', url, '--steps', '3');
    const { conn } = await Conn.open(url);
    conn.send({ prompt: 'no images' });
    expect((await conn.next()).binary).toBe(false);
    conn.close();
    const text = await (await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`)).text();
    const count = (code: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('dust_requests_total{') && l.includes('method="openpi"') && l.includes(`code="${code}"`))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(count('OK')).toBeGreaterThanOrEqual(3);
    expect(count('INVALID_ARGUMENT')).toBeGreaterThan(0);
  });

  it('the same refusal reads the same on both doors: a state of the wrong length', async () => {
    const { conn } = await Conn.open(url);
    const obs = observation();
    obs['observation/state'] = ndarray(new Uint8Array(new Float32Array(3).buffer), '<f4', [3]);
    conn.send(obs);
    const reply = await conn.next();
    conn.close();
    const grpcError = await predict(t.client, await validRequest({ state: [0, 0, 0] })).catch((err: grpc.ServiceError) => err);
    expect(reply).toEqual({ binary: false, text: (grpcError as grpc.ServiceError).details });
  });

  it("real-time chunking: a prefix in the observation is the gRPC door's CommittedPrefix, its delay declared or estimated from the connection's latency", async () => {
    const floats = (a: { data: Uint8Array; shape: number[] }) => new Float32Array(Uint8Array.from(a.data).buffer);
    const prefixOf = (actions: Float32Array, rows: number, cols: number) => ndarray(new Uint8Array(actions.slice(0, rows * cols).buffer), '<f4', [rows, cols]);
    const ask = async (conn: Conn, prefix?: Record<string, unknown>) => {
      conn.send(prefix ? { ...observation(), prefix } : observation());
      const f = await conn.next();
      if (!f.binary) throw new Error(f.text);
      return f.value;
    };
    const { conn, meta } = await Conn.open(url);
    expect(meta.realtime_chunking).toEqual(['inpaint', 'naive', 'ensemble']);
    const [H, D] = [meta.action_horizon as number, meta.action_dim as number];
    // The first observation on a connection: nothing measured yet, so an estimated delay freezes the whole prefix.
    const first = await ask(conn, { actions: prefixOf(new Float32Array(3 * D), 3, D), control_period_ms: 1e6 });
    expect(first.chunking).toEqual({ method: 'inpaint', delay_steps: 3, delay_estimated: true, prefix_length: 3 });
    const rest = floats(first.actions).slice(4 * D);
    // Declared: rows 0..d-1 of the new chunk are the committed actions (through the normalization round trip).
    const declared = await ask(conn, { actions: prefixOf(rest, H - 4, D), delay_steps: 2, method: 'inpaint' });
    expect(declared.chunking).toEqual({ method: 'inpaint', delay_steps: 2, delay_estimated: false, prefix_length: H - 4 });
    const fresh = floats(declared.actions);
    for (let i = 0; i < 2 * D; i++) expect(fresh[i]).toBeCloseTo(rest[i], 4);
    // Estimated from the latency this connection measured: any answer under a 1000 s period is one control step.
    const estimated = await ask(conn, { actions: prefixOf(rest, H - 4, D), control_period_ms: 1e6, method: 'naive' });
    expect(estimated.chunking).toEqual({ method: 'naive', delay_steps: 1, delay_estimated: true, prefix_length: H - 4 });
    // The engine's refusal, in the gRPC door's words, and the connection goes on.
    conn.send({ ...observation(), prefix: { actions: prefixOf(rest, 2, D - 1), delay_steps: 1 } });
    expect(await conn.next()).toMatchObject({ binary: false, text: expect.stringMatching(/prefix.actions must have shape \[L, 8\]/) });
    conn.send({ ...observation(), prefix: { actions: prefixOf(rest, 2, D), delay_steps: 1, method: 'condition' } });
    expect(await conn.next()).toMatchObject({
      binary: false,
      text: expect.stringMatching(/prefix.method condition is not supported by dust-tiny@\d; it supports: inpaint, naive, ensemble/),
    });
    expect((await ask(conn)).actions.shape).toEqual([H, D]);
    conn.close();
  });

  WITH_OPENPI_PYTHON.it(
    "real-time chunking from Python: openpi's packer sends the prefix (float64 rows, a numpy int delay) and the answer continues it",
    async () => {
      const r = await runCheck('rtc', url, '--steps', '6');
      expect(r.errors).toEqual([]);
      expect(r.chunking).toHaveLength(6);
      // Even steps declare d = 2; odd ones give a 1000 s control period, which any measured latency makes one step.
      expect(r.chunking.map((c: { delay_steps: number; delay_estimated: boolean }) => [c.delay_steps, c.delay_estimated])).toEqual([
        [2, false],
        [1, true],
        [2, false],
        [1, true],
        [2, false],
        [1, true],
      ]);
      expect(new Set(r.chunking.map((c: { method: string }) => c.method))).toEqual(new Set(['inpaint']));
      expect(r.max_committed_row_error).toBeLessThan(1e-4);
    },
  );

  it('a frame above 4x maxMessageBytes is not read: the connection is closed with 1009, and gRPC keeps serving', async () => {
    const { conn } = await Conn.open(url);
    conn.ws.send(Buffer.alloc(4 * MAX_MESSAGE_BYTES + 1));
    expect((await conn.closed).code).toBe(1009);
    expect((await predict(t.client, await validRequest())).actions?.shape).toEqual([16, 8]);
  });

  it('one frame at a time: a frame sent while the previous observation runs is refused, the running one answered', async () => {
    const { conn } = await Conn.open(url);
    conn.send(observation());
    conn.send(observation());
    const first = await conn.next();
    const second = await conn.next();
    conn.close();
    expect(first).toMatchObject({ binary: false, text: expect.stringMatching(/one frame at a time/) });
    expect(second.binary && second.value.actions.shape).toEqual([16, 8]);
  });

  it('query parameters choose the robot, the embodiment and the model; refusals say why with an HTTP status', async () => {
    const { conn, meta } = await Conn.open(`${url}/?robot_id=arm-7&embodiment=franka_fr3&model=dust-tiny@2`);
    conn.close();
    expect(meta).toMatchObject({ robot_id: 'arm-7', embodiment: 'franka_fr3', version: 2, variant: 'dust-tiny@2' });
    await expect(refusedUpgrade(`${url}/?embodiment=hexapod`)).resolves.toEqual({
      status: 404,
      body: expect.stringMatching(/unknown embodiment "hexapod" for dust-tiny@\d; known: franka_fr3, so100_arm/),
    });
    await expect(refusedUpgrade(`${url}/?model=nope`)).resolves.toMatchObject({ status: 404, body: expect.stringMatching(/nope/) });
    await expect(refusedUpgrade(`${url}/?robot_id=${'r'.repeat(200)}`)).resolves.toMatchObject({
      status: 400,
      body: expect.stringMatching(/robot_id is 200 bytes/),
    });
  });

  it("GET /healthz answers like openpi's server; other plain HTTP requests are told this is a WebSocket port", async () => {
    const health = await fetch(`http://127.0.0.1:${t.server.openpiPort}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'OK\n']);
    const other = await fetch(`http://127.0.0.1:${t.server.openpiPort}/`);
    expect(other.status).toBe(426);
  });
});

describe('a key mapping file', () => {
  it('that is not valid stops the start before any model loads, naming the entry and field', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-openpi-'));
    const file = path.join(dir, 'mapping.json');
    writeFileSync(file, JSON.stringify({ franka_fr3: { images: { front: 'observation/image' }, state: 7 } }));
    await expect(startTestServer({ openpiPort: 0, openpiMapping: file, modelRepository: path.join(dir, 'no-models') })).rejects.toThrow(
      /openpi key mapping .*mapping.json: franka_fr3.state/,
    );
  });

  it('maps nested keys to the cameras by name for one embodiment', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-openpi-'));
    const file = path.join(dir, 'mapping.json');
    writeFileSync(file, JSON.stringify({ so100_arm: { images: { wrist: ['images', 'hand'], front: ['images', 'top'] }, state: 'state', prompt: 'task' } }));
    const t = await startTestServer({ warmup: false, openpiPort: 0, openpiMapping: file });
    try {
      const { conn, meta } = await Conn.open(`ws://127.0.0.1:${t.server.openpiPort}`);
      expect(meta).toMatchObject({
        embodiment: 'so100_arm',
        state_dim: 6,
        action_dim: 6,
        key_mapping: { images: { front: ['images', 'top'] }, prompt: 'task' },
      });
      const image = ndarray(new Uint8Array(32 * 32 * 3), '|u1', [32, 32, 3]);
      conn.send({ images: { top: image, hand: image }, state: [0, 0.8, 2, 1.5, 0, 0.3], task: 'push' });
      const reply = await conn.next();
      conn.close();
      expect(reply.binary && reply.value.actions.shape).toEqual([16, 6]);
    } finally {
      await t.close();
    }
  });
});

describe('the openpi door with a tokens file', () => {
  let t: TestServer;
  let url: string;
  let tokensFile: string;
  const credentials = [
    { token: ROBOT_TOKEN, role: 'robot', name: 'eval-robot' },
    { token: ADMIN_TOKEN, role: 'admin', name: 'operator' },
    { token: RATE_TOKEN, role: 'robot', name: 'rate-robot' },
  ];

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-openpi-'));
    tokensFile = path.join(dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(credentials));
    // A burst of 2, then a request every 10 s: no test here waits long enough for a token to come back.
    t = await startTestServer({ warmup: false, openpiPort: 0, tokensFile, openpiIdleSeconds: 1, robotRateLimit: 0.1, robotRateBurst: 2 });
    url = `ws://127.0.0.1:${t.server.openpiPort}`;
  });

  afterAll(() => t?.close());

  WITH_OPENPI_PYTHON.it("openpi_client's Api-Key header: a robot's or an admin's token connects, none or an unknown one gets 401", async () => {
    expect(await runCheck('refused', url)).toMatchObject({ connected: false, status: 401 });
    expect(await runCheck('refused', url, '--api-key', 'not-a-known-token-at-all')).toMatchObject({ connected: false, status: 401 });
    expect(await runCheck('refused', url, '--api-key', ROBOT_TOKEN)).toMatchObject({ connected: true, metadata: { model: 'dust-tiny' } });
    expect(await runCheck('refused', url, '--api-key', ADMIN_TOKEN)).toMatchObject({ connected: true });
  });

  it('a refused upgrade says what to send; Bearer works as well as Api-Key', async () => {
    await expect(refusedUpgrade(url)).resolves.toEqual({
      status: 401,
      body: expect.stringMatching(/needs a credential: send the header "Authorization: Api-Key <token>"/),
    });
    await expect(refusedUpgrade(url, { authorization: 'Api-Key wrong-token-0123456789' })).resolves.toMatchObject({
      status: 401,
      body: expect.stringMatching(/not one this server knows/),
    });
    const { conn } = await Conn.open(url, { authorization: `Bearer ${ROBOT_TOKEN}` });
    conn.send(observation());
    const reply = await conn.next();
    conn.close();
    expect(reply.binary).toBe(true);
  });

  it("the rate limit is one budget per caller across both doors, refused with the gRPC door's words", async () => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${RATE_TOKEN}`);
    await predict(t.client, await validRequest(), 30_000, md);
    const { conn } = await Conn.open(url, { authorization: `Api-Key ${RATE_TOKEN}` });
    conn.send(observation());
    expect((await conn.next()).binary).toBe(true);
    conn.send(observation());
    const refused = await conn.next();
    conn.close();
    expect(refused).toMatchObject({
      binary: false,
      text: expect.stringMatching(/^caller "rate-robot" is over its rate limit of 0.1 requests\/s \(burst 2\); retry in \d+ ms/),
    });
  });

  it('a connection without a frame for openpiIdleSeconds is closed', async () => {
    const { conn } = await Conn.open(url, { authorization: `Api-Key ${ROBOT_TOKEN}` });
    expect(await conn.closed).toEqual({ code: 1000, reason: 'idle: no frame for 1 s' });
  });

  // Last: it removes a token from the file.
  it('a token removed from the file ends its open connection at the next frame, saying why', async () => {
    const { conn } = await Conn.open(url, { authorization: `Api-Key ${ADMIN_TOKEN}` });
    writeFileSync(tokensFile, JSON.stringify(credentials.filter((c) => c.token !== ADMIN_TOKEN)));
    // The file watcher may have read it first; either way the new list is in use after this.
    await t.server.reloadTokens();
    conn.send(observation());
    expect(await conn.next()).toEqual({ binary: false, text: expect.stringMatching(/removed from the server's tokens file/) });
    expect((await conn.closed).code).toBe(1008);
  });
});

describe('one engine for both doors', () => {
  let t: TestServer;
  let url: string;

  beforeAll(async () => {
    // A request waits up to 60 s for a second to fill its VLM batch while another is still decoding: the two doors'
    // requests meet there even when a loaded machine leaves the (lowered-priority) decode thread seconds behind.
    t = await startTestServer({ warmup: false, openpiPort: 0, maxVlmBatch: 2, maxQueueDelayMs: 60_000 });
    url = `ws://127.0.0.1:${t.server.openpiPort}`;
  });

  afterAll(() => t?.close());

  it('an openpi observation and a gRPC Predict run in the same VLM batch', async () => {
    const { conn } = await Conn.open(url);
    // The two requests' decoding is held until both are admitted, whichever door is faster: the first to finish
    // then sees the other still being prepared and waits for it (the scheduler's "more coming"), as a batch
    // formed by concurrent robots would, instead of racing the other door's network path.
    const decoder = t.server.registry.resolve({ name: 'dust-tiny', version: 1 }).runtime.decoder;
    const decode = decoder.decode.bind(decoder);
    let entered = 0;
    let release!: () => void;
    const bothAdmitted = new Promise<void>((resolve) => (release = resolve));
    const held = vi.spyOn(decoder, 'decode').mockImplementation(async (request) => {
      if (++entered === 2) release();
      await bothAdmitted;
      return decode(request);
    });
    try {
      const grpcCall = predict(t.client, await validRequest({ robot_id: 'grpc-robot' }));
      conn.send(observation());
      const [reply, res] = await Promise.all([conn.next(), grpcCall]);
      expect(res.timing?.vlm_batch_size).toBe(2);
      expect(reply.binary && reply.value.server_timing.vlm_batch_size).toBe(2);
    } finally {
      held.mockRestore();
      conn.close();
    }
  });
});

describe('the connection cap and draining', () => {
  let t: TestServer;
  let url: string;

  beforeAll(async () => {
    // A lone request waits up to 500 ms for its VLM batch to fill: it is still running when the shutdown starts.
    t = await startTestServer({ warmup: false, openpiPort: 0, maxQueueDelayMs: 500, shutdownGraceSeconds: 10, openpiMaxConnections: 2 });
    url = `ws://127.0.0.1:${t.server.openpiPort}`;
  });

  afterAll(() => t?.close());

  it('beyond openpiMaxConnections the upgrade gets 503; shutdown answers the running observation, then closes every connection with 1001 (going away)', async () => {
    const { conn: busy } = await Conn.open(url);
    const { conn: idle } = await Conn.open(url);
    await expect(refusedUpgrade(url)).resolves.toEqual({
      status: 503,
      body: expect.stringMatching(/the server has 2 openpi connections open, its limit \(--openpi-max-connections\)/),
    });
    busy.send(observation());
    // Refused while the first runs: by then the server holds the first observation.
    busy.send(observation());
    expect(await busy.next()).toMatchObject({ binary: false, text: expect.stringMatching(/one frame at a time/) });
    const closing = t.close();
    expect((await idle.closed).code).toBe(1001);
    const reply = await busy.next();
    expect(reply.binary && reply.value.actions.shape).toEqual([16, 8]);
    expect(await busy.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    await closing;
  });
});
