/**
 * Reason codes of the verification pipeline. Like error codes they are stable:
 * tests, policies and scripts match on them; messages may change.
 */
import type { Reason } from '../errors.ts';

export const VERIFY_CODES = [
  // parse and well-formedness: the input is not evidence Custody can read
  'EVIDENCE_TOO_LARGE',
  'JSON_MALFORMED',
  'EVIDENCE_MALFORMED',
  'MEDIA_TYPE_UNKNOWN',
  'BASE64_INVALID',
  'LOG_INDEX_INVALID',
  'DSSE_SIGNATURE_COUNT',
  'KEY_HINT_MISMATCH',
  // keys and their validity at the signing time
  'KEY_UNKNOWN',
  'KEY_PURPOSE',
  'KEY_NOT_YET_VALID',
  'KEY_EXPIRED',
  'KEY_RETIRED',
  'KEY_REVOKED',
  'KEY_COMPROMISED',
  'SIGNING_TIME_UNKNOWN',
  // signatures
  'SIGNATURE_INVALID',
  'SIGNATURE_DUPLICATE',
  'THRESHOLD_NOT_MET',
  // content
  'PAYLOAD_TYPE_UNSUPPORTED',
  'STATEMENT_INVALID',
  'SUBJECT_MISMATCH',
  'PREDICATE_TYPE_MISMATCH',
  'ARTIFACT_REQUIRED',
  // keyless (certificate + transparency log)
  'TRUST_MATERIAL_MISSING',
  'CERTIFICATE_INVALID',
  'CERTIFICATE_IDENTITY_MISMATCH',
  'CERTIFICATE_ISSUER_MISMATCH',
  'SCT_MISSING',
  'TLOG_MISSING',
  'TLOG_BODY_MISMATCH',
  'TLOG_INCLUSION_PROOF_INVALID',
  'TLOG_CHECKPOINT_INVALID',
  'TLOG_SET_INVALID',
  'TIMESTAMP_INVALID',
  // the pipeline itself failed: a bug, reported rather than thrown
  'VERIFY_INTERNAL',
] as const;

export type VerifyCode = (typeof VERIFY_CODES)[number];

export interface VerifyReason extends Reason {
  code: VerifyCode;
}

/**
 * Codes that mean "this is not well-formed evidence" rather than "this evidence
 * does not verify": an import maps them to bad input (exit 2), the rest to a
 * verification failure (exit 1).
 */
export const MALFORMED_CODES: ReadonlySet<VerifyCode> = new Set<VerifyCode>([
  'EVIDENCE_TOO_LARGE',
  'JSON_MALFORMED',
  'EVIDENCE_MALFORMED',
  'MEDIA_TYPE_UNKNOWN',
  'BASE64_INVALID',
  'LOG_INDEX_INVALID',
  'DSSE_SIGNATURE_COUNT',
  'KEY_HINT_MISMATCH',
]);

export function reason(code: VerifyCode, message: string): VerifyReason {
  return { code, message };
}

/** What a parse step returns: a value, or the one reason it could not produce one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: VerifyReason };

export function fail(code: VerifyCode, message: string): { ok: false; reason: VerifyReason } {
  return { ok: false, reason: reason(code, message) };
}
