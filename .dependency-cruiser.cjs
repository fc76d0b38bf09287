/**
 * The layer order of src/ (README, "How it works"): cli -> api -> experiment, engine ->
 * model, preprocess -> telemetry -> config, sampling, errors, proto; the client depends on the protos only. An
 * import that runs back up the order, or any cycle (type-only imports included), fails `npm run check:layers`.
 */
const below = (folders) => `^src/(${folders.join('|')})/`;
const layer = (name, from, to) => ({ name, severity: 'error', from: { path: below(from) }, to: { path: below(to) } });

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'cycles, type-only ones included', from: {}, to: { circular: true } },
    {
      name: 'client-independent',
      severity: 'error',
      comment: 'the typed client depends on the protos and their generated types only',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client|proto|gen)/' },
    },
    layer(
      'nothing-imports-cli',
      ['api', 'client', 'config', 'engine', 'errors', 'experiment', 'model', 'preprocess', 'proto', 'sampling', 'telemetry'],
      ['cli'],
    ),
    layer('api-only-below-cli', ['client', 'config', 'engine', 'errors', 'experiment', 'model', 'preprocess', 'proto', 'sampling', 'telemetry'], ['api']),
    layer('engine-experiment-above-model', ['client', 'config', 'errors', 'model', 'preprocess', 'proto', 'sampling', 'telemetry'], ['engine', 'experiment']),
    layer('engine-below-experiment', ['engine'], ['experiment']),
    {
      name: 'experiment-runs-nothing-on-the-engine',
      severity: 'error',
      comment:
        'the experiment layer decides (assignment, shadow draw, statistics); api/predict-orchestrator.ts runs requests on the engine for it, so experiment/ imports engine types only',
      from: { path: '^src/experiment/' },
      to: { path: '^src/engine/', dependencyTypesNot: ['type-only'] },
    },
    layer('model-preprocess-above-telemetry', ['config', 'errors', 'proto', 'sampling', 'telemetry'], ['model', 'preprocess']),
    layer('telemetry-above-config', ['config', 'errors', 'proto', 'sampling'], ['telemetry']),
    layer('config-sampling-errors-at-the-bottom', ['errors', 'proto', 'sampling'], ['config']),
    {
      name: 'grpc-js-at-the-edge',
      severity: 'error',
      comment: 'nothing below api/ imports grpc-js (STYLE: the edge maps statuses)',
      from: { path: '^src/', pathNot: '^src/(api|cli|client|proto)/' },
      to: { path: 'node_modules/@grpc/grpc-js/' },
    },
    {
      name: 'src-not-bench-or-test',
      severity: 'error',
      comment: 'the product does not import benchmarks or test support; its own unit tests may use the hostile-input generators',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(bench|test)/' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/gen/' },
  },
};
