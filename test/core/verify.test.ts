import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { toTrustedKeys, type KeyAlgorithm, type KeyRecord } from '../../src/core/key.ts';
import { PREDICATE_TYPES } from '../../src/core/intoto.ts';
import { verifyEvidence, type VerifyRequest } from '../../src/core/verify/index.ts';
import { testKey, type TestKey } from '../fixtures/keys.ts';
import { attestationBundle, dsseFor, randomArtifact, signatureBundle, statementAbout } from '../fixtures/evidence.ts';

const MiB = 1024 * 1024;
const SIGNED_AT = new Date('2026-03-01T12:00:00Z');

function request(input: unknown, key: TestKey | KeyRecord[], artifact: { sha256: string; sha512?: string }, extra: Partial<VerifyRequest> = {}): VerifyRequest {
  const records = Array.isArray(key) ? key : [key.record];
  return {
    input: typeof input === 'string' ? input : JSON.stringify(input),
    maxBytes: 16 * MiB,
    artifact,
    keys: toTrustedKeys(records),
    signedAt: SIGNED_AT,
    ...extra,
  };
}

function codes(r: { reasons: { code: string }[] }): string[] {
  return r.reasons.map((x) => x.code);
}

/** Flips one bit of a base64 field, keeping it valid base64. */
function flipBit(b64: string, bit = 3): string {
  const bytes = Buffer.from(b64, 'base64');
  bytes[Math.floor(bytes.length / 2)]! ^= 1 << bit;
  return bytes.toString('base64');
}

describe('verification pipeline (keyed)', () => {
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as KeyAlgorithm[]) {
    it(`verifies a DSSE attestation bundle and a message signature bundle (${algorithm})`, async () => {
      const k = testKey({ algorithm });
      const a = randomArtifact();
      const att = verifyEvidence(request(await attestationBundle(statementAbout({ sha256: a.sha256, sha512: a.sha512 }), k.signer), k, a, { predicateType: PREDICATE_TYPES['test-result'] }));
      assert.deepEqual(codes(att), []);
      assert.equal(att.ok, true);
      assert.equal(att.kind, 'attestation');
      assert.deepEqual(att.signers, [k.record.keyid]);
      assert.deepEqual(att.subjects.sort(), [`sha256:${a.sha256}`, `sha512:${a.sha512}`]);
      assert.equal(att.signatures[0]?.signer.keyName, 'test');
      assert.equal(att.signedAt, SIGNED_AT.toISOString());
      const sig = verifyEvidence(request(await signatureBundle(a.sha256, k.signer), k, a));
      assert.deepEqual(codes(sig), []);
      assert.equal(sig.kind, 'signature');
      assert.deepEqual(sig.subjects, [`sha256:${a.sha256}`]);
    });

    it(`refuses a signature with one bit flipped (${algorithm})`, async () => {
      const k = testKey({ algorithm });
      const a = randomArtifact();
      const att = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
      const env = att['dsseEnvelope'] as { signatures: { sig: string }[] };
      env.signatures[0]!.sig = flipBit(env.signatures[0]!.sig);
      assert.deepEqual(codes(verifyEvidence(request(att, k, a))), ['SIGNATURE_INVALID']);
      const msg = await signatureBundle(a.sha256, k.signer);
      const ms = msg['messageSignature'] as { signature: string };
      ms.signature = flipBit(ms.signature, 0);
      assert.deepEqual(codes(verifyEvidence(request(msg, k, a))), ['SIGNATURE_INVALID']);
    });
  }

  it('takes a message signature\'s hash from the key, never from the bundle, and never reads an old-style digest-as-message signature as valid', async () => {
    for (const algorithm of ['ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as KeyAlgorithm[]) {
      const k = testKey({ algorithm });
      const a = randomArtifact();
      // The same artifact named by its sha512 and signed with that digest as the hash: a SHA-256 key never takes it.
      const sha512 = Buffer.from(a.sha512, 'hex');
      const relabelled = await signatureBundle(a.sha256, k.signer);
      const ms = relabelled['messageSignature'] as { messageDigest: { algorithm: string; digest: string }; signature: string };
      ms.messageDigest = { algorithm: 'SHA2_512', digest: sha512.toString('base64') };
      ms.signature = Buffer.from(await k.signer.sign(sha512)).toString('base64');
      assert.deepEqual(codes(verifyEvidence(request(relabelled, k, a))), ['SIGNATURE_INVALID'], algorithm);
      // A signature whose message is the 32 digest bytes (not the artifact) does not verify as a signature of the artifact.
      const digestAsMessage = await signatureBundle(a.sha256, k.signer);
      (digestAsMessage['messageSignature'] as { signature: string }).signature = Buffer.from(await k.signer.sign(Buffer.from(a.sha256, 'hex'))).toString('base64');
      assert.deepEqual(codes(verifyEvidence(request(digestAsMessage, k, a))), ['SIGNATURE_INVALID'], algorithm);
    }
  });

  it('refuses evidence signed by a key it does not trust, whatever the hint claims', async () => {
    const trusted = testKey();
    const other = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), other.signer);
    assert.deepEqual(codes(verifyEvidence(request(bundle, trusted, a))), ['KEY_UNKNOWN']);
    // The hint is unauthenticated: claiming the trusted key's keyid does not make another key's signature verify.
    const claimed = JSON.parse(JSON.stringify(bundle).replaceAll(other.record.keyid, trusted.record.keyid)) as Record<string, unknown>;
    assert.deepEqual(codes(verifyEvidence(request(claimed, trusted, a))), ['SIGNATURE_INVALID']);
    // and the algorithm comes from the trusted key record, not from anything in the bundle
    const ecdsa = testKey({ algorithm: 'ecdsa-p256-sha256' });
    const byEcdsa = await attestationBundle(statementAbout({ sha256: a.sha256 }), ecdsa.signer);
    const posing = JSON.parse(JSON.stringify(byEcdsa).replaceAll(ecdsa.record.keyid, trusted.record.keyid)) as Record<string, unknown>;
    assert.deepEqual(codes(verifyEvidence(request(posing, trusted, a))), ['SIGNATURE_INVALID']);
  });

  it('refuses a payload changed after signing', async () => {
    const k = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    const env = bundle['dsseEnvelope'] as { payload: string };
    const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicate: { result: string } };
    statement.predicate.result = 'FAILED';
    env.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    const r = verifyEvidence(request(bundle, k, a));
    assert.deepEqual(codes(r), ['SIGNATURE_INVALID']);
    assert.equal((r.statement?.predicate as { result: string }).result, 'FAILED', 'the claim is still shown, for explanations');
  });

  it('refuses a validly signed statement about another digest (replay)', async () => {
    const k = testKey();
    const a = randomArtifact();
    const b = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: b.sha256 }), k.signer);
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a))), ['SUBJECT_MISMATCH']);
    // a subject that matches on sha256 but contradicts on sha512 is not a match
    const mixed = await attestationBundle(statementAbout({ sha256: a.sha256, sha512: b.sha512 }), k.signer);
    assert.deepEqual(codes(verifyEvidence(request(mixed, k, a))), ['SUBJECT_MISMATCH']);
    const sig = await signatureBundle(b.sha256, k.signer);
    assert.deepEqual(codes(verifyEvidence(request(sig, k, a))), ['SUBJECT_MISMATCH']);
  });

  it('refuses a bundle whose DSSE envelope has two signatures (the bundle spec allows one)', async () => {
    const k1 = testKey();
    const k2 = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k1.signer);
    const second = await dsseFor(statementAbout({ sha256: a.sha256 }), k2.signer);
    (bundle['dsseEnvelope'] as { signatures: unknown[] }).signatures.push(second.signatures[0]);
    assert.deepEqual(codes(verifyEvidence(request(bundle, [k1.record, k2.record], a))), ['DSSE_SIGNATURE_COUNT']);
  });

  it('checks each signature of a bare DSSE envelope and counts distinct keys once', async () => {
    const k1 = testKey();
    const k2 = testKey({ algorithm: 'ecdsa-p256-sha256' });
    const a = randomArtifact();
    const statement = statementAbout({ sha256: a.sha256 });
    const env = await dsseFor(statement, k1.signer);
    const two = { ...env, signatures: [...env.signatures, ...(await dsseFor(statement, k2.signer)).signatures] };
    const both = verifyEvidence(request(two, [k1.record, k2.record], a, { threshold: 2 }));
    assert.deepEqual(codes(both), []);
    assert.deepEqual(both.signers.sort(), [k1.record.keyid, k2.record.keyid].sort());
    // ECDSA signs with fresh randomness: the same key twice gives two different signatures, still one key.
    const again = await dsseFor(statement, k2.signer);
    const dup = { ...env, signatures: [...(await dsseFor(statement, k2.signer)).signatures, ...again.signatures] };
    assert.notEqual(dup.signatures[0]!.sig, dup.signatures[1]!.sig);
    const r = verifyEvidence(request(dup, [k1.record, k2.record], a, { threshold: 2 }));
    assert.equal(r.ok, false);
    assert.deepEqual(codes(r), ['SIGNATURE_DUPLICATE', 'THRESHOLD_NOT_MET']);
    assert.deepEqual(r.signers, [k2.record.keyid]);
    // With threshold 1 the duplicate does not fail the envelope, and is still reported.
    const one = verifyEvidence(request(dup, [k1.record, k2.record], a));
    assert.equal(one.ok, true);
    assert.deepEqual(one.signatures.map((s) => s.ok), [true, false]);
    // One good and one bad signature: the good one carries a threshold of 1, the bad one is reported.
    const mixed = { ...env, signatures: [env.signatures[0]!, { keyid: k2.record.keyid, sig: flipBit(again.signatures[0]!.sig) }] };
    const m = verifyEvidence(request(mixed, [k1.record, k2.record], a));
    assert.equal(m.ok, true);
    assert.deepEqual(m.signatures.map((s) => s.reasons[0]?.code), [undefined, 'SIGNATURE_INVALID']);
  });

  it('reads the bundle media types of v0.1, v0.2 and v0.3 alike for keyed evidence', async () => {
    const k = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    for (const mediaType of ['application/vnd.dev.sigstore.bundle+json;version=0.1', 'application/vnd.dev.sigstore.bundle+json;version=0.2', 'application/vnd.dev.sigstore.bundle+json;version=0.3', 'application/vnd.dev.sigstore.bundle.v0.3+json']) {
      const r = verifyEvidence(request({ ...bundle, mediaType }, k, a));
      assert.deepEqual(codes(r), [], mediaType);
      assert.equal(r.mediaType, mediaType);
    }
  });

  it('refuses malformed input with the exact code, before any cryptography', async () => {
    const k = testKey();
    const a = randomArtifact();
    const good = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    const tlogEntry = { logIndex: '-1', logId: { keyId: 'AAAA' }, kindVersion: { kind: 'dsse', version: '0.0.1' }, integratedTime: '1700000000', canonicalizedBody: 'e30=' };
    const cases: [string, unknown, string][] = [
      ['malformed JSON', '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", ', 'JSON_MALFORMED'],
      ['not an object', '[1,2]', 'EVIDENCE_MALFORMED'],
      ['unknown media type', { ...good, mediaType: 'application/vnd.dev.sigstore.bundle.v9.9+json' }, 'MEDIA_TYPE_UNKNOWN'],
      ['neither bundle nor envelope', { hello: 'world' }, 'MEDIA_TYPE_UNKNOWN'],
      ['invalid base64 payload', { ...good, dsseEnvelope: { ...(good['dsseEnvelope'] as object), payload: 'e30*' } }, 'BASE64_INVALID'],
      ['invalid base64 signature', { ...good, dsseEnvelope: { ...(good['dsseEnvelope'] as object), signatures: [{ sig: 'ab$d' }] } }, 'BASE64_INVALID'],
      ['negative log index', { ...good, verificationMaterial: { ...(good['verificationMaterial'] as object), tlogEntries: [tlogEntry] } }, 'LOG_INDEX_INVALID'],
      ['log index beyond int64', { ...good, verificationMaterial: { ...(good['verificationMaterial'] as object), tlogEntries: [{ ...tlogEntry, logIndex: '9223372036854775808' }] } }, 'LOG_INDEX_INVALID'],
      ['log index as a float', { ...good, verificationMaterial: { ...(good['verificationMaterial'] as object), tlogEntries: [{ ...tlogEntry, logIndex: 1.5 }] } }, 'LOG_INDEX_INVALID'],
      ['two contents', { ...good, messageSignature: {} }, 'EVIDENCE_MALFORMED'],
      ['no verification material', { ...good, verificationMaterial: undefined }, 'EVIDENCE_MALFORMED'],
      ['hint differs from DSSE keyid', { ...good, verificationMaterial: { publicKey: { hint: 'other' } } }, 'KEY_HINT_MISMATCH'],
    ];
    for (const [name, input, code] of cases) {
      assert.deepEqual(codes(verifyEvidence(request(input, k, a))), [code], name);
    }
  });

  it('refuses a bundle over 16 MiB before parsing it', () => {
    const k = testKey();
    const a = randomArtifact();
    // Not even JSON: if it were parsed, the code would be JSON_MALFORMED.
    const huge = Buffer.alloc(16 * MiB + 1, 0x7b);
    const r = verifyEvidence(request('', k, a, { input: huge }));
    assert.deepEqual(codes(r), ['EVIDENCE_TOO_LARGE']);
    assert.deepEqual(codes(verifyEvidence(request('', k, a, { input: huge.subarray(0, 16 * MiB) }))), ['JSON_MALFORMED']);
  });

  it('judges the key at the signing time: expired, not yet valid, revoked, compromised, retired', async () => {
    const a = randomArtifact();
    const k = testKey({ notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-02-01T00:00:00.000Z' });
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    const at = (iso: string) => ({ signedAt: new Date(iso) });
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a, at('2026-01-15T00:00:00Z')))), []);
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a, at('2026-02-01T00:00:00Z')))), ['KEY_EXPIRED']);
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a, at('2025-12-31T23:59:59Z')))), ['KEY_NOT_YET_VALID']);
    const revoked = (compromisedSince: string): KeyRecord => ({ ...k.record, status: 'revoked', revokedAt: '2026-01-25T00:00:00.000Z', revocationReason: 'compromised', compromisedSince });
    // compromised before the signing time: refused
    assert.deepEqual(codes(verifyEvidence(request(bundle, [revoked('2026-01-10T00:00:00.000Z')], a, at('2026-01-15T00:00:00Z')))), ['KEY_COMPROMISED']);
    // compromised after it: what was recorded before still verifies, which is why the time must be Custody's own record
    assert.deepEqual(codes(verifyEvidence(request(bundle, [revoked('2026-01-20T00:00:00.000Z')], a, at('2026-01-15T00:00:00Z')))), []);
    const retired: KeyRecord = { ...k.record, status: 'retired', retiredAt: '2026-01-20T00:00:00.000Z' };
    assert.deepEqual(codes(verifyEvidence(request(bundle, [retired], a, at('2026-01-21T00:00:00Z')))), ['KEY_RETIRED']);
    const noAttest: KeyRecord = { ...k.record, purposes: ['sign-artifact'] };
    assert.deepEqual(codes(verifyEvidence(request(bundle, [noAttest], a, at('2026-01-15T00:00:00Z')))), ['KEY_PURPOSE']);
    const { signedAt: _none, ...untimed } = request(bundle, k, a);
    assert.deepEqual(codes(verifyEvidence(untimed)), ['SIGNING_TIME_UNKNOWN']);
  });

  it('checks the predicate type when one is required, and the payload type always', async () => {
    const k = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a, { predicateType: PREDICATE_TYPES.provenance }))), ['PREDICATE_TYPE_MISMATCH']);
    const env = await dsseFor(statementAbout({ sha256: a.sha256 }), k.signer);
    assert.deepEqual(codes(verifyEvidence(request({ ...env, payloadType: 'application/json' }, k, a))), ['SIGNATURE_INVALID', 'PAYLOAD_TYPE_UNSUPPORTED']);
  });

  it('refuses a keyless bundle when no trusted root and identity were given', async () => {
    const k = testKey();
    const a = randomArtifact();
    const bundle = await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer);
    bundle['verificationMaterial'] = { certificate: { rawBytes: 'MIIB' } };
    assert.deepEqual(codes(verifyEvidence(request(bundle, k, a))), ['TRUST_MATERIAL_MISSING']);
  });

  it('never throws, whatever it is given', async () => {
    const k = testKey();
    const a = randomArtifact();
    const good = JSON.stringify(await attestationBundle(statementAbout({ sha256: a.sha256 }), k.signer));
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string(), fc.integer({ min: 0, max: good.length - 1 }).map((i) => good.slice(0, i) + good.slice(i + 1))), (input) => {
        // Deleting a character can leave valid evidence (e.g. an unknown, ignored field name).
        const r = verifyEvidence(request(input, k, a));
        assert.equal(typeof r.ok, 'boolean');
        assert.equal(r.ok, r.reasons.length === 0);
      }),
      { numRuns: 300 },
    );
  });
});
