// Lint rules that catch what the compiler does not: promises left floating or handed where a callback's
// return is ignored (an unhandled rejection there ends the process or loses an error).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'src/gen/', 'node_modules/', 'models/', 'deploy/', 'scripts/'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
