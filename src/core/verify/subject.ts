/** Steps: the statement or message is about this artifact, and of the type asked for. */
import { timingSafeEqual } from 'node:crypto';
import type { Statement } from '../evidence.ts';
import { reason, type VerifyReason } from './reasons.ts';

/** The digests Custody knows for an artifact, lowercase hex by algorithm. */
export interface ArtifactDigests {
  sha256?: string;
  sha512?: string;
}

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const HEX_RE = /^[0-9a-f]+$/;

function hexEqual(a: string, b: string): boolean {
  // Lengths are public (fixed per algorithm); only the content is compared in constant time.
  if (a.length !== b.length || !HEX_RE.test(a) || !HEX_RE.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
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
    if (theirs.length !== HEX_LENGTH[alg] || !hexEqual(theirs, mine)) return false;
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
  if (expected.length !== digest.length || !timingSafeEqual(expected, digest)) {
    return reason('SUBJECT_MISMATCH', `the signed digest is not the artifact's ${algorithm} digest`);
  }
  return undefined;
}

export function checkPredicateType(statement: Statement, required: string | undefined): VerifyReason | undefined {
  if (required === undefined || statement.predicateType === required) return undefined;
  return reason('PREDICATE_TYPE_MISMATCH', `predicate type is ${statement.predicateType}, not ${required}`);
}
