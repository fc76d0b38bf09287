/**
 * Keeps one core busy for a fraction of the time (`duty`, in 10 ms periods) until killed: the stand-in for
 * inference and other bulk work in bench/health-floor.ts.
 */
const duty = Number(process.argv[2] ?? 1);
const PERIOD_MS = 10;

function burn(): void {
  const start = performance.now();
  while (performance.now() - start < PERIOD_MS * duty) {
    // spin
  }
  setTimeout(burn, PERIOD_MS * (1 - duty));
}
burn();
