/** The automatic checkpoint path with real keys: `key create log --purpose log-checkpoint`, then every committing command signs. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { before, describe, it } from 'node:test';
import { openWorkspace } from '../../src/app/workspace.ts';
import { cli, spawnCli, tempWorkspace, useFreshKek } from '../helpers.ts';

let kekPath: string;

before(async () => {
  // In-process runs read the KEK from this process's environment, as the CLI does.
  kekPath = await useFreshKek();
});

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describe('checkpoints signed by the workspace log key', () => {
  it('signs after each committing command, across a key rotation, and the evidence verifies with both key versions', async () => {
    const ws = await tempWorkspace();
    const h = ['--home', ws.home];
    const created = await cli(['key', 'create', 'log', '--purpose', 'log-checkpoint', ...h]);
    assert.equal(created.code, 0, created.stderr);
    assert.doesNotMatch(created.stderr, /wait for a signed checkpoint/);
    const cp1 = (await cli(['audit', 'checkpoint', ...h, '--json'])).json<{ size: number; seq: number }>();
    assert.equal(cp1.size, 1, 'the key.created entry is covered by the checkpoint its own command signed');

    for (let i = 0; i < 3; i++) {
      const r = await cli(['artifact', 'add', '--digest', digest(i), '--name', 'app', '--version', `1.0.${i}`, ...h]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
    }
    assert.equal((await cli(['audit', 'checkpoint', ...h, '--json'])).json<{ size: number }>().size, 4);

    const forced = await cli(['audit', 'checkpoint', '--sign', ...h, '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.json<{ size: number; seq: number }>().size, 4);

    const rotated = await cli(['key', 'rotate', 'log', ...h]);
    assert.equal(rotated.code, 0, rotated.stderr);
    await cli(['artifact', 'add', '--digest', digest(9), '--name', 'app', '--version', '2.0.0', ...h]);
    const latest = (await cli(['audit', 'checkpoint', ...h, '--json'])).json<{ size: number; keyid: string }>();
    const v2 = (await cli(['key', 'show', 'log@2', ...h, '--json'])).json<{ key: { keyid: string } }>();
    assert.equal(latest.keyid, v2.key.keyid, 'the new version signs from now on');

    const verify = await cli(['audit', 'verify', ...h, '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    assert.equal(verify.json<{ verifiedSize: number; entries: number }>().verifiedSize, latest.size);
    assert.equal(verify.json<{ entries: number }>().entries, latest.size);

    const keys: string[] = [];
    for (const v of [1, 2]) {
      const pub = await cli(['key', 'export-public', `log@${v}`, ...h]);
      assert.equal(pub.code, 0, pub.stderr);
      const f = join(ws.dir, `log-${v}.pub`);
      await writeFile(f, pub.stdout);
      keys.push(f);
    }
    // pinned to both versions, the workspace's log verifies; pinned to the first only, the newest checkpoint does not
    assert.equal((await cli(['audit', 'verify', '--log-key', keys[0]!, '--log-key', keys[1]!, ...h])).code, 0);
    assert.equal((await cli(['audit', 'verify', '--log-key', keys[0]!, ...h])).code, 1);

    const out = join(ws.dir, 'evidence.tar');
    assert.equal((await cli(['audit', 'export', '--out', out, ...h])).code, 0);
    const offline = await cli(['audit', 'verify', '--evidence', out, '--log-key', keys[0]!, '--log-key', keys[1]!, '--json']);
    assert.equal(offline.code, 0, offline.stdout);
  });

  it('refuses to sign a checkpoint over a rewritten history, and records the refusal', async () => {
    const ws = await tempWorkspace();
    const h = ['--home', ws.home];
    assert.equal((await cli(['key', 'create', 'log', '--purpose', 'log-checkpoint', ...h])).code, 0);
    for (let i = 0; i < 3; i++) await cli(['artifact', 'add', '--digest', digest(i), '--name', 'app', '--version', `1.0.${i}`, ...h]);
    const db = new DatabaseSync(join(ws.home, 'custody.db'));
    // Row 3 holds the subtree hashes of [2, 4) and [0, 4): the root the latest checkpoint signed.
    db.prepare('UPDATE log_entries SET nodes = ? WHERE idx = 3').run(Buffer.alloc(64, 1));
    db.close();
    const r = await cli(['audit', 'checkpoint', '--sign', ...h]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error\[LOG_TAMPERED\]/);
    const last = (await cli(['audit', 'verify', ...h, '--json'])).json<{ ok: boolean; finding: { kind: string } }>();
    assert.equal(last.ok, false);
    const ctx = await openWorkspace(ws.home);
    try {
      const size = await ctx.store.read((tx) => tx.log.size());
      const entry = await ctx.store.read((tx) => tx.log.byIndex(size - 1));
      assert.deepEqual([entry?.type, entry?.payload['action'], entry?.payload['code']], ['request.refused', 'audit.checkpoint', 'LOG_TAMPERED']);
    } finally {
      await ctx.close();
    }
  });

  it('without the KEK the command still succeeds, and says the entries wait', async () => {
    const ws = await tempWorkspace();
    const h = ['--home', ws.home];
    assert.equal((await cli(['key', 'create', 'log', '--purpose', 'log-checkpoint', ...h])).code, 0);
    // A new process without the KEK (this one has the key decrypted already).
    const r = await spawnCli(['artifact', 'add', '--digest', digest(1), '--name', 'app', '--version', '1.0.0', ...h]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^note: new log entries wait for a signed checkpoint: /);
    const json = await cli(['audit', 'verify', ...h, '--json']);
    assert.equal(json.code, 1);
    const f = json.json<{ finding: { index: number; kind: string } }>().finding;
    assert.deepEqual([f.index, f.kind], [1, 'uncovered']);
    // the next committing command that can use the key covers them
    const next = await spawnCli(['artifact', 'add', '--digest', digest(2), '--name', 'app', '--version', '2.0.0', ...h], { env: { CUSTODY_KEK_FILE: kekPath } });
    assert.equal(next.stderr, '');
    assert.equal((await cli(['audit', 'verify', ...h])).code, 0);
  });
});
