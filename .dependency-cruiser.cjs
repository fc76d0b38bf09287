/**
 * The layer order of src/ (README, "How it works"): cli -> api -> experiment, engine ->
 * model, preprocess -> telemetry -> config, sampling, errors; the client package (clients/typescript) depends on
 * the protos only, the push task (sim/push) on MuJoCo only. An import that runs back up the order, or any cycle
 * (type-only imports included), fails `npm run check:layers`. The workspace packages resolve to their sources
 * (the `@dust-serve/source` export condition, as in tsconfig.json).
 */
const below = (folders) => `^src/(${folders.join('|')})/`;
const layer = (name, from, to) => ({ name, severity: 'error', from: { path: below(from) }, to: { path: below(to) } });

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'cycles, type-only ones included', from: {}, to: { circular: true } },
    {
      name: 'client-independent',
      severity: 'error',
      comment: 'the typed client is its own package: it depends on grpc-js and the protos (and their generated types) only',
      from: { path: '^clients/typescript/src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(?!clients/typescript/)', pathNot: '^node_modules/@grpc/(grpc-js|proto-loader)/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'sim-independent',
      severity: 'error',
      comment: 'the push task is its own package: no server, client, benchmark or test code',
      from: { path: '^sim/push/src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(src|clients|bench|test)/' },
    },
    {
      name: 'test-not-bench',
      severity: 'error',
      comment: 'test/ and its support do not import benchmarks; infrastructure both use lives in test/support',
      from: { path: '^test/' },
      to: { path: '^bench/' },
    },
    layer('nothing-imports-cli', ['api', 'config', 'engine', 'errors', 'experiment', 'model', 'preprocess', 'sampling', 'telemetry'], ['cli']),
    layer('api-only-below-cli', ['config', 'engine', 'errors', 'experiment', 'model', 'preprocess', 'sampling', 'telemetry'], ['api']),
    layer('engine-experiment-above-model', ['config', 'errors', 'model', 'preprocess', 'sampling', 'telemetry'], ['engine', 'experiment']),
    layer('engine-below-experiment', ['engine'], ['experiment']),
    {
      name: 'experiment-runs-nothing-on-the-engine',
      severity: 'error',
      comment:
        'the experiment layer decides (assignment, shadow draw, statistics); api/predict-orchestrator.ts runs requests on the engine for it, so experiment/ imports engine types only',
      from: { path: '^src/experiment/' },
      to: { path: '^src/engine/', dependencyTypesNot: ['type-only'] },
    },
    layer('model-preprocess-above-telemetry', ['config', 'errors', 'sampling', 'telemetry'], ['model', 'preprocess']),
    layer('telemetry-above-config', ['config', 'errors', 'sampling'], ['telemetry']),
    layer('config-sampling-errors-at-the-bottom', ['errors', 'sampling'], ['config']),
    {
      name: 'grpc-js-at-the-edge',
      severity: 'error',
      comment: 'nothing below api/ imports grpc-js (STYLE: the edge maps statuses)',
      from: { path: '^src/', pathNot: '^src/(api|cli)/' },
      to: { path: 'node_modules/@grpc/grpc-js/' },
    },
    {
      name: 'src-not-bench-or-test',
      severity: 'error',
      comment: 'the product does not import benchmarks, the simulator or test support; its own unit tests may use the hostile-input generators',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(bench|test|sim)/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(clients/typescript/src/gen|bench/results)/|/dist/' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['@dust-serve/source', 'import', 'require', 'node', 'default'] },
  },
};
