import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FsBlobStore } from '../../src/adapters/blob-fs.ts';
import type { ByteStream } from '../../src/core/ports.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';

async function* chunks(data: Buffer, size: number, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) {
    // A network hands chunks over asynchronously; so does this.
    await Promise.resolve();
    if (failAfter !== undefined && off >= failAfter) throw new Error('connection reset');
    yield data.subarray(off, off + size);
  }
}

const stream = (data: Buffer, size = 7001, extra: Partial<ByteStream> = {}): ByteStream => ({ label: 'the upload', chunks: chunks(data, size), expectedBytes: data.length, ...extra });

describe('staging a blob from a stream', () => {
  it('gives the same digests, size and published file as staging the same bytes from a path', async () => {
    const dir = await tempDir();
    const blobs = new FsBlobStore(join(dir, 'blobs'), { maxBytes: 64 * 1024 * 1024 });
    // Big enough to take the worker path for sha512, in odd-sized chunks that straddle slots.
    const data = randomBytes(9 * 1024 * 1024 + 123);
    await writeFile(join(dir, 'f'), data);
    const fromFile = await blobs.stage(join(dir, 'f'));
    const fromStream = await blobs.stage(stream(data, 65_537));
    assert.equal(fromStream.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(fromStream.sha512, createHash('sha512').update(data).digest('hex'));
    assert.deepEqual([fromStream.sha256, fromStream.sha512, fromStream.size], [fromFile.sha256, fromFile.sha512, fromFile.size]);
    await fromStream.publish();
    await fromStream.finish();
    await fromFile.discard();
    assert.equal(await blobs.has(`sha256:${fromStream.sha256}`), true);
    assert.deepEqual(await readdir(join(dir, 'blobs', '.tmp')), []);
  });

  it('stages an empty upload and one of unknown length', async () => {
    const blobs = new FsBlobStore(join(await tempDir(), 'blobs'), { maxBytes: 1024 });
    const empty = await blobs.stage(stream(Buffer.alloc(0)));
    assert.equal(empty.size, 0);
    const unknown = await blobs.stage({ label: 'the upload', chunks: chunks(Buffer.from('abc'), 1) });
    assert.equal(unknown.sha256, createHash('sha256').update('abc').digest('hex'));
    await empty.discard();
    await unknown.discard();
  });

  it('refuses over the limit, announced or not, and leaves no temporary file', async () => {
    const dir = await tempDir();
    const blobs = new FsBlobStore(join(dir, 'blobs'), { maxBytes: 1000 });
    const data = randomBytes(5000);
    await rejectsWithCode(() => blobs.stage(stream(data)), 'INPUT_TOO_LARGE');
    await rejectsWithCode(() => blobs.stage({ label: 'the upload', chunks: chunks(data, 300) }), 'INPUT_TOO_LARGE');
    assert.deepEqual(await readdir(join(dir, 'blobs', '.tmp')), []);
  });

  it('discards an interrupted upload and one shorter than it announced', async () => {
    const dir = await tempDir();
    const blobs = new FsBlobStore(join(dir, 'blobs'), { maxBytes: 1024 * 1024 });
    const data = randomBytes(100_000);
    await rejectsWithCode(() => blobs.stage({ label: 'the upload', chunks: chunks(data, 10_000, 50_000), expectedBytes: data.length }), 'INPUT_UNREADABLE');
    await rejectsWithCode(() => blobs.stage(stream(data, 10_000, { expectedBytes: data.length + 1 })), 'INPUT_INVALID');
    assert.deepEqual(await readdir(join(dir, 'blobs', '.tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256')).catch(() => []), []);
  });
});
