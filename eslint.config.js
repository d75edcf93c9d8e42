// @ts-check
import tseslint from 'typescript-eslint';

const IO_MODULES = [
  'fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'child_process', 'dgram', 'dns', 'tls', 'cluster',
  'worker_threads', 'sqlite', 'os', 'process', 'readline', 'inspector', 'v8', 'vm',
].flatMap((m) => [m, `node:${m}`]);
const IO_PACKAGES = ['pg', 'pkcs11js', 'hono', '@hono/*', 'undici', 'axios', 'node-fetch', 'commander', 'playwright-core'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'web/dist/', 'bench/out/', '.custody/'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "ThrowStatement > NewExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/]",
          message: 'Throw a CustodyError with a stable code, never a bare Error.',
        },
      ],
    },
  },
  {
    // The import boundary: core/ is pure. It decides; adapters/ do I/O; app/ wires them.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.map((name) => ({ name, message: 'core/ does no I/O: put this behind a port in core/ports.ts and implement it in adapters/.' })),
          patterns: [
            { group: IO_PACKAGES, message: 'core/ does no I/O: drivers and frameworks belong in adapters/ or server/.' },
            { group: ['**/adapters/**', '**/app/**', '**/cli/**', '**/server/**'], message: 'core/ must not import outer layers; imports point inward only.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'core/ does no I/O.' }, { name: 'process', message: 'core/ reads no environment: pass values in.' }],
    },
  },
  {
    files: ['src/adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/app/**', '**/cli/**', '**/server/**'], message: 'adapters/ implement ports; they never call use cases or the UI.' }] }],
    },
  },
  {
    files: ['src/app/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cli/**', '**/server/**'], message: 'app/ is called by cli/ and server/, never the reverse.' }] }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
