/**
 * `dust-serve experiment report` against what a real server stored: two versions of dust-tiny in a 50/50 split
 * (version 2 succeeds, version 1 fails) with version 3 as the shadow, outcomes reported in three rounds, then
 * the CLI writes the page from the server's SQLite file while the server runs; headless Chromium renders it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DustClient, ExperimentResult } from '@dust-serve/client';
import { readStoredExperiments } from '../src/experiment/index.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { eventually } from './support/eventually.js';
import { chromiumBin, WITH_CHROMIUM } from './support/tools.js';
import { clientOf, MODEL, robotRequest, versionsRepository } from './support/versions.js';

const run = promisify(execFile);
const BIN = path.resolve('dist/src/cli/main.js');
const ROBOTS = Array.from({ length: 12 }, (_, i) => `robot-${i}`);
const ROUNDS = 3;

let dir: string;
let repo: ReturnType<typeof versionsRepository>;
let server: TestServer;
let client: DustClient;
let db: string;
let experiment: ExperimentResult;
let html: string;
let reportFile: string;

/** Waits until the file holds what the server counted (it is written once a second). */
async function flushed(): Promise<void> {
  const counted = (await client.getExperiment(MODEL)).variants.map((v) => [v.version, v.requests, v.episodes, v.shadowRequests]);
  await eventually(
    () => {
      const stored = readStoredExperiments(db, MODEL)[0];
      return JSON.stringify(stored.versions.map((v) => [v.version, v.requests, v.episodes, v.shadowRequests])) === JSON.stringify(counted);
    },
    { what: 'the experiment database to hold the server’s counts' },
  );
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dust-report-'));
  db = path.join(dir, 'experiments.sqlite');
  repo = versionsRepository([1, 2, 3]);
  // A history window of a millisecond: every flush is a point of its own.
  server = await startTestServer({ modelRepository: repo.root, warmup: false, experimentDb: db, experimentHistorySeconds: 0.001 });
  client = clientOf(server.address);
  await client.setTrafficSplit({
    model: MODEL,
    weights: [
      { version: 1, weight: 1 },
      { version: 2, weight: 1 },
    ],
    controlVersion: 1,
    salt: 'report-test',
    shadowVersion: 3,
    shadowFraction: 0.5,
  });
  for (let round = 0; round < ROUNDS; round++) {
    for (const robot of ROBOTS) {
      const episodeId = `${robot}-e${round}`;
      let version = 0;
      // Two requests: the second carries a world-model surprise.
      for (let i = 0; i < 2; i++) version = (await client.predict(await robotRequest(robot, { episodeId }))).modelVersion;
      await client.reportOutcome({ robotId: robot, episodeId, success: version === 2 });
    }
    await eventually(() => server.server.shadow.running === 0, { what: 'the shadow requests to finish' });
    await flushed();
  }
  experiment = await client.getExperiment(MODEL);
  reportFile = path.join(dir, 'report.html');
  const { stdout } = await run(process.execPath, [BIN, 'experiment', 'report', '--experiment-db', db, '--out', reportFile]);
  expect(stdout.trim()).toBe(reportFile);
  html = readFileSync(reportFile, 'utf8');
});

afterAll(async () => {
  client?.close();
  await server?.close();
  repo?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('experiment report', () => {
  it('the server split the robots and the test decided for version 2', () => {
    const [v1, v2] = experiment.variants;
    expect(v1.episodes + v2.episodes).toBe(ROBOTS.length * ROUNDS);
    expect(v1.episodes).toBeGreaterThan(0);
    expect(v2.decision).toBe('candidate better');
  });

  it('shows every version with the counts the server reports, and the decision with its time', () => {
    expect(html).toContain(`<h1>${MODEL} — A/B experiment report</h1>`);
    for (const v of experiment.variants) {
      const role = v.version === 1 ? 'control' : v.version === 2 ? 'candidate' : 'shadow';
      // The totals row: version, weight, requests, robots, episodes (outcome / served).
      expect(html).toContain(
        `<td>v${v.version} (${role})</td><td>${Number(v.weight.toFixed(3))}</td><td>${v.requests}</td><td>${v.robots}</td><td>${v.episodes} / ${v.episodesServed}</td>`,
      );
    }
    expect(html).toMatch(/<div class="verdict">candidate better<\/div><div>reached by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    // The success-rate chart, the difference with its confidence sequence, latency, N_o, surprise and shadow divergence.
    expect(html.match(/<svg /g)).toHaveLength(6);
    expect(html).toContain('<title>v2 minus v1</title>');
    expect(html).not.toContain('no shadow traffic recorded');
  });

  it('dates the decision at a history point after the first round', () => {
    const stored = readStoredExperiments(db, MODEL)[0];
    const times = [...new Set(stored.history.map((p) => p.at))].sort((a, b) => a - b);
    expect(times.length).toBeGreaterThanOrEqual(ROUNDS);
    const decided = stored.history.find((p) => p.version === 2 && p.decision === 'candidate better');
    expect(decided!.at).toBeGreaterThan(times[0]);
  });

  it('loads nothing: no URL, no script, no external reference', () => {
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script|<link|<img|\ssrc=|\shref=|url\(/i);
  });

  it('without the file, says which option to give', async () => {
    const missing = path.join(dir, 'missing.sqlite');
    const failed = await run(process.execPath, [BIN, 'experiment', 'report', '--experiment-db', missing, '--out', path.join(dir, 'x.html')]).catch(
      (e: { stderr: string }) => e,
    );
    expect((failed as { stderr: string }).stderr).toContain(`cannot open the experiment database ${missing}`);
    expect((failed as { stderr: string }).stderr).toContain('--experiment-db');
  });

  it('refuses the PostgreSQL store, which keeps no history', async () => {
    const failed = await run(process.execPath, [BIN, 'experiment', 'report', '--out', path.join(dir, 'x.html')], {
      env: { ...process.env, DUST_EXPERIMENT_STORE: 'postgres' },
    }).catch((e: { stderr: string }) => e);
    expect((failed as { stderr: string }).stderr).toContain('the report reads the SQLite experiment store only');
  });

  WITH_CHROMIUM.it('renders in headless Chromium', async () => {
    const chromium = chromiumBin()!;
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars'];
    const { stdout } = await run(chromium, [...flags, '--dump-dom', `file://${reportFile}`], { maxBuffer: 16 << 20, timeout: 30_000 });
    // The browser parsed the page into the same six charts (the DOM it dumps is the parsed one).
    expect(stdout.match(/<svg /g)).toHaveLength(6);
    expect(stdout).toContain('candidate better');
    const png = path.join(dir, 'report.png');
    await run(chromium, [...flags, `--screenshot=${png}`, '--window-size=1280,2000', `file://${reportFile}`], { timeout: 30_000 });
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(png).size).toBeGreaterThan(20_000);
  });
});
