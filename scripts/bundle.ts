/**
 * Bundles the CLI for start-up speed: one resolution pass at build time instead
 * of hundreds of module look-ups on every run. Code splitting keeps the lazy
 * `import()`s lazy, so `custody status` never loads the server or CEL.
 * The worker entry points are bundled beside it, where `new URL('./x-worker.js',
 * import.meta.url)` finds them.
 */
import { build } from 'esbuild';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
await build({
  absWorkingDir: root,
  entryPoints: { bin: 'src/cli/bin.ts', 'hash-worker': 'src/adapters/hash-worker.ts', 'verify-worker': 'src/adapters/verify-worker.ts' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // Native addons load from node_modules at run time.
  external: ['pkcs11js', 'pg-native'],
  // Bundled CommonJS dependencies call require() for Node built-ins.
  banner: { js: "import { createRequire as __custodyRequire } from 'node:module'; const require = __custodyRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
