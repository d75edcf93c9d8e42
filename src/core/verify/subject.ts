/** Steps: the statement or message is about this artifact, and of the type asked for. */
import { bytesEqual } from '../digest.ts';
import type { Statement } from '../evidence.ts';
import { reason, type VerifyReason } from './reasons.ts';

/** The digests Custody knows for an artifact, lowercase hex by algorithm. */
export interface ArtifactDigests {
  sha256?: string;
  sha512?: string;
}

const BYTES: Record<string, number> = { sha256: 32, sha512: 64 };

/**
 * Constant-time equality of two hex digests of one algorithm. Hex decoding
 * stops at the first non-hex character, so anything but exactly the right
 * number of hex digits decodes short and fails the length check.
 */
function hexEqual(alg: 'sha256' | 'sha512', a: string, b: string): boolean {
  const n = BYTES[alg] ?? 0;
  if (a.length !== 2 * n || b.length !== 2 * n) return false;
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === n && y.length === n && bytesEqual(x, y);
}

/**
 * One subject entry matches when every algorithm both sides know agrees (a
 * matching sha256 next to a contradicting sha512 is a forgery, not a match)
 * and at least one such algorithm exists.
 */
function subjectMatches(digest: Record<string, string>, artifact: ArtifactDigests): boolean {
  let agreed = 0;
  for (const alg of ['sha256', 'sha512'] as const) {
    const mine = artifact[alg];
    const theirs = digest[alg];
    if (mine === undefined || theirs === undefined) continue;
    if (!hexEqual(alg, theirs, mine)) return false;
    agreed++;
  }
  return agreed > 0;
}

export function checkSubject(statement: Statement, artifact: ArtifactDigests): VerifyReason | undefined {
  for (const s of statement.subject) {
    if (subjectMatches(s.digest, artifact)) return undefined;
  }
  const known = artifact.sha256 !== undefined ? `sha256:${artifact.sha256}` : `sha512:${artifact.sha512 ?? ''}`;
  return reason('SUBJECT_MISMATCH', `no statement subject has the artifact's digest ${known}`);
}

/** A message signature's digest must be the artifact's digest of the same algorithm. */
export function checkMessageDigest(algorithm: string, digest: Uint8Array, artifact: ArtifactDigests): VerifyReason | undefined {
  const mine = algorithm === 'sha256' ? artifact.sha256 : algorithm === 'sha512' ? artifact.sha512 : undefined;
  if (mine === undefined) return reason('SUBJECT_MISMATCH', `the signature is over a ${algorithm} digest, which Custody does not know for this artifact`);
  const expected = Buffer.from(mine, 'hex');
  if (!bytesEqual(expected, digest)) {
    return reason('SUBJECT_MISMATCH', `the signed digest is not the artifact's ${algorithm} digest`);
  }
  return undefined;
}

export function checkPredicateType(statement: Statement, required: string | undefined): VerifyReason | undefined {
  if (required === undefined || statement.predicateType === required) return undefined;
  return reason('PREDICATE_TYPE_MISMATCH', `predicate type is ${statement.predicateType}, not ${required}`);
}
