/**
 * Evidence as the policy engine and the promotion planner see it: every stored
 * attestation about an artifact, already run through the verification pipeline
 * with one reference time, with the outcome of each signature and the reasons.
 * Policies count only verified signatures from trusted signers; CEL expressions
 * see only verified statements.
 */
import type { Reason } from './errors.ts';
import type { DigestString } from './digest.ts';

/** in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md). */
export interface Statement {
  _type: 'https://in-toto.io/Statement/v1';
  subject: { name?: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate?: Record<string, unknown>;
}

/** Who produced one signature: a Custody-known key, or a keyless (Fulcio) certificate identity. */
export interface SignerIdentity {
  keyid: string;
  /** `name@version` when the key is known to the workspace. */
  keyName?: string;
  keyVersion?: number;
  /** For keyless evidence: the certificate's SAN and OIDC issuer. */
  certificateIdentity?: string;
  certificateIssuer?: string;
  /** The identity that owns the key (who signed, for separation of duties). */
  owner?: string;
}

export interface SignatureCheck {
  signer: SignerIdentity;
  ok: boolean;
  reasons: Reason[];
  /** The signing time the validity check used (log integration time or import time). */
  signedAt: string;
}

export interface EvidenceItem {
  /** Digest of the stored bundle: the evidence's identity in receipts and logs. */
  digest: DigestString;
  predicateType: string;
  /** Parsed statement; present even when verification failed, for explanations only. */
  statement: Statement | null;
  signatures: SignatureCheck[];
  /** True when at least one signature verified and the subject matched the artifact. */
  verified: boolean;
  reasons: Reason[];
  storedAt: string;
  /** A message signature over the artifact digest, or an attestation (a DSSE statement). */
  kind?: 'signature' | 'attestation';
  source?: EvidenceSource;
}

/** Where a stored piece of evidence came from. */
export type EvidenceSource = 'signed' | 'attested' | 'imported';

/**
 * A signature or attestation as Custody stores it: the exact JSON text it
 * received or produced, indexed by the digests it is about. It is verified
 * again on every use; nothing here is trusted because it was stored.
 */
export interface StoredEvidence {
  /** sha256 of the stored UTF-8 text: the evidence's identity. */
  digest: DigestString;
  kind: 'signature' | 'attestation';
  format: 'bundle' | 'dsse';
  mediaType: string | null;
  predicateType: string | null;
  /** Keyids (or the certificate identity) that verified when it was stored. */
  signers: string[];
  /**
   * The signing time key validity is judged at: the time Custody recorded it
   * (the time of its `evidence.stored` log entry) for keyed evidence; the
   * transparency log's verified time for keyless evidence.
   */
  signedAt: string;
  storedAt: string;
  storedBy: string;
  source: EvidenceSource;
  /** Keyless only: the certificate identity and OIDC issuer it was required to have. */
  expect: { identity: string; issuer: string } | null;
  /** Digests it is about, as `sha256:<hex>` / `sha512:<hex>`. */
  subjects: string[];
  size: number;
  body: string;
}
