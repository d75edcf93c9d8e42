/**
 * The CLI's startup snapshot (src/cli/snapshot.ts, built by scripts/bundle.ts
 * with dist/): that bin/custody takes it where it should and not elsewhere,
 * that what runs from it reaches worker threads, files beside the bundle and
 * the environment of the process that runs it, and that the build's watch for
 * values taken from the build process sees each source it claims to.
 *
 * Every other test that spawns bin/custody also runs from the snapshot when
 * dist/ is fresh (as after `npm ci`), so the promotion, crash, key and audit
 * suites exercise it too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addArtifact } from '../../src/app/artifacts.ts';
import { importEvidence } from '../../src/app/evidence.ts';
import { importPublicKey } from '../../src/app/keys.ts';
import { watchImpurity } from '../../src/cli/snapshot-guard.ts';
import { ROOT, spawnCli, tempWorkspace } from '../helpers.ts';
import { dsseFor, statementAbout } from '../fixtures/evidence.ts';
import { testKey } from '../fixtures/keys.ts';

const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const BLOB = join(ROOT, 'dist', 'snapshot', 'custody.blob');
const ENTRY = join(ROOT, 'dist', 'bundle', 'bin.js');

/** Is dist/ at least as new as every source file? Then bin/custody runs the build, and the snapshot is part of it. */
function distFresh(): boolean {
  const stamp = join(ROOT, 'dist', '.buildstamp');
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((d) => (d.isDirectory() ? newer(join(dir, d.name)) : statSync(join(dir, d.name)).mtimeMs > built));
  return !newer(join(ROOT, 'src'));
}

/** Runs a program with PATH stripped of any other node, as spawnCli does for bin/custody. */
function runProcess(program: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.stdin.end();
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const fresh = distFresh();

describe('the CLI startup snapshot', { skip: fresh ? false : 'dist/ is older than src/: `npm run build` first (CI builds in npm ci)' }, () => {
  it('is built with dist/, for the Node binary that runs it', async () => {
    assert.ok(existsSync(BLOB), 'a fresh build has a snapshot: scripts/bundle.ts only warns when it cannot make one');
    const st = statSync(NODE);
    assert.equal((await readFile(join(ROOT, 'dist', 'snapshot', 'node.stamp'), 'utf8')).trim(), `${st.size} ${Math.floor(st.mtimeMs / 1000)}`);
  });

  it('starts workspace commands from it, and artifact add, the server, help and CUSTODY_SNAPSHOT=0 without it', async () => {
    const ws = await tempWorkspace();
    const file = join(ws.dir, 'app.tgz');
    await writeFile(file, 'the build\n');
    const h = ['--home', ws.home, '--debug'];
    const list = await spawnCli(['artifact', 'list', ...h]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /started from the snapshot\n/);
    const off = await spawnCli(['artifact', 'list', ...h], { env: { CUSTODY_SNAPSHOT: '0' } });
    assert.match(off.stderr, /started from the bundle\n/);
    // The snapshot's heap would push a large add past its memory bound (bench/hash).
    const add = await spawnCli(['artifact', 'add', file, '--name', 'app', '--version', '1.0.0', ...h]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /started from the bundle\n/);
  });

  it('is not used when its stamp no longer matches the Node binary (Node updated after the build)', async () => {
    const ws = await tempWorkspace();
    // An installed layout (no src/) beside the real build, with its own copy of the stamp.
    const root = join(ws.dir, 'installed');
    await mkdir(join(root, 'bin'), { recursive: true });
    await mkdir(join(root, 'dist', 'snapshot'), { recursive: true });
    await copyFile(join(ROOT, 'bin', 'custody'), join(root, 'bin', 'custody'));
    await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    await symlink(join(ROOT, 'dist', 'bundle'), join(root, 'dist', 'bundle'));
    await symlink(BLOB, join(root, 'dist', 'snapshot', 'custody.blob'));
    const stamp = join(root, 'dist', 'snapshot', 'node.stamp');
    const run = () => runProcess(join(root, 'bin', 'custody'), ['artifact', 'list', '--home', ws.home, '--debug']);
    await copyFile(join(ROOT, 'dist', 'snapshot', 'node.stamp'), stamp);
    assert.match((await run()).stderr, /started from the snapshot\n/);
    await writeFile(stamp, '1 2\n');
    const stale = await run();
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(stale.stderr, /started from the bundle\n/);
  });

  it('takes the environment, randomness and clock of the process that runs it, not of the build', async () => {
    const ws = await tempWorkspace();
    const a = await spawnCli(['artifact', 'list', '--json'], { env: { CUSTODY_HOME: ws.home } });
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(a.json<{ artifacts: unknown[] }>().artifacts, []);
    // Two keys made by two processes from the same heap are two keys.
    const kek = join(ws.dir, 'kek');
    await writeFile(kek, randomBytes(32), { mode: 0o600 });
    const made = [];
    for (const name of ['one', 'two']) {
      const r = await spawnCli(['key', 'create', name, '--home', ws.home, '--json', '--debug'], { env: { CUSTODY_KEK_FILE: kek } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /started from the snapshot\n/);
      made.push(r.json<{ key: { keyid: string; createdAt: string } }>().key);
    }
    assert.notEqual(made[0]!.keyid, made[1]!.keyid);
    assert.ok(Date.parse(made[0]!.createdAt) > statSync(BLOB).mtimeMs, 'the clock is the run time, not the build time');
  });

  it('verifies a batch on the worker pool, and hashes on a worker, from the snapshot', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const file = join(ws.dir, 'app.tgz');
    await writeFile(file, 'the build\n');
    const { artifact } = await addArtifact(ctx, { file, name: 'pkg:npm/app', version: '1.0.0' });
    const key = testKey();
    const pem = join(ws.dir, 'bulk.pub');
    await writeFile(pem, key.record.publicKeyPem);
    await importPublicKey(ctx, { name: 'bulk', pemFile: pem });
    const lines: string[] = [];
    // Over the pool's threshold (app/evidence.ts), so `custody verify` sends them to worker threads.
    for (let i = 0; i < 300; i++) lines.push(JSON.stringify(await dsseFor(statementAbout({ sha256: artifact.digests.sha256! }, `https://example.com/check/${i}`, 200), key.signer)));
    const bulk = join(ws.dir, 'bulk.intoto.jsonl');
    await writeFile(bulk, `${lines.join('\n')}\n`);
    await importEvidence(ctx, { file: bulk });
    await ctx.close();

    const v = await spawnCli(['verify', 'pkg:npm/app@1.0.0', '--home', ws.home, '--json', '--debug']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stderr, /started from the snapshot\n/);
    const out = v.json<{ ok: boolean; items: { verified: boolean }[] }>();
    assert.equal(out.items.length, 300);
    assert.ok(out.items.every((i) => i.verified));

    // `artifact add` is kept off the snapshot by bin/custody, but must work there too (its sha512 runs on a worker).
    const big = join(ws.dir, 'big.bin');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(big, bytes);
    const add = await runProcess(NODE, ['--snapshot-blob', BLOB, ENTRY, 'artifact', 'add', big, '--name', 'big', '--version', '1.0.0', '--home', ws.home, '--json', '--debug']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /started from the snapshot\n/);
    const digests = (JSON.parse(add.stdout) as { digests: Record<string, string> }).digests;
    assert.equal(digests['sha256'], createHash('sha256').update(bytes).digest('hex'));
    assert.equal(digests['sha512'], createHash('sha512').update(bytes).digest('hex'));
  });
});

describe('the snapshot build watch (src/cli/snapshot-guard.ts)', () => {
  it('sees each source of process- or moment-bound values, then steps aside and restores them', async () => {
    // Compared by identity, never called.
    const cwd = Object.getOwnPropertyDescriptor(process, 'cwd')?.value as unknown;
    const originals = { random: Math.random, now: Date.now, Date, env: process.env, hostname: os.hostname, readFileSync: process.getBuiltinModule('node:fs').readFileSync };
    const watch = watchImpurity();
    const before = process.env['HOME'];
    void ('PATH' in process.env);
    process.getBuiltinModule('node:crypto').randomBytes(4);
    process.getBuiltinModule('node:crypto').randomUUID();
    globalThis.crypto.getRandomValues(new Uint8Array(4));
    Math.random();
    Date.now();
    void new Date();
    void new Date(0);
    performance.now();
    process.getBuiltinModule('node:os').hostname();
    process.getBuiltinModule('node:os').userInfo();
    process.cwd();
    void process.argv.length;
    void process.pid;
    process.getBuiltinModule('node:fs').readFileSync(join(ROOT, 'package.json'));
    process.getBuiltinModule('node:fs').existsSync(join(ROOT, 'package.json'));
    await process.getBuiltinModule('node:fs').promises.stat(join(ROOT, 'package.json'));
    const used = watch.stop().map((u) => u.what);
    for (const what of [
      'process.env.HOME',
      'process.env.PATH',
      'crypto.randomBytes',
      'crypto.randomUUID',
      'crypto.webcrypto.getRandomValues',
      'Math.random',
      'Date.now',
      'new Date()',
      'performance.now',
      'os.hostname',
      'os.userInfo',
      'process.cwd',
      'process.argv',
      'process.pid',
      'fs.readFileSync',
      'fs.existsSync',
      'fs.promises.stat',
    ]) {
      assert.ok(used.includes(what), `${what} is seen (seen: ${used.join(', ')})`);
    }
    assert.equal(used.filter((u) => u === 'new Date()').length, 1, 'a date from a given time is not the clock');
    assert.equal(process.env['HOME'], before, 'the environment reads through');
    // After stop: the originals are back, and nothing more is noted.
    assert.equal(Math.random, originals.random);
    assert.equal(Date.now, originals.now);
    assert.equal(globalThis.Date, originals.Date);
    assert.equal(Object.getOwnPropertyDescriptor(process, 'cwd')?.value, cwd);
    assert.equal(process.env, originals.env);
    assert.equal(process.getBuiltinModule('node:os').hostname, originals.hostname);
    assert.equal(process.getBuiltinModule('node:fs').readFileSync, originals.readFileSync);
    assert.equal(typeof process.pid, 'number');
    assert.ok(process.argv.length > 0);
  });

  it('names the code that asked', () => {
    const watch = watchImpurity();
    (function readsTheBuildersHome() {
      return process.env['HOME'];
    })();
    const [use] = watch.stop();
    assert.equal(use?.what, 'process.env.HOME');
    assert.match(use.frames[0] ?? '', /readsTheBuildersHome/);
  });
});
