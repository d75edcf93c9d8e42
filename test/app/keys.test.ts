import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createKey, listKeys, loadSigner, showKey, trustedKeys } from '../../src/app/keys.ts';
import { parsePublicKeyPem, verifyBytes } from '../../src/core/crypto.ts';
import { rejectsWithCode, tempDir, tempWorkspace } from '../helpers.ts';

before(async () => {
  const dir = await tempDir();
  const kek = join(dir, 'kek');
  await writeFile(kek, randomBytes(32), { mode: 0o600 });
  process.env['CUSTODY_KEK_FILE'] = kek;
  delete process.env['CUSTODY_KEY_PASSPHRASE'];
});

describe('loadSigner', () => {
  it('signs with a created key, and the signature verifies against the recorded public key', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    for (const alg of ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as const) {
      const created = await createKey(ctx, { name: `k-${alg}`, algorithm: alg, purposes: ['attest'] });
      const { key, signer } = await loadSigner(ctx, `k-${alg}`, 'attest');
      assert.equal(key.keyid, created.keyid);
      assert.equal(signer.keyid, created.keyid);
      assert.equal(signer.algorithm, alg);
      const data = Buffer.from(`payload for ${alg}`);
      const sig = await signer.sign(data);
      assert.ok(verifyBytes(key.algorithm, parsePublicKeyPem(key.publicKeyPem), data, sig));
      const trusted = await ctx.store.read((tx) => trustedKeys(tx));
      assert.equal(trusted.byKeyid.get(created.keyid)?.name, `k-${alg}`);
    }
    assert.equal((await listKeys(ctx)).length, 3);
    const shown = await showKey(ctx, 'k-ed25519@1');
    assert.deepEqual(shown.history.map((h) => h.type), ['key.created']);
  });

  it('refuses an unknown name and a purpose the key lacks', async () => {
    const ws = await tempWorkspace();
    const ctx = await ws.open();
    await rejectsWithCode(() => loadSigner(ctx, 'nope', 'attest'), 'KEY_NOT_FOUND');
    await createKey(ctx, { name: 'ci', purposes: ['attest'] });
    await rejectsWithCode(() => loadSigner(ctx, 'ci', 'policy'), 'KEY_NOT_USABLE');
  });
});
