// ESLint for the explorer's page (src/vaelab/explorer/static/*.js): ES modules run by the browser, no build step.
// `npm ci` installs the pinned linter (package-lock.json); `npx --no-install eslint` runs it offline (.ci/run).
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/', 'build/', 'dist/', 'mutants/', '.venv/'] },
  js.configs.recommended,
  {
    files: ['src/vaelab/explorer/static/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.browser,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      eqeqeq: ['error', 'always', { null: 'ignore' }], // `x == null` tests null and undefined at once, on purpose
      'no-var': 'error',
      'prefer-const': 'error',
      'no-shadow': 'error',
      'no-implicit-globals': 'error',
      'no-use-before-define': ['error', { functions: false, classes: true, variables: true }],
      'no-unused-vars': ['error', { args: 'after-used', caughtErrors: 'all' }],
      'no-throw-literal': 'error',
      'no-promise-executor-return': 'error',
      'no-unmodified-loop-condition': 'error',
      'no-await-in-loop': 'error',
      'require-atomic-updates': 'error',
      'no-constructor-return': 'error',
      'array-callback-return': 'error',
      curly: ['error', 'multi-line'],
    },
  },
  {
    files: ['eslint.config.js'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
];
