import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { cli, ROOT, spawnCli, tempDir, tempWorkspace } from '../helpers.ts';
import { VERSION } from '../../src/cli/version.ts';
import { buildCli } from '../../src/cli/main.ts';

describe('cli', () => {
  it('runs `--help` from bin/custody on the pinned Node 24, whatever node is on PATH', async () => {
    const r = await spawnCli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: custody/);
    const v = await spawnCli(['--version']);
    assert.equal(v.stdout.trim(), VERSION);
  });

  it('keeps the CLI version in step with package.json', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };
    assert.equal(VERSION, pkg.version);
    assert.match(pkg.engines.node, /24/);
  });

  it('gives every runnable command --help with an example and a --json option', async () => {
    const { program } = buildCli({ stdout: process.stdout, stderr: process.stderr });
    const paths: string[][] = [];
    const walk = (cmd: Command, prefix: string[]) => {
      for (const sub of cmd.commands) {
        const path = [...prefix, sub.name()];
        if (sub.commands.length === 0) paths.push(path);
        else walk(sub, path);
      }
    };
    walk(program, []);
    assert.ok(paths.length >= 5, `found ${paths.length} commands`);
    for (const p of paths) {
      const h = await cli([...p, '--help']);
      assert.equal(h.code, 0, p.join(' '));
      assert.match(h.stdout, new RegExp(`^Usage: custody ${p.join(' ')} `), `${p.join(' ')} --help is its own help`);
      assert.match(h.stdout, /\nExample:\n {2}custody /, `${p.join(' ')} --help has an example`);
      assert.match(h.stdout, /--json/, `${p.join(' ')} --help lists --json`);
    }
  });

  it('maps bad input to exit 2 with one line and a hint, and no stack trace', async () => {
    const ws = await tempWorkspace();
    const cases: [string[], string][] = [
      [['artifact', 'add', join(ws.dir, 'missing'), '--name', 'a', '--version', '1.0.0'], 'INPUT_NOT_FOUND'],
      [['artifact', 'add', ws.dir, '--name', 'a', '--version', '1.0.0'], 'INPUT_INVALID'],
      [['artifact', 'add', '--digest', 'sha256:nothex', '--name', 'a', '--version', '1.0.0'], 'DIGEST_INVALID'],
      [['artifact', 'add', '--digest', `sha256:${'a'.repeat(64)}`, '--name', '', '--version', '1.0.0'], 'NAME_INVALID'],
      [['artifact', 'add', '--digest', `sha256:${'a'.repeat(64)}`, '--name', 'a', '--version', 'v1'], 'VERSION_INVALID'],
      [['artifact', 'add', '--digest', `sha256:${'a'.repeat(64)}`, '--version', '1.0.0'], 'USAGE'],
      [['artifact', 'nope'], 'USAGE'],
      [['--bogus'], 'USAGE'],
    ];
    for (const [args, code] of cases) {
      const r = await cli([...args, '--home', ws.home]);
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: `), args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --debug');
      const j = await cli([...args, '--home', ws.home, '--json']);
      assert.equal(j.json<{ error: { code: string } }>().error.code, code);
    }
    const debug = await cli(['artifact', 'add', join(ws.dir, 'missing'), '--name', 'a', '--version', '1.0.0', '--home', ws.home, '--debug']);
    assert.match(debug.stderr, /\n\s+at /, '--debug shows the stack');
  });

  it('exits 4 on a conflict and 0 on an idempotent re-add, printing the documented JSON', async () => {
    const ws = await tempWorkspace();
    const a = join(ws.dir, 'a');
    const b = join(ws.dir, 'b');
    await writeFile(a, 'one');
    await writeFile(b, 'two');
    const first = await cli(['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0', '--home', ws.home, '--json']);
    assert.equal(first.code, 0);
    const j = first.json<{ digest: string; name: string; version: string; size: number }>();
    assert.match(j.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(j.name, 'pkg:npm/app');
    assert.equal(j.version, '1.0.0');
    assert.equal(j.size, 3);
    const again = await cli(['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0', '--home', ws.home, '--json']);
    assert.equal(again.code, 0);
    assert.equal(again.json<{ digest: string }>().digest, j.digest);
    const conflict = await cli(['artifact', 'add', b, '--name', 'pkg:npm/app', '--version', '1.0.0', '--home', ws.home, '--json']);
    assert.equal(conflict.code, 4);
    assert.equal(conflict.json<{ error: { code: string } }>().error.code, 'ARTIFACT_CONFLICT');
    const list = await cli(['artifact', 'list', '--home', ws.home, '--json']);
    assert.equal(list.json<{ artifacts: unknown[] }>().artifacts.length, 1);
    const show = await cli(['artifact', 'show', j.digest, '--home', ws.home]);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /pkg:npm\/app@1\.0\.0/);
  });

  it('finds the workspace through --home, then CUSTODY_HOME, then ./.custody', async () => {
    const dir = await tempDir();
    const init = await spawnCli(['init', '--json'], { cwd: dir });
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.json<{ home: string }>().home, join(dir, '.custody'));
    const other = join(dir, 'elsewhere');
    await mkdir(other);
    const viaEnv = await spawnCli(['init', '--json'], { cwd: dir, env: { CUSTODY_HOME: other } });
    assert.equal(viaEnv.json<{ home: string }>().home, other);
    const twice = await spawnCli(['init'], { cwd: dir });
    assert.equal(twice.code, 4);
    assert.match(twice.stderr, /WORKSPACE_EXISTS/);
    const missing = await spawnCli(['artifact', 'list', '--home', join(dir, 'nowhere')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /WORKSPACE_NOT_FOUND/);
  });

  it('refuses a config file that does not match the schema, naming file:line:col', async () => {
    const ws = await tempWorkspace();
    await writeFile(join(ws.home, 'custody.yaml'), 'version: 1\nlog:\n  origin: x\nbogus: true\n');
    const r = await cli(['artifact', 'list', '--home', ws.home]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CONFIG_INVALID.*custody\.yaml:4:1/);
  });

  it('runs the demo end to end', async () => {
    const r = await cli(['demo', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json<{ ok: boolean; steps: { title: string; output: string }[] }>();
    assert.equal(j.ok, true);
    assert.ok(j.steps.length >= 10);
    const out = (title: RegExp) => j.steps.find((s) => title.test(s.title))?.output ?? '';
    // The pipeline the issue describes: prod held for an approval, approved by a second identity, the gate admits it,
    // a revoked key flips it to refusing, and the rollback revalidates the previous version.
    assert.match(out(/^Prod a day later/), /AWAITING-APPROVAL[\s\S]*APPROVAL_REFUSED[\s\S]*→ prod: PROMOTED/);
    assert.match(out(/^The deploy-time gate/), /^  VERIFIED: pkg:npm\/acme-app@1\.4\.2 .* may run in prod \(online/m);
    assert.match(out(/^The deploy-time gate/), /VERIFIED: .* \(offline/);
    assert.match(out(/^The deploy-time gate/), /HEAD_EXPIRED[\s\S]*RECEIPT_NOT_CURRENT/);
    assert.match(out(/^Incident/), /REFUSED: [\s\S]*EVIDENCE_INVALIDATED/);
    assert.match(out(/^Rollback revalidates/), /VERIFIED: pkg:npm\/acme-app@1\.4\.1 .* may run in prod/);
    // The audit: intact with its promotion rows, then a back-dated row and an edited entry each caught.
    assert.match(out(/^Audit: verify/), /log intact: \d+ entries, \d+ checkpoints verified, \d+ promotion rows agree with it/);
    assert.match(out(/^Audit: verify/), /promotion rows TAMPERED \(the log itself verified\): .*promotion-row: the row of pr_\w+ says finished at "2020-01-01T00:00:00\.000Z"/);
    assert.match(out(/^Audit: verify/), /log TAMPERED: first difference at entry \d+: entry-edited/);
  });
});
