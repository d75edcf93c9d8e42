import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listArtifacts } from '../../src/app/artifacts.ts';
import { BIN, spawnCli, tempWorkspace } from '../helpers.ts';

async function ls(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

describe('crash safety of artifact add', () => {
  for (const point of ['blob.stage.before-sync', 'artifact.add.before-commit']) {
    it(`leaves no row and no blob when killed at ${point}`, async () => {
      const ws = await tempWorkspace();
      const file = join(ws.dir, 'a.bin');
      await writeFile(file, Buffer.alloc(64 * 1024, 7));
      const r = await spawnCli(['artifact', 'add', file, '--name', 'app', '--version', '1.0.0', '--home', ws.home], { env: { CUSTODY_FAILPOINT: point } });
      assert.equal(r.signal, 'SIGKILL');
      // Opening the workspace again recovers: the dead process's leftovers go.
      const ctx = await ws.open();
      assert.deepEqual(await listArtifacts(ctx), []);
      assert.equal(await ctx.store.read((tx) => tx.log.size()), 0);
      assert.deepEqual(await ls(join(ws.home, 'blobs', 'sha256')), []);
      assert.deepEqual(await ls(join(ws.home, 'blobs', '.tmp')), []);
      assert.deepEqual(await ls(join(ws.home, 'blobs', '.pending')), []);
    });
  }

  it('keeps the artifact and its blob when killed right after commit', async () => {
    const ws = await tempWorkspace();
    const file = join(ws.dir, 'a.bin');
    await writeFile(file, 'committed');
    const r = await spawnCli(['artifact', 'add', file, '--name', 'app', '--version', '1.0.0', '--home', ws.home], { env: { CUSTODY_FAILPOINT: 'artifact.add.after-commit' } });
    assert.equal(r.signal, 'SIGKILL');
    const ctx = await ws.open();
    const [a] = await listArtifacts(ctx);
    assert.ok(a);
    assert.equal(await ctx.blobs.has(a.digest), true);
    assert.deepEqual(await ls(join(ws.home, 'blobs', '.pending')), []);
  });

  it('leaves nothing when killed by a signal in the middle of hashing a large file', async () => {
    const ws = await tempWorkspace();
    const file = join(ws.dir, 'big.bin');
    // Sparse: cheap to create, and still 512 MiB to read, hash and copy.
    const fh = await open(file, 'w');
    await fh.truncate(512 * 1024 * 1024);
    await fh.close();
    const child = spawn(BIN, ['artifact', 'add', file, '--name', 'big', '--version', '1.0.0', '--home', ws.home], { stdio: 'ignore' });
    // Wait until the temporary blob exists, then kill: the add is mid-copy.
    const tmp = join(ws.home, 'blobs', '.tmp');
    for (let i = 0; i < 400 && (await ls(tmp)).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok((await ls(tmp)).length > 0, 'the add started writing its temporary blob');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const ctx = await ws.open();
    assert.deepEqual(await listArtifacts(ctx), []);
    assert.deepEqual(await ls(tmp), []);
    assert.deepEqual(await ls(join(ws.home, 'blobs', 'sha256')), []);
  });
});
