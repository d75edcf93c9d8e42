/**
 * Signing goes through one Signer port whatever holds the key: here the
 * private half lives in a SoftHSM2 token (PKCS#11), and the bundles it makes
 * verify in Custody's pipeline and with @sigstore/verify alike.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { closeModules } from '../../src/adapters/keys-pkcs11.ts';
import { addArtifact } from '../../src/app/artifacts.ts';
import { verifyArtifact } from '../../src/app/evidence.ts';
import { createKey } from '../../src/app/keys.ts';
import { attestArtifact, signArtifact } from '../../src/app/sign.ts';
import { parsePublicKeyPem } from '../../src/core/crypto.ts';
import { tempWorkspace, useFreshKek } from '../helpers.ts';
import { softhsmToken, type TestToken } from '../fixtures/softhsm.ts';

const PIN_ENV = 'CUSTODY_TEST_SIGN_HSM_PIN';
let token: TestToken;

before(async () => {
  token = await softhsmToken('custody-sign');
  process.env[PIN_ENV] = token.pin;
  await useFreshKek();
});

after(() => closeModules());

describe('signing with a PKCS#11 key', () => {
  for (const algorithm of ['ecdsa-p256-sha256', 'ed25519'] as const) {
    it(`signs and attests through the token (${algorithm}); Custody and @sigstore/verify both verify`, async () => {
      const ws = await tempWorkspace();
      const ctx = await ws.open();
      const key = await createKey(ctx, { name: `hsm-${algorithm.slice(0, 5)}`, algorithm, backend: 'pkcs11', module: token.module, slot: String(token.slot), pinEnv: PIN_ENV });
      assert.equal(key.backend, 'pkcs11');
      const file = join(ws.dir, 'app.tgz');
      await writeFile(file, `build ${algorithm}\n`);
      const { artifact } = await addArtifact(ctx, { file, name: 'pkg:npm/app', version: '1.0.0' });
      const predicate = join(ws.dir, 'p.json');
      await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://example.com/ci.yml' }] }));
      const att = await attestArtifact(ctx, { artifact: artifact.digest, key: key.name, type: 'test-result', predicate });
      const sig = await signArtifact(ctx, { artifact: artifact.digest, key: key.name });
      const v = await verifyArtifact(ctx, { artifact: artifact.digest });
      assert.deepEqual(v.items.map((i) => i.verified), [true, true]);

      const root = TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] });
      const rawBytes = parsePublicKeyPem(key.publicKeyPem).export({ type: 'spki', format: 'der' });
      const details = algorithm === 'ed25519' ? PublicKeyDetails.PKIX_ED25519 : PublicKeyDetails.PKIX_ECDSA_P256_SHA_256;
      const verifier = new Verifier(toTrustMaterial(root, { [key.keyid]: { rawBytes, keyDetails: details } }), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
      verifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(await readFile(att.path, 'utf8')))));
      if (algorithm !== 'ed25519') {
        // The token signed the digest as the artifact's own hash: the signature is over the file itself, as cosign's is.
        const signature = bundleFromJSON(JSON.parse(await readFile(sig.path, 'utf8')));
        verifier.verify(toSignedEntity(signature, await readFile(file)));
        assert.throws(() => verifier.verify(toSignedEntity(signature, Buffer.from(artifact.digests.sha256!, 'hex'))));
      }
    });
  }
});
