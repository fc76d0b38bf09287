import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Three tiers (docs/testing.md), each a vitest project; `vitest run` runs all of them, `--project <name>` one.
 * A file's tier is what it really does:
 * - unit: pure code in this process; no sockets, no child processes, no worker threads running built code or
 *   models. Needs no build. Every test file not listed below.
 * - integration: the real server (in-process or spawned) on loopback, worker threads on dist/, ONNX Runtime on
 *   the real model packages, helper processes (the CLI, openssl, mkfifo).
 * - system: Docker, PostgreSQL, Prometheus/promtool, HAProxy, kustomize, the toolchain's Python, and the MuJoCo
 *   push task and fleet.
 */
export const INTEGRATION = [
  // Sockets: grpc-js servers and clients on loopback.
  'src/api/health-service.test.ts',
  'src/api/listen.test.ts',
  'clients/typescript/src/admin.test.ts',
  'clients/typescript/src/dust-client.test.ts',
  // Worker threads running dist/: the decode worker, the SQLite writer of a file-backed experiment database.
  'src/engine/decode-pool.test.ts',
  'src/experiment/experiment-book.test.ts',
  'src/experiment/sqlite-database.test.ts',
  // Child processes (mknod, mkfifo) to make the special files a package must refuse.
  'src/model/package.test.ts',
  'test/package-fuzz.test.ts',
  // Child processes: the native addon's build script.
  'test/build-native.test.ts',
  // ONNX Runtime on the real model packages, in this process or in the inference worker thread (through
  // onnxruntime-node or the native addon).
  'test/engine-sampling.test.ts',
  'test/model-fp16.test.ts',
  'test/model-parity.test.ts',
  'test/native-executor.test.ts',
  'test/native-faults.test.ts',
  'test/native-ort.test.ts',
  'test/shadow-admission.test.ts',
  // The real server, in-process (test/support/harness.ts) or spawned (test/support/serve-process.ts).
  'test/auth.test.ts',
  'test/cli-client.test.ts',
  'test/cli-serve.test.ts',
  'test/client-package.test.ts', // npm pack of the built client package, loaded by a child process
  'test/errors.test.ts',
  'test/experiment.test.ts',
  'test/experiment-report.test.ts',
  'test/failover.test.ts',
  'test/fair-queue.test.ts',
  'test/fuzz-admin.test.ts',
  'test/fuzz.test.ts',
  'test/health-floor.test.ts',
  'test/healthcheck.test.ts',
  'test/hostile-input.test.ts',
  'test/metrics-accounting.test.ts',
  'test/metrics-endpoint.test.ts',
  'test/metrics.test.ts',
  'test/model-lifecycle.test.ts',
  'test/openpi.test.ts',
  'test/option-wiring.test.ts',
  'test/package-confinement.test.ts',
  'test/persistence.test.ts',
  'test/rate-limit.test.ts',
  'test/readme.test.ts',
  'test/realtime-chunking.test.ts',
  'test/prefix-conditioning.test.ts',
  'test/server.test.ts',
  'test/stream-limits.test.ts',
  'test/tls.test.ts',
  'test/tracing.test.ts',
];

export const SYSTEM = [
  'test/container-fleet.test.ts', // Docker, HAProxy and PostgreSQL images
  'test/container.test.ts', // Docker
  'test/deploy.test.ts', // promtool
  'test/kubernetes.test.ts', // kustomize, promtool
  'test/lb.test.ts', // HAProxy, PostgreSQL
  'test/postgres-store.test.ts', // PostgreSQL
  'test/prometheus.test.ts', // Prometheus
  'bench/push/fleet.test.ts', // the MuJoCo fleet against the built server
  'test/push-dataset.test.ts', // the MuJoCo push task, the toolchain's Python (numpy, torch)
  'test/push-task.test.ts', // the MuJoCo push task
  'test/pixels-uint8.test.ts', // the toolchain's Python (torch) writes the uint8-pixel package
  'test/action-only.test.ts', // the toolchain's Python (torch) trains and exports the action-only package
  'test/shared-experiment.test.ts', // PostgreSQL
];

/** The inference and decode worker threads and the spawned CLI run dist/: build it first when it is stale. */
const BUILD_DIST = ['test/support/build-dist.ts'];

/**
 * The workspace packages (clients/typescript, sim/push) export their TypeScript sources under this condition,
 * so tests run the current sources without building the packages first (tsconfig.json sets it for the editor and
 * the type check; builds and Node at run time use the packages' dist/).
 */
const SOURCE_CONDITION = '@dust-serve/source';

export default defineConfig({
  // vitest's own server conditions (node, development) plus the source one; vitest hands these to its test
  // processes as --conditions too, which worker threads inherit: nothing they load imports the workspace packages.
  ssr: { resolve: { conditions: [SOURCE_CONDITION, 'node', 'development|production'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'clients/*/src/**/*.test.ts', 'sim/*/src/**/*.test.ts', 'bench/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...INTEGRATION, ...SYSTEM],
          // Unit files share their worker process: a fresh process per file cost more than the tests themselves
          // (about 35 s against 13 s on two cores). They change no process-wide state (environment stubs are undone
          // after each test), so sharing is safe; the other tiers keep one process per file.
          isolate: false,
        },
      },
      { extends: true, test: { name: 'integration', include: INTEGRATION, globalSetup: BUILD_DIST } },
      { extends: true, test: { name: 'system', include: SYSTEM, globalSetup: BUILD_DIST } },
    ],
  },
});
