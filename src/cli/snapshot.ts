/**
 * The CLI as a V8 startup snapshot (`scripts/bundle.ts` builds it; `bin/custody`
 * runs it when it was built by the same Node binary). Building runs this file:
 * the modules a command needs are loaded and evaluated then (zod and every
 * schema, CEL and its protobuf registries, YAML, commander, the engine), and
 * the heap is saved. A CLI process then starts from that heap instead of
 * loading and evaluating some megabytes of JavaScript, which is most of a short
 * command's life.
 *
 * Nothing that depends on the process or the moment may be taken at build
 * time: the evaluation runs under `watchImpurity()` and any use of the
 * environment, randomness, the clock, the host or the directory fails the
 * build. Process-bound values (the owner id of an apply, the bundle's own
 * location) are made on first use.
 *
 * `bin/custody` passes the bundle entry (dist/bundle/bin.js) as the first
 * argument, so `process.argv` looks as it does without a snapshot, and files
 * found next to the bundle (worker threads, examples, native addons) are found
 * from it.
 */
import { startupSnapshot } from 'node:v8';
import { setBundleUrl, setStartedFrom } from '../adapters/module-url.ts';
import { exitOnClosedPipe } from './pipes.ts';
import { IMPURE_EXIT, watchImpurity } from './snapshot-guard.ts';

// A CLI parses a handful of inputs: zod's compiled parsers would cost more than they save (see bin.ts).
(globalThis as { __zod_globalConfig?: { jitless?: boolean } }).__zod_globalConfig = { jitless: true };

// node:crypto is not watched but kept out altogether (below): any random draw at load would load it and fail the build.
const watch = watchImpurity({ crypto: false });
// Evaluated now, while the snapshot is built; the main function finds them loaded. The promotion path (the
// command CI runs most), the workspace and CEL; other operation groups are in the snapshot's code but evaluated
// on first use: each megabyte of evaluated objects costs every command 2-6 ms to deserialise (measured with
// --profile-deserialization).
const loaded = Promise.all([
  import('./main.ts'),
  import('../app/operations/promotions.ts'),
  import('../app/promotion.ts'),
  import('../app/workspace.ts'),
  import('../core/policy/cel.ts'),
]);

/**
 * Uses at load that keep nothing of the build process, each checked in the
 * dependency's source. Anything else fails the build.
 */
const HARMLESS: { what: string; frame?: RegExp; why: string }[] = [
  // semver and other debug helpers decide at load whether to log: a snapshot process logs as the build did (not at all).
  { what: 'process.env.NODE_DEBUG', why: 'debug logging switch of dependencies' },
  // @bufbuild/protobuf's opt-out of BigInt; Custody never sets it.
  { what: 'process.env.BUF_BIGINT_DISABLE', why: 'protobuf-es BigInt opt-out' },
  // yaml reads its debug switches on every parse (the warm-up below parses), and keeps nothing.
  { what: 'process.env.LOG_TOKENS', frame: /\bParser\d*\.parse\b/, why: 'yaml debug switch, read per parse' },
  { what: 'process.env.LOG_STREAM', frame: /\bComposer\d*\.(next|compose)\b/, why: 'yaml debug switch, read per parse' },
];

/**
 * Node 24 aborts a worker thread that loads node:crypto when the snapshot it
 * was started beside already holds node:crypto's key objects (the worker's
 * environment finds their class template set). Worker threads hash and verify
 * for the CLI, so the snapshot is built without node:crypto: scripts/bundle.ts
 * makes it and the dependencies that use it at load (@noble/curves) load on
 * first use, and this check keeps it so.
 */
const CRYPTO_AT_LOAD = 'NativeModule internal/crypto/keys';

/**
 * Pure work done once at build, so that the code a command runs first is
 * compiled already: the YAML parser and the config schema, CEL's parser and
 * checker, commander. Under the same watch as the loading: none of it may
 * touch the environment, the clock, randomness or node:crypto.
 */
async function warmUp(): Promise<void> {
  const [{ main }, { parseConfig }, { configTemplate }, { compileCel, INPUT_VARIABLES, WHERE_VARIABLES }] = await Promise.all([
    import('./main.ts'),
    import('../core/config.ts'),
    import('../app/workspace.ts'),
    import('../core/policy/cel.ts'),
  ]);
  const config = `${configTemplate('ci:warm-up', 'custody.example/warm-up')}environments:\n  dev: { target: { type: fs, dir: channels } }\n  prod: { from: [dev], policy: prod, target: { type: command, command: [deploy] } }\n`;
  parseConfig(config.replace(/^environments: \{\}\n/m, ''), 'custody.yaml');
  compileCel('artifact.name.startsWith("pkg:npm/") && environment.name in ["dev", "prod"] && size(approvals) >= 1', INPUT_VARIABLES);
  compileCel('predicate.result == "PASSED" && predicate.scanner.result.all(v, v.severity.all(s, !(s.score in ["HIGH"])))', WHERE_VARIABLES);
  const sink = new (process.getBuiltinModule('node:stream').Writable)({ write: (_c, _e, cb: () => void) => cb() });
  await main(['--version'], { stdout: sink, stderr: sink });
}

void loaded.then(async () => {
  await warmUp();
  const moduleLoadList = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
  if (moduleLoadList.includes(CRYPTO_AT_LOAD)) {
    process.stderr.write(`node:crypto was loaded while the snapshot was built (${CRYPTO_AT_LOAD}): worker threads started from it would abort; see src/cli/snapshot.ts\n`);
    process.exit(IMPURE_EXIT);
  }
  const used = watch.stop().filter((u) => !HARMLESS.some((h) => h.what === u.what && (h.frame === undefined || u.frames.some((f) => h.frame!.test(f)))));
  if (used.length > 0) {
    const lines = used.map((u) => `  ${u.what}${u.frames.map((f) => `\n      at ${f}`).join('')}`);
    process.stderr.write(`the snapshot's modules used, at load, what belongs to the process that runs them:\n${lines.join('\n')}\n`);
    process.exit(IMPURE_EXIT);
  }
});

startupSnapshot.setDeserializeMainFunction(() => {
  void run();
});

async function run(): Promise<void> {
  const [{ main }] = await loaded;
  setBundleUrl(process.argv[1]);
  setStartedFrom('snapshot');
  exitOnClosedPipe();
  process.exitCode = await main(process.argv.slice(2));
}
