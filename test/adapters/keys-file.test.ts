import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decryptKeyFile, encryptPrivateKey, FileKeyStore, forgetUnlockedKeys, generateKeyPair, KEY_FILE_MAX_BYTES, type KekSource } from '../../src/adapters/keys-file.ts';
import { keyidOf, verifyBytes } from '../../src/core/crypto.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';

async function kekFile(dir: string, bytes: Buffer = randomBytes(32)): Promise<string> {
  const path = join(dir, `kek-${randomBytes(4).toString('hex')}`);
  await writeFile(path, bytes, { mode: 0o600 });
  return path;
}

async function setup(kek?: KekSource) {
  const dir = await tempDir();
  const home = join(dir, 'home');
  await mkdir(join(home, 'keys'), { recursive: true });
  const source = kek ?? { kekFile: await kekFile(dir) };
  const store = new FileKeyStore(home, source);
  return { dir, home, store, source };
}

async function created(store: FileKeyStore, algorithm: 'ed25519' | 'ecdsa-p256-sha256' = 'ed25519') {
  const { privateKey, publicKey } = generateKeyPair(algorithm);
  const staged = await store.stage(privateKey, algorithm);
  await staged.publish();
  await staged.finish();
  return { ...staged, privateKey, publicKey, path: join(store.dir, `${staged.keyid}.key`) };
}

describe('file key backend', () => {
  it('writes one 0600 file per key that decrypts, under a KEK file or a passphrase, to a signer', async () => {
    for (const kind of ['kek-file', 'passphrase'] as const) {
      const dir = await tempDir();
      const { store } = await setup(kind === 'kek-file' ? { kekFile: await kekFile(dir) } : { passphrase: 'correct horse battery staple' });
      const k = await created(store, 'ecdsa-p256-sha256');
      assert.equal(k.keyid, keyidOf(k.publicKey));
      assert.equal((await stat(k.path)).mode & 0o777, 0o600);
      const file = JSON.parse(await readFile(k.path, 'utf8')) as { kdf: { kind: string; N?: number }; keyid: string };
      assert.equal(file.keyid, k.keyid);
      assert.equal(file.kdf.kind, kind === 'kek-file' ? 'kek-file' : 'scrypt');
      if (kind === 'passphrase') assert.equal(file.kdf.N, 2 ** 17);
      forgetUnlockedKeys();
      const signer = await store.signer(k.keyid, 'ecdsa-p256-sha256', k.ref, 'test@1');
      const sig = await signer.sign(Buffer.from('hello'));
      assert.ok(verifyBytes('ecdsa-p256-sha256', k.publicKey, Buffer.from('hello'), sig));
      assert.deepEqual(JSON.parse(JSON.stringify(signer)), { keyid: k.keyid, algorithm: 'ecdsa-p256-sha256' });
      assert.deepEqual(await readdir(join(store.dir, '.tmp')), []);
      assert.deepEqual(await readdir(join(store.dir, '.pending')), []);
    }
  });

  it('decrypts once per process: later loads use the cached key, not the KEK', async () => {
    const { home, store } = await setup({ passphrase: 'right' });
    const k = await created(store);
    forgetUnlockedKeys();
    await store.signer(k.keyid, 'ed25519', k.ref, 'k@1');
    const wrong = new FileKeyStore(home, { passphrase: 'wrong' });
    const again = await wrong.signer(k.keyid, 'ed25519', k.ref, 'k@1');
    assert.ok(verifyBytes('ed25519', k.publicKey, Buffer.from('x'), await again.sign(Buffer.from('x'))));
    forgetUnlockedKeys();
    await rejectsWithCode(() => wrong.signer(k.keyid, 'ed25519', k.ref, 'k@1'), 'KEY_DECRYPT_FAILED');
  });

  it('refuses a wrong passphrase or KEK file with KEY_DECRYPT_FAILED', async () => {
    const { home, store, dir } = await setup({ passphrase: 'right' });
    const k = await created(store);
    forgetUnlockedKeys();
    await rejectsWithCode(() => new FileKeyStore(home, { passphrase: 'Right' }).signer(k.keyid, 'ed25519', k.ref, 'k@1'), 'KEY_DECRYPT_FAILED');
    const viaFile = await setup();
    const f = await created(viaFile.store);
    forgetUnlockedKeys();
    const other = await kekFile(dir);
    await rejectsWithCode(() => new FileKeyStore(viaFile.home, { kekFile: other }).signer(f.keyid, 'ed25519', f.ref, 'k@1'), 'KEY_DECRYPT_FAILED');
  });

  it('needs the kind of KEK the file was written under, and never writes without one', async () => {
    const { home, store, dir } = await setup({ passphrase: 'right' });
    const k = await created(store);
    forgetUnlockedKeys();
    await rejectsWithCode(() => new FileKeyStore(home, { kekFile: join(dir, 'nope') }).signer(k.keyid, 'ed25519', k.ref, 'k@1'), 'KEK_MISSING');
    await rejectsWithCode(() => new FileKeyStore(home, {}).signer(k.keyid, 'ed25519', k.ref, 'k@1'), 'KEK_MISSING');
    await rejectsWithCode(() => new FileKeyStore(home, { passphrase: '' }).checkKek(), 'KEK_MISSING');
    const { privateKey } = generateKeyPair('ed25519');
    await rejectsWithCode(() => new FileKeyStore(home, {}).stage(privateKey, 'ed25519'), 'KEK_MISSING');
  });

  it('reads exactly 32 raw bytes from CUSTODY_KEK_FILE and refuses anything else', async () => {
    const dir = await tempDir();
    for (const bytes of [randomBytes(31), randomBytes(33), Buffer.from(`${randomBytes(32).toString('hex')}\n`), Buffer.alloc(0)]) {
      const path = await kekFile(dir, bytes);
      await rejectsWithCode(() => new FileKeyStore(dir, { kekFile: path }).checkKek(), 'KEK_INVALID');
    }
    await rejectsWithCode(() => new FileKeyStore(dir, { kekFile: dir }).checkKek(), 'KEK_INVALID');
    // Secret mounts are often symlinks: the KEK path is the operator's, so it is followed.
    const real = await kekFile(dir);
    await symlink(real, join(dir, 'kek-link'));
    await new FileKeyStore(dir, { kekFile: join(dir, 'kek-link') }).checkKek();
    await rejectsWithCode(() => new FileKeyStore(dir, { kekFile: join(dir, 'missing') }).checkKek(), 'KEK_INVALID');
  });

  it('binds each file to its keyid: a swapped or re-labelled file does not decrypt', async () => {
    const { store } = await setup();
    const a = await created(store);
    const b = await created(store);
    const aText = await readFile(a.path, 'utf8');
    const bText = await readFile(b.path, 'utf8');
    forgetUnlockedKeys();
    // A's file copied over B's: it says it is A.
    await writeFile(b.path, aText);
    await rejectsWithCode(() => store.signer(b.keyid, 'ed25519', b.ref, 'b@1'), 'KEY_ID_MISMATCH');
    // A's file relabelled as B: the header is authenticated, so the tag fails.
    await writeFile(b.path, aText.replace(a.keyid, b.keyid));
    await rejectsWithCode(() => store.signer(b.keyid, 'ed25519', b.ref, 'b@1'), 'KEY_DECRYPT_FAILED');
    // The algorithm is authenticated too.
    await writeFile(b.path, bText.replace('"ed25519"', '"ecdsa-p256-sha256"'));
    await rejectsWithCode(() => store.signer(b.keyid, 'ed25519', b.ref, 'b@1'), 'KEY_DECRYPT_FAILED');
    await writeFile(b.path, bText);
    await store.signer(b.keyid, 'ed25519', b.ref, 'b@1');
  });

  it('refuses corrupted files with KEY_DECRYPT_FAILED and never allocates what a file asks for', async () => {
    const { store } = await setup();
    const k = await created(store);
    const text = await readFile(k.path, 'utf8');
    const file = JSON.parse(text) as Record<string, unknown>;
    const ct = Buffer.from(file['ciphertext'] as string, 'base64');
    ct[5] = ct[5]! ^ 0x01;
    const variants = [
      JSON.stringify({ ...file, ciphertext: ct.toString('base64') }),
      JSON.stringify({ ...file, tag: randomBytes(16).toString('base64') }),
      JSON.stringify({ ...file, iv: randomBytes(12).toString('base64') }),
      JSON.stringify({ ...file, kdf: { kind: 'scrypt', salt: 'AAAA', N: 2 ** 30, r: 8, p: 1 } }),
      JSON.stringify({ ...file, extra: true }),
      JSON.stringify({ ...file, format: 'something-else' }),
      text.slice(0, text.length / 2),
      '',
      'not json at all',
      ' '.repeat(KEY_FILE_MAX_BYTES + 1),
    ];
    for (const v of variants) {
      forgetUnlockedKeys();
      await writeFile(k.path, v);
      await rejectsWithCode(() => store.signer(k.keyid, 'ed25519', k.ref, 'k@1'), 'KEY_DECRYPT_FAILED');
    }
  });

  it('derives the file path from the keyid, refusing a reference that points elsewhere, a symlink or a missing file', async () => {
    const { store, dir } = await setup();
    const k = await created(store);
    forgetUnlockedKeys();
    await rejectsWithCode(() => store.signer(k.keyid, 'ed25519', { backend: 'file', path: '../../outside.key' }, 'k@1'), 'KEY_INVALID');
    const target = join(dir, 'elsewhere.key');
    await writeFile(target, await readFile(k.path));
    const other = await created(store);
    await unlink(other.path);
    forgetUnlockedKeys();
    await rejectsWithCode(() => store.signer(other.keyid, 'ed25519', other.ref, 'o@1'), 'KEY_NOT_FOUND');
    await symlink(target, other.path);
    await rejectsWithCode(() => store.signer(other.keyid, 'ed25519', other.ref, 'o@1'), 'INPUT_INVALID');
  });

  it('discards a staged or published file, and recovery removes one whose process died before commit', async () => {
    const { store } = await setup();
    const { privateKey } = generateKeyPair('ed25519');
    const staged = await store.stage(privateKey, 'ed25519');
    await staged.publish();
    await staged.discard();
    await staged.discard();
    assert.deepEqual((await readdir(store.dir)).filter((n) => n.endsWith('.key')), []);
    assert.deepEqual(await readdir(join(store.dir, '.tmp')), []);
    // As a killed process leaves it: a published file and its marker, pid long gone.
    const orphan = await store.stage(privateKey, 'ed25519');
    await orphan.publish();
    const markers = await readdir(join(store.dir, '.pending'));
    assert.equal(markers.length, 1);
    await rename(join(store.dir, '.pending', markers[0]!), join(store.dir, '.pending', `0-${orphan.keyid}`));
    await writeFile(join(store.dir, '.tmp', '0-leftover'), 'x');
    const kept = await created(store);
    const r = await store.recover((keyid) => Promise.resolve(keyid === kept.keyid));
    assert.equal(r.removed, 2);
    assert.deepEqual((await readdir(store.dir)).filter((n) => n.endsWith('.key')), [`${kept.keyid}.key`]);
  });

  it('never overwrites another key file', async () => {
    const { store } = await setup();
    const { privateKey } = generateKeyPair('ed25519');
    const first = await store.stage(privateKey, 'ed25519');
    await first.publish();
    const second = await store.stage(privateKey, 'ed25519');
    await rejectsWithCode(() => second.publish(), 'KEY_EXISTS');
    await second.discard();
    assert.ok((await stat(join(store.dir, `${first.keyid}.key`))).isFile());
  });

  it('round-trips through encrypt/decrypt without the store', async () => {
    const dir = await tempDir();
    const src = { kekFile: await kekFile(dir) };
    const { privateKey, publicKey } = generateKeyPair('rsa-pss-3072-sha256');
    const { keyid, file } = await encryptPrivateKey(privateKey, 'rsa-pss-3072-sha256', src);
    const back = await decryptKeyFile(file, keyid, src);
    assert.equal(keyidOf(publicKey), keyid);
    assert.deepEqual(back.export({ type: 'pkcs8', format: 'der' }), privateKey.export({ type: 'pkcs8', format: 'der' }));
  });
});
