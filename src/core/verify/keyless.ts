/**
 * Step for keyless bundles (a Fulcio-style certificate plus a transparency log
 * entry, as GitHub artifact attestations, npm provenance and `cosign --bundle`
 * produce). The cryptography is @sigstore/verify's, which is conformance-tested:
 * the certificate chain against the trusted root at the signing time, SCTs, the
 * tlog entry's body against the bundle, its inclusion proof against a signed
 * checkpoint, its SET, RFC 3161 timestamps, and the signature.
 *
 * What Custody adds:
 * - the identity check is an exact string comparison of the SAN and of the
 *   OIDC issuer: @sigstore/verify's policy treats the SAN as a regular
 *   expression, where a forgotten anchor or dot would widen trust;
 * - thresholds follow the trusted root: an SCT is required when the root names
 *   CT logs, a tlog entry when it names transparency logs (a root with only a
 *   timestamp authority, as for GitHub's private-repository attestations,
 *   needs only the signed timestamp);
 * - every library error becomes one of Custody's reason codes.
 */
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { PolicyError, Verifier, VerificationError, toSignedEntity, toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import type { ParsedBundle } from '../bundle.ts';
import { CustodyError } from '../errors.ts';
import { reason, type VerifyCode, type VerifyReason } from './reasons.ts';

export interface KeylessTrust {
  material: TrustMaterial;
  requireSct: boolean;
  requireTlog: boolean;
}

/** What the certificate must say: both compared exactly (cosign's --certificate-identity / --certificate-oidc-issuer). */
export interface KeylessExpectation {
  identity: string;
  issuer: string;
}

export interface KeylessOutcome {
  ok: boolean;
  reasons: VerifyReason[];
  identity?: { san: string; issuer: string };
  /** The verified signing time: the tlog integration time or the signed timestamp, whichever is earlier. */
  signedAt?: Date;
}

/** Builds trust material from a trusted root JSON (sigstore_trustroot.proto), a value passed in by the caller. */
export function toKeylessTrust(rootJson: unknown): KeylessTrust {
  try {
    const root = TrustedRoot.fromJSON(rootJson);
    if (root.certificateAuthorities.length === 0 && root.tlogs.length === 0) {
      throw new CustodyError('TRUSTED_ROOT_INVALID', 'the trusted root names no certificate authority and no transparency log');
    }
    return { material: toTrustMaterial(root), requireSct: root.ctlogs.length > 0, requireTlog: root.tlogs.length > 0 };
  } catch (e) {
    if (e instanceof CustodyError) throw e;
    throw new CustodyError('TRUSTED_ROOT_INVALID', `the trusted root is not valid: ${(e as Error).message}`, { cause: e });
  }
}

export function verifyKeyless(parsed: ParsedBundle, trust: KeylessTrust, expect: KeylessExpectation, artifactBytes: Uint8Array | undefined): KeylessOutcome {
  if (parsed.content.type === 'messageSignature' && artifactBytes === undefined) {
    return failed('ARTIFACT_REQUIRED', 'a keyless message signature is over the artifact bytes: give the file, not only its digest');
  }
  let signer;
  let timestamps: Date[];
  try {
    const bundle = bundleFromJSON(parsed.json);
    const entity = toSignedEntity(bundle, artifactBytes === undefined ? undefined : Buffer.from(artifactBytes));
    const verifier = new Verifier(trust.material, {
      ctlogThreshold: trust.requireSct ? 1 : 0,
      tlogThreshold: trust.requireTlog ? 1 : 0,
      timestampThreshold: 1,
    });
    signer = verifier.verify(entity);
    timestamps = entity.timestamps.map((t) =>
      t.$case === 'transparency-log' ? new Date(Number(t.tlogEntry.integratedTime) * 1000) : t.timestamp.signingTime,
    );
  } catch (e) {
    return { ok: false, reasons: [mapError(e)] };
  }
  const san = signer.identity?.subjectAlternativeName;
  const issuer = signer.identity?.extensions?.issuer;
  if (san === undefined || issuer === undefined) return failed('CERTIFICATE_INVALID', 'the certificate carries no identity (SAN) or no OIDC issuer extension');
  const identity = { san, issuer };
  if (issuer !== expect.issuer) {
    return { ok: false, identity, reasons: [reason('CERTIFICATE_ISSUER_MISMATCH', `the certificate's OIDC issuer is ${issuer}, not ${expect.issuer}`)] };
  }
  if (san !== expect.identity) {
    return { ok: false, identity, reasons: [reason('CERTIFICATE_IDENTITY_MISMATCH', `the certificate's identity is ${san}, not ${expect.identity}`)] };
  }
  const signedAt = timestamps.reduce<Date | undefined>((min, t) => (min === undefined || t < min ? t : min), undefined);
  return signedAt === undefined ? failed('TIMESTAMP_INVALID', 'no verified signing time') : { ok: true, reasons: [], identity, signedAt };
}

function failed(code: VerifyCode, message: string): KeylessOutcome {
  return { ok: false, reasons: [reason(code, message)] };
}

function mapError(e: unknown): VerifyReason {
  if (e instanceof PolicyError) return reason('CERTIFICATE_IDENTITY_MISMATCH', e.message);
  if (!(e instanceof VerificationError)) {
    // bundleFromJSON's ValidationError, or an ASN.1 parse failure of the certificate.
    return reason('EVIDENCE_MALFORMED', `the bundle cannot be read for keyless verification: ${e instanceof Error ? e.message : String(e)}`);
  }
  const detail = e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message;
  switch (e.code) {
    case 'CERTIFICATE_ERROR':
      return /SCT/.test(e.message) ? reason('SCT_MISSING', detail) : reason('CERTIFICATE_INVALID', detail);
    case 'TLOG_INCLUSION_PROOF_ERROR':
      // One library code covers both: the checkpoint's signature, and the Merkle path to its root.
      return /checkpoint/i.test(e.message) ? reason('TLOG_CHECKPOINT_INVALID', detail) : reason('TLOG_INCLUSION_PROOF_INVALID', detail);
    case 'TLOG_INCLUSION_PROMISE_ERROR':
      return reason('TLOG_SET_INVALID', detail);
    case 'TLOG_BODY_ERROR':
      return reason('TLOG_BODY_MISMATCH', detail);
    case 'TLOG_ERROR':
    case 'TLOG_MISSING_INCLUSION_ERROR':
      return reason('TLOG_MISSING', detail);
    case 'TIMESTAMP_ERROR':
      return reason('TIMESTAMP_INVALID', detail);
    case 'SIGNATURE_ERROR':
      return reason('SIGNATURE_INVALID', detail);
    case 'PUBLIC_KEY_ERROR':
      return reason('KEY_UNKNOWN', detail);
    case 'NOT_IMPLEMENTED_ERROR':
      return reason('EVIDENCE_MALFORMED', detail);
  }
}
