/**
 * Bundles the CLI for start-up speed: one resolution pass at build time instead
 * of hundreds of module look-ups on every run. Code splitting keeps the lazy
 * `import()`s lazy, so `custody status` never loads the server or CEL.
 * The worker entry points are bundled beside it, where `new URL('./x-worker.js',
 * import.meta.url)` finds them.
 */
import { build, type Plugin } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { IMPURE_EXIT } from '../src/cli/snapshot-guard.ts';
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

// ---------------------------------------------------------------- startup snapshot

/**
 * Built-ins a snapshot cannot hold (node:sqlite, the HTTP/TLS stack the remote
 * client and server load on use) or that Node does not promise to restore
 * (threads, child processes, async hooks, the module loader): the snapshot's
 * code reaches them through a stand-in that loads the real module on first
 * use, at run time. No module-level code may use them.
 */
/** A module whose exports `names` are getters that evaluate `load` (a JS expression) the first time one is read. */
function lazyExports(load: string, names: readonly string[]): string {
  return [
    `let m; const load = () => (m ??= ${load});`,
    `for (const k of ${JSON.stringify(names)}) Object.defineProperty(module.exports, k, { enumerable: true, get: () => load()[k] });`,
  ].join('\n');
}

const LAZY_BUILTINS = /^node:sqlite$|^(node:)?(http|https|http2|tls|worker_threads|child_process|async_hooks|module|crypto)$/;
const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: LAZY_BUILTINS }, (args) => ({ path: args.path, namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      // The module's export names, known here; each export is a getter that loads the module when first read.
      const names = Object.keys(process.getBuiltinModule(args.path.startsWith('node:') ? args.path : `node:${args.path}`) as object);
      return { loader: 'js', contents: lazyExports(`process.getBuiltinModule(${JSON.stringify(args.path.startsWith('node:') ? args.path : `node:${args.path}`)})`, names) };
    });
  },
};

/**
 * Native addons (pkcs11js, pg-native) cannot be in a snapshot, and the
 * snapshot's own `require` reaches built-ins only: they are required at run
 * time, the first time a command uses them, from where the running bundle
 * sits (the snapshot's entry is started with dist/bundle/bin.js as argv[1]).
 */
const RUNTIME_REQUIRE = /^(pkcs11js|pg-native)$/;
const runtimeRequire: Plugin = {
  name: 'runtime-require',
  setup(b) {
    b.onResolve({ filter: RUNTIME_REQUIRE }, (args) => ({ path: args.path, namespace: 'runtime-require' }));
    b.onLoad({ filter: /.*/, namespace: 'runtime-require' }, (args) => ({
      loader: 'js',
      contents: [
        `if (process.getBuiltinModule('node:v8').startupSnapshot.isBuildingSnapshot()) throw new Error(${JSON.stringify(`${args.path} was loaded while the snapshot was built`)});`,
        `module.exports = process.getBuiltinModule('node:module').createRequire(process.argv[1])(${JSON.stringify(args.path)});`,
      ].join('\n'),
    }));
  },
};

/**
 * Dependencies whose evaluation at load would start node:crypto (see above):
 * @noble/curves builds its curves and probes the random source when loaded.
 * The snapshot's code reaches them through a stand-in that evaluates the real
 * module (bundled, as every other) on first use.
 */
const DEFERRED = /^@noble\/curves\/nist\.js$/;
const deferred: Plugin = {
  name: 'deferred-modules',
  setup(b) {
    b.onResolve({ filter: DEFERRED }, async (args) => {
      // b.resolve runs this callback again: the second time, resolve as usual.
      if ((args.pluginData as { real?: boolean } | undefined)?.real === true) return undefined;
      const real = await b.resolve(args.path, { kind: 'import-statement', resolveDir: args.resolveDir, pluginData: { real: true } });
      return { path: real.path, namespace: 'deferred' };
    });
    b.onLoad({ filter: /.*/, namespace: 'deferred' }, async (args) => {
      const names = Object.keys((await import(args.path)) as object);
      return { loader: 'js', resolveDir: root, contents: lazyExports(`require(${JSON.stringify(args.path)})`, names) };
    });
  },
};

await build({
  absWorkingDir: root,
  entryPoints: { snapshot: 'src/cli/snapshot.ts' },
  outdir: 'dist/snapshot',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node24',
  // Locations come from the running bundle (src/adapters/module-url.ts), never from where the snapshot was built.
  define: { 'import.meta.url': 'undefined', 'import.meta.dirname': 'undefined' },
  plugins: [lazyBuiltins, runtimeRequire, deferred],
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

// One character beyond Latin-1 anywhere in the bundle makes V8 hold all of its source as
// two-byte text: 5 MiB of the snapshot's heap instead of 2.5 (write such characters as \u escapes).
const wide = /[^\u0000-\u00ff]/.exec(readFileSync(join(root, 'dist', 'snapshot', 'snapshot.js'), 'utf8'));
if (wide) {
  console.error(`error: dist/snapshot/snapshot.js holds ${JSON.stringify(wide[0])} (U+${wide[0].codePointAt(0)!.toString(16).padStart(4, '0')}) at offset ${wide.index}: write it as an escape in the source`);
  process.exit(1);
}

/**
 * The blob only fits the Node binary that made it (a mismatched or truncated
 * blob makes Node abort before any JavaScript runs): it is written under a
 * temporary name and renamed when whole, and bin/custody uses it only while
 * the binary's size and modification time match the stamp written beside it.
 * A snapshot whose code took something from the build's process or moment
 * (src/cli/snapshot.ts checks) fails the build: that would be a defect, not an
 * optimisation lost.
 */
const node = existsSync(join(root, 'node_modules', 'node', 'bin', 'node')) ? join(root, 'node_modules', 'node', 'bin', 'node') : process.execPath;
const dir = join(root, 'dist', 'snapshot');
const partial = join(dir, `custody.blob.${process.pid}`);
const made = spawnSync(node, ['--snapshot-blob', partial, '--build-snapshot', join(dir, 'snapshot.js')], { cwd: root, stdio: 'inherit' });
if (made.status === 0) {
  renameSync(partial, join(dir, 'custody.blob'));
  const st = statSync(node);
  writeFileSync(join(dir, 'node.stamp'), `${st.size} ${Math.floor(st.mtimeMs / 1000)}\n`);
} else {
  rmSync(partial, { force: true });
  if (made.status === IMPURE_EXIT) {
    console.error('error: the CLI startup snapshot would keep values of the build process (listed above); see src/cli/snapshot.ts');
    process.exit(1);
  }
  // Not fatal: bin/custody runs the bundle without it (a test says when a fresh build has none).
  console.warn('warning: the CLI startup snapshot could not be built; bin/custody runs without it');
}
