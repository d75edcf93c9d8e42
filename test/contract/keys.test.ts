/** The key repository's contract, on every store. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { PrivateKeyRef } from '../../src/core/ports.ts';
import { rejectsWithCode } from '../helpers.ts';
import { keyRecord } from './samples.ts';
import { forEachStore } from './stores.ts';

const fileRef: PrivateKeyRef = { backend: 'file', path: 'keys/release-1.key' };
const hsmRef: PrivateKeyRef = { backend: 'pkcs11', module: 'libsofthsm2.so', slot: 0, tokenLabel: 'custody', objectId: '0a0b', pinEnv: 'CUSTODY_HSM_PIN' };

forEachStore((h) => {
  it('round-trips a key record and where its private half lives', async () => {
    const { store } = await h.fresh();
    const file = keyRecord('release', 1);
    const hsm = keyRecord('checkpoint', 1, { algorithm: 'ecdsa-p256-sha256', backend: 'pkcs11', purposes: ['log-checkpoint'] });
    const external = keyRecord('vendor', 1, { backend: 'external', notAfter: '2030-01-01T00:00:00.000Z' });
    await store.transaction(async (tx) => {
      await tx.keys.insert(file, fileRef);
      await tx.keys.insert(hsm, hsmRef);
      await tx.keys.insert(external, null);
    });
    await store.read(async (tx) => {
      assert.deepEqual(await tx.keys.byKeyid(file.keyid), file);
      assert.deepEqual(await tx.keys.byKeyid(hsm.keyid), hsm);
      assert.deepEqual(await tx.keys.privateRef(file.keyid), fileRef);
      assert.deepEqual(await tx.keys.privateRef(hsm.keyid), hsmRef);
      assert.equal(await tx.keys.privateRef(external.keyid), null);
      assert.equal(await tx.keys.privateRef('0'.repeat(64)), null);
      assert.equal(await tx.keys.byKeyid('0'.repeat(64)), undefined);
    });
  });

  it('lists versions oldest first by number, and all keys by name then version', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      // 10 after 9: versions order as numbers, not text.
      for (const v of [10, 2, 9, 1]) await tx.keys.insert(keyRecord('release', v), null);
      await tx.keys.insert(keyRecord('attest', 1), null);
    });
    await store.read(async (tx) => {
      assert.deepEqual((await tx.keys.versionsOf('release')).map((k) => k.version), [1, 2, 9, 10]);
      assert.deepEqual((await tx.keys.list()).map((k) => `${k.name}@${k.version}`), ['attest@1', 'release@1', 'release@2', 'release@9', 'release@10']);
      assert.deepEqual(await tx.keys.versionsOf('nothing'), []);
    });
  });

  it('updates the record in place and leaves the private reference alone', async () => {
    const { store } = await h.fresh();
    const key = keyRecord('release', 1);
    await store.transaction((tx) => tx.keys.insert(key, fileRef));
    const revoked = { ...key, status: 'revoked' as const, revokedAt: '2025-02-01T00:00:00.000Z', revocationReason: 'compromised', compromisedSince: '2025-01-15T00:00:00.000Z' };
    await store.transaction((tx) => tx.keys.update(revoked));
    await store.read(async (tx) => {
      assert.deepEqual(await tx.keys.byKeyid(key.keyid), revoked);
      assert.deepEqual(await tx.keys.privateRef(key.keyid), fileRef);
    });
    // Updating a key that does not exist changes nothing.
    await store.transaction((tx) => tx.keys.update(keyRecord('ghost', 1)));
    assert.equal((await store.read((tx) => tx.keys.list())).length, 1);
  });

  it('refuses a second key with the same keyid, or the same name and version', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.keys.insert(keyRecord('release', 1), null));
    // The repository names the clash itself, so use cases never see a raw constraint error.
    const sameId = await rejectsWithCode(() => store.transaction((tx) => tx.keys.insert(keyRecord('release', 1, { name: 'other' }), null)), 'KEY_EXISTS');
    assert.match(sameId.message, /clashes with the recorded key release@1/);
    await rejectsWithCode(() => store.transaction((tx) => tx.keys.insert(keyRecord('release', 1, { keyid: 'f'.repeat(64) }), null)), 'KEY_EXISTS');
    assert.equal((await store.read((tx) => tx.keys.list())).length, 1);
  });
});
