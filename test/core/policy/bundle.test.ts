import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from '../../../src/core/canonical.ts';
import { toTrustedKeys } from '../../../src/core/key.ts';
import { policySetPayload, signPolicySet, verifyPolicySet, POLICY_PAYLOAD_TYPE, type PolicySetPayload } from '../../../src/core/policy/index.ts';
import { signEnvelope } from '../../../src/core/dsse.ts';
import { dsseBundle } from '../../../src/core/bundle.ts';
import { testKey } from '../../fixtures/keys.ts';
import { resolveFiles, policyYaml } from './helpers.ts';

function payload(version = 1): PolicySetPayload {
  const r = resolveFiles({ 'p.yaml': policyYaml('  a:\n    rule: { expr: "true" }') });
  return policySetPayload({
    version,
    publishedAt: '2026-03-10T10:00:00.000Z',
    publishedBy: 'admin@acme.example',
    environments: { prod: { from: [], policy: 'p' } },
    policies: r.policies,
    sources: [{ path: 'p.yaml', sha256: 'x', text: 'y' }],
  });
}

const MAX = 1024 * 1024;

describe('signed policy sets', () => {
  it('verifies a set signed by a policy key, as a Sigstore bundle with a DSSE envelope', async () => {
    const k = testKey({ name: 'policy-signer', purposes: ['policy'] });
    const bundle = await signPolicySet(payload(), k.signer);
    assert.equal((bundle as { mediaType: string }).mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    const r = verifyPolicySet(bundle, { keys: toTrustedKeys([k.record]), maxBytes: MAX });
    assert.equal(r.ok, true, JSON.stringify(r.reasons));
    assert.equal(r.value?.version, 1);
    assert.equal(r.keyid, k.record.keyid);
  });

  it('refuses a tampered payload, an unknown key, a key without the policy purpose and a compromised key', async () => {
    const k = testKey({ name: 'policy-signer', purposes: ['policy'] });
    const bundle = (await signPolicySet(payload(), k.signer)) as { dsseEnvelope: { payload: string } };
    const tampered = structuredClone(bundle);
    const body = JSON.parse(Buffer.from(tampered.dsseEnvelope.payload, 'base64').toString()) as PolicySetPayload;
    body.environments['prod'] = { from: [], policy: 'other' };
    tampered.dsseEnvelope.payload = Buffer.from(canonicalJson(body)).toString('base64');
    assert.deepEqual(verifyPolicySet(tampered, { keys: toTrustedKeys([k.record]), maxBytes: MAX }).reasons.map((r) => r.code), ['SIGNATURE_INVALID']);
    assert.deepEqual(verifyPolicySet(bundle, { keys: toTrustedKeys([testKey().record]), maxBytes: MAX }).reasons.map((r) => r.code), ['KEY_UNKNOWN']);
    const attestOnly = testKey({ purposes: ['attest'] });
    const b2 = await signPolicySet(payload(), attestOnly.signer);
    assert.deepEqual(verifyPolicySet(b2, { keys: toTrustedKeys([attestOnly.record]), maxBytes: MAX }).reasons.map((r) => r.code), ['KEY_PURPOSE']);
    const compromised = { ...k.record, status: 'revoked' as const, revokedAt: '2026-03-12T00:00:00.000Z', compromisedSince: '2026-03-01T00:00:00.000Z', revocationReason: 'compromised' };
    assert.deepEqual(verifyPolicySet(bundle, { keys: toTrustedKeys([compromised]), maxBytes: MAX }).reasons.map((r) => r.code), ['KEY_COMPROMISED']);
  });

  it('checks validity at the later of the signed and the recorded publication time', async () => {
    const k = testKey({ purposes: ['policy'] });
    const bundle = await signPolicySet(payload(), k.signer);
    // A key compromised on 11 March: a set claiming 10 March but recorded on 12 March is refused.
    const revoked = { ...k.record, status: 'revoked' as const, revokedAt: '2026-03-12T00:00:00.000Z', compromisedSince: '2026-03-11T00:00:00.000Z', revocationReason: 'compromised' };
    assert.equal(verifyPolicySet(bundle, { keys: toTrustedKeys([revoked]), maxBytes: MAX }).ok, true);
    assert.equal(verifyPolicySet(bundle, { keys: toTrustedKeys([revoked]), recordedAt: new Date('2026-03-12T00:00:00Z'), maxBytes: MAX }).ok, false);
  });

  it('refuses a correctly signed payload whose digest does not match its content, or of another type', async () => {
    const k = testKey({ purposes: ['policy'] });
    const wrong = { ...payload(), setDigest: `sha256:${'0'.repeat(64)}` };
    const env = await signEnvelope(POLICY_PAYLOAD_TYPE, Buffer.from(canonicalJson(wrong)), k.signer);
    assert.deepEqual(verifyPolicySet(dsseBundle(env), { keys: toTrustedKeys([k.record]), maxBytes: MAX }).reasons.map((r) => r.code), ['POLICY_DIGEST_MISMATCH']);
    const other = await signEnvelope('application/vnd.in-toto+json', Buffer.from(canonicalJson(payload())), k.signer);
    assert.deepEqual(verifyPolicySet(dsseBundle(other), { keys: toTrustedKeys([k.record]), maxBytes: MAX }).reasons.map((r) => r.code), ['POLICY_BUNDLE_INVALID']);
    assert.equal(verifyPolicySet({ nonsense: true }, { keys: toTrustedKeys([k.record]), maxBytes: MAX }).ok, false);
    assert.equal(verifyPolicySet(dsseBundle(env), { keys: toTrustedKeys([k.record]), maxBytes: 10 }).ok, false, 'size limit');
  });
});
