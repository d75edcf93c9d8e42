/**
 * Writes src/app/operations/examples.ts: signed material for the examples of
 * operations that take evidence or a policy bundle (the OpenAPI examples, and
 * what the authorization-matrix and fuzz tests send). A fresh Ed25519 key signs
 * it and is then thrown away: only its public half is written, and the test
 * fixture registers it as an external key.
 *
 *   node scripts/operation-examples.ts
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dsseBundle } from '../src/core/bundle.ts';
import { keyidOf, publicKeyPem, signBytes } from '../src/core/crypto.ts';
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from '../src/core/dsse.ts';
import { buildStatement, predicateTypeFor } from '../src/core/intoto.ts';
import { policySetPayload, resolvePolicySet, signPolicySet } from '../src/core/policy/index.ts';
import type { Signer } from '../src/core/ports.ts';

/** The bytes of the fixture's example artifact (test/server/fixture.ts EXAMPLE_UPLOAD). */
const ARTIFACT = Buffer.from('example artifact\n');
/** The fixture's policy folder holds exactly this file. */
const POLICY = `apiVersion: custody.dev/v1
kind: Policy
name: dev
description: The example policy of the API documentation.
gates:
  named:
    rule:
      expr: artifact.name.startsWith("pkg:")
      message: artifacts are named by package URL
`;

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keyid = keyidOf(publicKey);
const signer: Signer = { keyid, algorithm: 'ed25519', sign: (data) => Promise.resolve(signBytes('ed25519', privateKey, data)) };

const digest = (alg: string) => createHash(alg).update(ARTIFACT).digest('hex');
const statement = buildStatement([{ name: 'pkg:npm/example@1.0.0', digest: { sha256: digest('sha256'), sha512: digest('sha512') } }], predicateTypeFor('test-result'), {
  result: 'PASSED',
  configuration: [{ uri: 'https://example.com/ci.yml' }],
});
const attestation = JSON.stringify(dsseBundle(await signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), signer)));

const resolved = resolvePolicySet([{ path: 'dev.yaml', text: POLICY }]);
if (resolved.problems.length > 0) throw new Error(JSON.stringify(resolved.problems));
const payload = policySetPayload({
  version: 1,
  publishedAt: '2026-01-01T00:00:00.000Z',
  publishedBy: 'example@example.com',
  environments: { dev: { from: [], policy: 'dev' } },
  policies: resolved.policies,
  sources: resolved.sources.map((s) => ({ ...s, text: POLICY })),
});
const policyBundle = JSON.stringify(await signPolicySet(payload, signer));

const out = `/**
 * Signed material for operation examples, made by scripts/operation-examples.ts
 * with a key that was thrown away at once: only its public half is here. The
 * test fixture registers it as an external key (attest, policy) valid from
 * ${payload.publishedAt.slice(0, 10)}, so these verify there.
 */

/** The example external key: its PEM public key and key id. */
export const EXAMPLE_EXTERNAL_KEY_PEM = ${JSON.stringify(publicKeyPem(publicKey))};
export const EXAMPLE_EXTERNAL_KEYID = '${keyid}';

/** The policy file the fixture's policy folder holds (dev.yaml). */
export const EXAMPLE_POLICY_YAML = ${JSON.stringify(POLICY)};

/** A test-result attestation about pkg:npm/example@1.0.0 (the bytes "example artifact\\n"), a Sigstore bundle v0.3. */
export const EXAMPLE_ATTESTATION = ${JSON.stringify(attestation)};

/** A published policy set (v1, binding dev to the policy above), as \`policy publish --out\` writes it. */
export const EXAMPLE_POLICY_BUNDLE = ${JSON.stringify(policyBundle)};
`;
await writeFile(join(import.meta.dirname, '..', 'src', 'app', 'operations', 'examples.ts'), out);
