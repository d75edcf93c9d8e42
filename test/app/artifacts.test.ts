import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addArtifact, listArtifacts, showArtifact } from '../../src/app/artifacts.ts';
import { rejectsWithCode, tempWorkspace } from '../helpers.ts';
import { createHash } from 'node:crypto';

async function blobNames(home: string): Promise<string[]> {
  return readdir(join(home, 'blobs', 'sha256')).catch(() => []);
}

describe('artifact registry', () => {
  it('registers a file with both digests, stores the blob and logs the addition', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const file = join(ws.dir, 'app.tgz');
    const bytes = Buffer.from('the build output\n');
    await writeFile(file, bytes);
    const { artifact, created } = await addArtifact(ctx, { file, name: 'pkg:npm/app', version: '1.0.0', labels: ['tier=critical'], source: 'https://github.com/acme/app@abcdef1' });
    assert.equal(created, true);
    assert.equal(artifact.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    assert.equal(artifact.digests.sha512, createHash('sha512').update(bytes).digest('hex'));
    assert.equal(artifact.size, bytes.length);
    assert.deepEqual(artifact.labels, { tier: 'critical' });
    assert.deepEqual(artifact.source, { repository: 'https://github.com/acme/app', commit: 'abcdef1' });
    assert.deepEqual(await blobNames(ws.home), [artifact.digest.slice(7)]);
    const shown = await showArtifact(ctx, 'pkg:npm/app@1.0.0');
    assert.equal(shown.artifact.digest, artifact.digest);
    assert.deepEqual(shown.history.map((h) => h.type), ['artifact.added']);
  });

  it('is idempotent for the same bytes, name and version', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const file = join(ws.dir, 'a');
    await writeFile(file, 'same');
    const first = await addArtifact(ctx, { file, name: 'app', version: '1.0.0' });
    const second = await addArtifact(ctx, { file, name: 'app', version: '1.0.0' });
    assert.equal(second.created, false);
    assert.deepEqual(second.artifact, first.artifact);
    assert.equal((await listArtifacts(ctx)).length, 1);
    assert.equal(await ctx.store.read((tx) => tx.log.size()), 1);
    assert.equal((await readdir(join(ws.home, 'blobs', '.tmp'))).length, 0);
  });

  it('refuses the same name and version with another digest, changing nothing but the audit log', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const a = join(ws.dir, 'a');
    const b = join(ws.dir, 'b');
    await writeFile(a, 'first');
    await writeFile(b, 'second');
    const { artifact } = await addArtifact(ctx, { file: a, name: 'app', version: '1.0.0' });
    const err = await rejectsWithCode(() => addArtifact(ctx, { file: b, name: 'app', version: '1.0.0' }), 'ARTIFACT_CONFLICT');
    assert.equal(err.exitCode, 4);
    assert.deepEqual(await listArtifacts(ctx), [artifact]);
    assert.deepEqual(await blobNames(ws.home), [artifact.digest.slice(7)]);
    assert.equal((await readdir(join(ws.home, 'blobs', '.tmp'))).length, 0);
    const refusal = await ctx.store.read((tx) => tx.log.byIndex(1));
    assert.equal(refusal?.type, 'request.refused');
    assert.equal(refusal?.payload['code'], 'ARTIFACT_CONFLICT');
  });

  it('refuses one digest under a second name or version', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const digest = `sha256:${'c'.repeat(64)}`;
    await addArtifact(ctx, { digest, name: 'pkg:oci/app', version: '1.0.0' });
    await rejectsWithCode(() => addArtifact(ctx, { digest, name: 'pkg:oci/app', version: '1.0.1' }), 'ARTIFACT_CONFLICT');
  });

  it('registers by digest without a blob', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const digest = `sha256:${'d'.repeat(64)}`;
    const { artifact } = await addArtifact(ctx, { digest, name: 'pkg:oci/app', version: '2.0.0' });
    assert.equal(artifact.stored, false);
    assert.equal(artifact.size, null);
    assert.deepEqual(await blobNames(ws.home), []);
    await rejectsWithCode(() => addArtifact(ctx, { digest: `sha512:${'d'.repeat(128)}`, name: 'x', version: '1.0.0' }), 'DIGEST_INVALID');
  });

  it('refuses bad input with exact codes, before touching the store', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const file = join(ws.dir, 'f');
    await writeFile(file, 'x');
    await rejectsWithCode(() => addArtifact(ctx, { file: join(ws.dir, 'missing'), name: 'a', version: '1.0.0' }), 'INPUT_NOT_FOUND');
    await mkdir(join(ws.dir, 'adir'));
    await rejectsWithCode(() => addArtifact(ctx, { file: join(ws.dir, 'adir'), name: 'a', version: '1.0.0' }), 'INPUT_INVALID');
    await rejectsWithCode(() => addArtifact(ctx, { file, name: '', version: '1.0.0' }), 'NAME_INVALID');
    await rejectsWithCode(() => addArtifact(ctx, { file, name: 'a', version: 'one' }), 'VERSION_INVALID');
    await rejectsWithCode(() => addArtifact(ctx, { digest: 'sha256:123', name: 'a', version: '1.0.0' }), 'DIGEST_INVALID');
    await rejectsWithCode(() => addArtifact(ctx, { name: 'a', version: '1.0.0' }), 'USAGE');
    await rejectsWithCode(() => addArtifact(ctx, { file, digest: `sha256:${'e'.repeat(64)}`, name: 'a', version: '1.0.0' }), 'USAGE');
    if (process.getuid?.() !== 0) {
      const locked = join(ws.dir, 'locked');
      await writeFile(locked, 'x');
      await chmod(locked, 0o000);
      await rejectsWithCode(() => addArtifact(ctx, { file: locked, name: 'a', version: '1.0.0' }), 'INPUT_UNREADABLE');
    }
    assert.equal((await listArtifacts(ctx)).length, 0);
    assert.equal(await ctx.store.read((tx) => tx.log.size()), 0);
    assert.deepEqual(await blobNames(ws.home), []);
  });

  it('refuses a file over the configured limit with INPUT_TOO_LARGE and leaves no temp file', async () => {
    const ws = await tempWorkspace();
    const cfg = join(ws.home, 'custody.yaml');
    const { readFile } = await import('node:fs/promises');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace('# limits:\n#   artifactBytes: 68719476736   # 64 GiB', 'limits:\n  artifactBytes: 10'));
    const ctx = await ws.open();
    const file = join(ws.dir, 'big');
    await writeFile(file, 'x'.repeat(11));
    await rejectsWithCode(() => addArtifact(ctx, { file, name: 'a', version: '1.0.0' }), 'INPUT_TOO_LARGE');
    assert.deepEqual(await readdir(join(ws.home, 'blobs', '.tmp')).catch(() => []), []);
  });

  it('hashes a multi-chunk file through the worker exactly like node:crypto', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    const file = join(ws.dir, 'big.bin');
    const bytes = Buffer.alloc(37 * 1024 * 1024 + 123);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    await writeFile(file, bytes);
    const seen: number[] = [];
    const { artifact } = await addArtifact(ctx, { file, name: 'big', version: '1.0.0', onProgress: (p) => seen.push(p.bytes) });
    assert.equal(artifact.digests.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(artifact.digests.sha512, createHash('sha512').update(bytes).digest('hex'));
    assert.equal(seen.at(-1), bytes.length);
    const { readFile } = await import('node:fs/promises');
    assert.ok((await readFile(ctx.blobs.pathOf(artifact.digest))).equals(bytes));
  });
});
