// Writes a demonstration experiment database for docs/images/experiment-report.png: two hours of a fleet's
// A/B test (control v1, candidate v2 that succeeds more often, shadow v3), driven through the real experiment
// book and SQLite store on a simulated clock, so that the report draws what a server would have stored.
// Usage (after `npm run build`): node scripts/experiment-report-demo.mjs <file.sqlite>
import { rmSync } from 'node:fs';
import { ExperimentBook, SqliteExperimentStore } from '../dist/src/experiment/index.js';

const file = process.argv[2];
if (!file) throw new Error('usage: node scripts/experiment-report-demo.mjs <file.sqlite>');
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });

// A seeded generator (mulberry32), so that the picture is the same on every run.
let seed = 20261207;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

let now = Date.UTC(2026, 11, 7, 6, 0, 0);
const clock = () => now;
const MODEL = 'dust-push';
const store = new SqliteExperimentStore(file, { flushIntervalMs: 0, historyWindowMs: 60_000, now: clock });
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
const book = await ExperimentBook.open(store, log, { alpha: 0.05, mixtureSd: 0.1, refreshIntervalMs: 0, now: clock, random });
const ready = [1, 2, 3];
await book.ensure(MODEL);
await book.setSplit(MODEL, {
  weights: [
    { version: 1, weight: 1 },
    { version: 2, weight: 1 },
  ],
  controlVersion: 1,
  stickyKey: 'episode',
  salt: 'push-v2-rollout',
  shadowVersion: 3,
  shadowFraction: 0.1,
});

// Per version: success probability, latency (ms), the N_o it tends to use, world-model surprise.
const profile = {
  1: { success: 0.58, latency: 38, visionSteps: () => 8, surprise: 0.21 },
  2: { success: 0.71, latency: 44, visionSteps: () => (random() < 0.6 ? 4 : 8), surprise: 0.17 },
};
let episode = 0;
for (let minute = 0; minute < 120; minute++) {
  const episodes = 6 + Math.floor(random() * 6);
  for (let i = 0; i < episodes; i++) {
    const robotId = `robot-${Math.floor(random() * 40)}`;
    const episodeId = `ep-${episode++}`;
    let version;
    for (let step = 0; step < 8; step++) {
      now += 500;
      const a = book.assign(MODEL, ready, robotId, episodeId);
      const p = profile[a.version];
      version = a.version;
      const latencyMs = Math.max(5, p.latency + 6 * normal() + (random() < 0.02 ? 60 : 0));
      await book.served(a, { robotId, episodeId, requestId: `${episodeId}-${step}`, latencyMs, visionSteps: p.visionSteps(), worldModelSurprise: Math.max(0, p.surprise + 0.05 * normal()) });
      const shadow = book.shadowFor(a, ready);
      if (shadow) book.shadowServed(MODEL, shadow, latencyMs * 1.1, Math.max(0, 0.12 + 0.03 * normal() + (minute > 70 ? 0.05 : 0)));
    }
    await book.outcome(robotId, episodeId, random() < profile[version].success);
  }
  now = Date.UTC(2026, 11, 7, 6, minute, 59);
  await store.flush();
}
await book.close();
