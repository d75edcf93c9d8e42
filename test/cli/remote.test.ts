/**
 * The same CLI scenarios in local mode (--home) and remote mode (--server with
 * CUSTODY_TOKEN), asserting identical stdout, stderr and exit codes, in human
 * and --json output. Only timestamps differ between the two runs.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createToken } from '../../src/app/tokens.ts';
import { ROLES } from '../../src/core/identity.ts';
import { startServer } from '../../src/server/listen.ts';
import { cli, tempDir, tempWorkspace, type CliResult } from '../helpers.ts';

const TESTER = 'tester@example.com';
const NOBODY = 'nobody@example.com';

const norm = (s: string) => s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>');

describe('local and remote mode give the same output and exit codes', async () => {
  const local = await tempWorkspace(TESTER);
  const remote = await tempWorkspace(TESTER);
  // The same history in both workspaces, so log indexes in `artifact show` line up.
  const tokens: Record<string, string> = {};
  for (const ws of [local, remote]) {
    const ctx = await ws.open();
    const tester = await createToken(ctx, { identity: TESTER, roles: [...ROLES] });
    const nobody = await createToken(ctx, { identity: NOBODY, roles: [] });
    if (ws === remote) {
      tokens[TESTER] = tester.token;
      tokens[NOBODY] = nobody.token;
    }
    await ctx.close();
  }
  const server = await startServer({ home: remote.home, listen: '127.0.0.1:0', log: () => undefined });
  after(() => server.close());

  const dir = await tempDir();
  const a = join(dir, 'app-1.0.0.tgz');
  const b = join(dir, 'other.tgz');
  const c = join(dir, 'app-1.1.0.tgz');
  await writeFile(a, 'console.log("app 1.0.0")\n');
  await writeFile(b, 'something else\n');
  await writeFile(c, 'console.log("app 1.1.0")\n');
  await mkdir(join(dir, 'adir'));
  await writeFile(join(dir, 'empty'), '');
  const digestA = 'sha256:1f8a0c4f0e4c2b6bfa6a9c2a8f6c5e0d5a8c7a3f2b1e0d9c8b7a6f5e4d3c2b1a';

  const scenarios: { name: string; args: string[]; as?: string; code: number }[] = [
    { name: 'add a file', args: ['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0', '--label', 'tier=critical', '--source', 'https://github.com/acme/app@abcdef1'], code: 0 },
    { name: 'add it again (idempotent)', args: ['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0'], code: 0 },
    { name: 'other bytes under the same version', args: ['artifact', 'add', b, '--name', 'pkg:npm/app', '--version', '1.0.0'], code: 4 },
    { name: 'add by digest', args: ['artifact', 'add', '--digest', `sha256:${'c'.repeat(64)}`, '--name', 'pkg:oci/app', '--version', '2.0.0'], code: 0 },
    { name: 'malformed digest', args: ['artifact', 'add', '--digest', 'sha256:nothex', '--name', 'x', '--version', '1.0.0'], code: 2 },
    { name: 'empty name', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', '', '--version', '1.0.0'], code: 2 },
    { name: 'bad version', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', 'a', '--version', 'v1'], code: 2 },
    { name: 'bad label', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', 'a', '--version', '1.0.0', '--label', 'BAD KEY=x'], code: 2 },
    { name: 'missing file', args: ['artifact', 'add', join(dir, 'missing'), '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'a directory', args: ['artifact', 'add', join(dir, 'adir'), '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'file and digest', args: ['artifact', 'add', a, '--digest', digestA, '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'an empty file', args: ['artifact', 'add', join(dir, 'empty'), '--name', 'pkg:generic/empty', '--version', '0.0.1'], code: 0 },
    { name: 'list', args: ['artifact', 'list'], code: 0 },
    { name: 'list by label', args: ['artifact', 'list', '--label', 'tier=critical'], code: 0 },
    { name: 'list by name', args: ['artifact', 'list', '--name', 'pkg:oci/app', '--limit', '5'], code: 0 },
    { name: 'show by name@version', args: ['artifact', 'show', 'pkg:npm/app@1.0.0'], code: 0 },
    { name: 'show by name alone', args: ['artifact', 'show', 'pkg:npm/app'], code: 0 },
    { name: 'show by digest', args: ['artifact', 'show', `sha256:${'c'.repeat(64)}`], code: 0 },
    { name: 'show a missing artifact', args: ['artifact', 'show', 'pkg:npm/nothing@1.0.0'], code: 2 },
    { name: 'add without the builder role', args: ['artifact', 'add', c, '--name', 'pkg:npm/app', '--version', '1.1.0'], as: NOBODY, code: 2 },
    { name: 'list without any role', args: ['artifact', 'list', '--name', 'pkg:npm/app'], as: NOBODY, code: 0 },
    { name: 'whoami', args: ['whoami'], code: 0 },
    { name: 'whoami without roles', args: ['whoami'], as: NOBODY, code: 0 },
    { name: 'token create without key-admin', args: ['token', 'create', '--identity', 'x@example.com'], as: NOBODY, code: 2 },
    { name: 'revoke an unknown token', args: ['token', 'revoke', 'ffffffffffffffff'], code: 2 },
  ];

  async function runLocal(args: string[], as: string | undefined): Promise<CliResult> {
    return cli([...args, '--home', local.home, ...(as ? ['--as', as] : [])]);
  }

  async function runRemote(args: string[], as: string | undefined): Promise<CliResult> {
    const saved = process.env['CUSTODY_TOKEN'];
    process.env['CUSTODY_TOKEN'] = tokens[as ?? TESTER];
    try {
      return await cli([...args, '--server', server.url]);
    } finally {
      if (saved === undefined) delete process.env['CUSTODY_TOKEN'];
      else process.env['CUSTODY_TOKEN'] = saved;
    }
  }

  for (const s of scenarios) {
    it(s.name, async () => {
      for (const json of [false, true]) {
        const args = json ? [...s.args, '--json'] : s.args;
        const l = await runLocal(args, s.as);
        const r = await runRemote(args, s.as);
        assert.equal(l.code, s.code, `local ${args.join(' ')}: ${l.stderr}`);
        assert.equal(r.code, l.code, `remote exit code (${r.stderr})`);
        assert.equal(norm(r.stdout), norm(l.stdout), 'stdout');
        assert.equal(norm(r.stderr), norm(l.stderr), 'stderr');
      }
    });
  }

  it('ran the remote half through the server (not the local workspace)', async () => {
    const r = await runRemote(['whoami', '--json'], undefined);
    assert.equal(r.json<{ identity: string }>().identity, TESTER);
    const l = await cli(['artifact', 'list', '--home', remote.home, '--json']);
    assert.ok(l.json<{ artifacts: unknown[] }>().artifacts.length >= 2);
  });
});

describe('remote mode refuses what it must', () => {
  it('never sends a token over plain HTTP beyond loopback, nor with --as', async () => {
    const r = await cli(['whoami', '--server', 'http://custody.example.com']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /USAGE.*plain HTTP/);
    const as = await cli(['whoami', '--server', 'http://127.0.0.1:9', '--as', 'someone@example.com']);
    assert.equal(as.code, 2);
    assert.match(as.stderr, /--as works in local mode only/);
    const creds = await cli(['whoami', '--server', 'https://user:pw@custody.example.com']);
    assert.match(creds.stderr, /must not carry credentials/);
  });

  it('reports an unreachable server with exit 5', async () => {
    const r = await cli(['artifact', 'list', '--server', 'http://127.0.0.1:9']);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /^error\[SERVER_UNREACHABLE\]/);
  });

  it('keeps local-only commands local', async () => {
    const r = await cli(['init', '--server', 'http://127.0.0.1:9']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /works on a local workspace only/);
  });
});
