// One replica's share of a concurrent-writers test: connects its own PostgreSQL experiment store (the built
// dist/), queues every served request of its plan at once (so they go out in group commits, interleaved with
// the other processes'), then credits the outcomes of its plan concurrently, and prints which credits counted.
// Usage: node experiment-writer.mjs <postgres-url> <plan.json>
import { readFileSync } from 'node:fs';
import { PostgresExperimentStore } from '../../dist/src/experiment/index.js';

const [url, planFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const quiet = { info() {}, warn() {}, error: (obj, msg) => console.error(msg, obj) };
const store = await PostgresExperimentStore.connect({ connectionString: url, countWaitMs: 120_000, log: quiet });
await Promise.all(plan.served.map((e) => store.served(e)));
const credits = await Promise.all(plan.outcomes.map((o) => store.credit(o.robotId, o.episodeId, o.success)));
await store.close();
process.stdout.write(JSON.stringify({ counted: credits.filter((c) => c?.counted).length }));
