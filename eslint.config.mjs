// Lint rules that catch what the compiler does not: promises left floating or handed where a callback's
// return is ignored (an unhandled rejection there ends the process or loses an error).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/', 'clients/typescript/src/gen/', 'clients/typescript/proto/', 'node_modules/', 'models/', 'deploy/', 'scripts/'] },
  {
    files: ['src/**/*.ts', 'clients/typescript/src/**/*.ts', 'sim/push/src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    // One program for every file: tsconfig.json, which resolves the workspace packages to their sources (the
    // per-folder build configs, such as bench/tsconfig.json, read the packages' built declarations instead).
    languageOptions: { parser: tseslint.parser, parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
