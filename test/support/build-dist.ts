/**
 * vitest global setup: the inference worker thread runs the compiled dist/ (a worker cannot load .ts), and
 * the CLI and benchmark tests spawn dist/ too (the server's, the benches', and the workspace packages' they
 * import). When the build is stale or missing, build first, so `npx vitest` never runs stale engine code next to
 * current sources. The check and the build are scripts/ensure-build.mjs, the one the npm scripts run.
 */
import { ensureBuild } from '../../scripts/ensure-build.mjs';

export default function setup(): void {
  try {
    ensureBuild(undefined, (line) => console.warn(`[vitest setup] ${line}, so the inference worker runs the current sources`));
  } catch {
    throw new Error(
      '`npm run build:bench` failed (see above): the tests need a current dist/ for the inference worker; fix the build, then run the tests again',
    );
  }
}
