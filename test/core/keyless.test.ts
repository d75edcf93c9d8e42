import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PREDICATE_TYPES } from '../../src/core/intoto.ts';
import { toKeylessTrust, verifyEvidence, type VerifyRequest } from '../../src/core/verify/index.ts';
import { ROOT, throwsWithCode } from '../helpers.ts';
import { randomArtifact, statementAbout } from '../fixtures/evidence.ts';
import { TestSigstore, type KeylessOptions } from '../fixtures/pki.ts';

const IDENTITY = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';
const SIGNED_AT = new Date(Date.now() - 3_600_000);
const sigstore = new TestSigstore();
const trust = toKeylessTrust(sigstore.trustedRoot);

function request(bundle: unknown, artifact: { sha256: string; sha512?: string; bytes?: Buffer }, extra: Partial<VerifyRequest> = {}): VerifyRequest {
  return {
    input: JSON.stringify(bundle),
    maxBytes: 16 * 1024 * 1024,
    artifact: { sha256: artifact.sha256, ...(artifact.sha512 ? { sha512: artifact.sha512 } : {}) },
    ...(artifact.bytes ? { artifactBytes: artifact.bytes } : {}),
    keyless: { trust, expect: { identity: IDENTITY, issuer: ISSUER } },
    ...extra,
  };
}

const opts = (extra: Partial<KeylessOptions> = {}): KeylessOptions => ({ san: IDENTITY, issuer: ISSUER, signedAt: SIGNED_AT, ...extra });
const codes = (r: { reasons: { code: string }[] }) => r.reasons.map((x) => x.code);

describe('keyless bundles (certificate + transparency log), against a synthetic trusted root', () => {
  it('verifies a DSSE attestation: chain, inclusion proof, checkpoint, SET, identity, subject', () => {
    const a = randomArtifact();
    const r = verifyEvidence(request(sigstore.dsseBundle(statementAbout({ sha256: a.sha256, sha512: a.sha512 }), opts()), a, { predicateType: PREDICATE_TYPES['test-result'] }));
    assert.deepEqual(codes(r), []);
    assert.equal(r.ok, true);
    assert.deepEqual(r.certificate, { identity: IDENTITY, issuer: ISSUER });
    assert.deepEqual(r.signers, [IDENTITY]);
    assert.equal(r.signatures[0]?.signer.certificateIssuer, ISSUER);
    // the signing time is the log's integration time, to the second
    assert.equal(r.signedAt, new Date(Math.floor(SIGNED_AT.getTime() / 1000) * 1000).toISOString());
  });

  it('verifies a message signature over the artifact bytes, and asks for the bytes when given only a digest', () => {
    const a = randomArtifact();
    const bundle = sigstore.messageBundle(a.bytes, opts());
    assert.deepEqual(codes(verifyEvidence(request(bundle, a))), []);
    assert.deepEqual(codes(verifyEvidence(request(bundle, { sha256: a.sha256 }))), ['ARTIFACT_REQUIRED']);
    const other = randomArtifact();
    assert.deepEqual(codes(verifyEvidence(request(bundle, other))), ['SIGNATURE_INVALID', 'SUBJECT_MISMATCH']);
  });

  it('matches identity and issuer exactly, never as a pattern', () => {
    const a = randomArtifact();
    const st = statementAbout({ sha256: a.sha256 });
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ san: 'https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main' })), a))), ['CERTIFICATE_IDENTITY_MISMATCH']);
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ issuer: 'https://accounts.google.com' })), a))), ['CERTIFICATE_ISSUER_MISMATCH']);
    // A prefix or a regex-looking expectation does not widen trust.
    const bundle = sigstore.dsseBundle(st, opts());
    for (const identity of [IDENTITY.slice(0, -4), 'https://github.com/acme/app/.*', `${IDENTITY}x`]) {
      assert.deepEqual(codes(verifyEvidence(request(bundle, a, { keyless: { trust, expect: { identity, issuer: ISSUER } } }))), ['CERTIFICATE_IDENTITY_MISMATCH'], identity);
    }
  });

  it('refuses a corrupted inclusion proof, a badly signed checkpoint and a bad SET, each by its code', () => {
    const a = randomArtifact();
    const st = statementAbout({ sha256: a.sha256 });
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ corrupt: { inclusionHash: true } })), a))), ['TLOG_INCLUSION_PROOF_INVALID']);
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ corrupt: { checkpointSignature: true } })), a))), ['TLOG_CHECKPOINT_INVALID']);
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ corrupt: { set: true } })), a))), ['TLOG_SET_INVALID']);
  });

  it('refuses a certificate from another CA, or used outside its validity', () => {
    const a = randomArtifact();
    const st = statementAbout({ sha256: a.sha256 });
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, opts({ rogueCa: true })), a))), ['CERTIFICATE_INVALID']);
    const expired = opts({ notBefore: new Date(SIGNED_AT.getTime() - 3_600_000), notAfter: new Date(SIGNED_AT.getTime() - 1_800_000) });
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(st, expired), a))), ['CERTIFICATE_INVALID']);
  });

  it('refuses a bundle whose signature or tlog body does not match', () => {
    const a = randomArtifact();
    const bundle = sigstore.dsseBundle(statementAbout({ sha256: a.sha256 }), opts());
    const env = bundle['dsseEnvelope'] as { signatures: { sig: string }[] };
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[10]! ^= 1;
    env.signatures[0]!.sig = sig.toString('base64');
    assert.deepEqual(codes(verifyEvidence(request(bundle, a))), ['TLOG_BODY_MISMATCH']);
  });

  it('needs a verified time: without the inclusion promise or a signed timestamp there is none', () => {
    const a = randomArtifact();
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(statementAbout({ sha256: a.sha256 }), opts({ noPromise: true })), a))), ['TIMESTAMP_INVALID']);
  });

  it('applies the content steps after the keyless ones: subject and predicate type', () => {
    const a = randomArtifact();
    const b = randomArtifact();
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(statementAbout({ sha256: b.sha256 }), opts()), a))), ['SUBJECT_MISMATCH']);
    assert.deepEqual(codes(verifyEvidence(request(sigstore.dsseBundle(statementAbout({ sha256: a.sha256 }), opts()), a, { predicateType: PREDICATE_TYPES.provenance }))), ['PREDICATE_TYPE_MISMATCH']);
  });

  it('reads v0.1 and v0.2 bundles (x509CertificateChain), and refuses a chain in a v0.3 bundle', () => {
    const a = randomArtifact();
    const v3 = sigstore.dsseBundle(statementAbout({ sha256: a.sha256 }), opts());
    const vm = v3['verificationMaterial'] as { certificate: { rawBytes: string } };
    const chain = { x509CertificateChain: { certificates: [vm.certificate] } };
    for (const mediaType of ['application/vnd.dev.sigstore.bundle+json;version=0.1', 'application/vnd.dev.sigstore.bundle+json;version=0.2']) {
      const old = { ...v3, mediaType, verificationMaterial: { ...vm, certificate: undefined, ...chain } };
      assert.deepEqual(codes(verifyEvidence(request(old, a))), [], mediaType);
    }
    const legacy = { ...v3, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.3' };
    assert.deepEqual(codes(verifyEvidence(request(legacy, a))), []);
    const chainIn3 = { ...v3, verificationMaterial: { ...vm, certificate: undefined, ...chain } };
    assert.deepEqual(codes(verifyEvidence(request(chainIn3, a))), ['EVIDENCE_MALFORMED']);
  });

  it('loads the Sigstore public-good root shipped in @sigstore/tuf, which does not trust the test CA', () => {
    const seeds = JSON.parse(readFileSync(join(ROOT, 'node_modules', '@sigstore', 'tuf', 'seeds.json'), 'utf8')) as Record<string, { targets: Record<string, string> }>;
    const root = JSON.parse(Buffer.from(Object.values(seeds)[0]!.targets['trusted_root.json']!, 'base64').toString('utf8')) as unknown;
    const publicGood = toKeylessTrust(root);
    assert.equal(publicGood.requireSct, true, 'the public-good root names CT logs, so an SCT is required');
    const a = randomArtifact();
    const r = verifyEvidence(request(sigstore.dsseBundle(statementAbout({ sha256: a.sha256 }), opts()), a, { keyless: { trust: publicGood, expect: { identity: IDENTITY, issuer: ISSUER } } }));
    assert.equal(r.ok, false);
    assert.ok(['CERTIFICATE_INVALID', 'TLOG_SET_INVALID', 'TLOG_CHECKPOINT_INVALID'].includes(r.reasons[0]!.code), r.reasons[0]!.code);
    throwsWithCode(() => toKeylessTrust({ mediaType: 'x' }), 'TRUSTED_ROOT_INVALID');
  });
});
