/** Steps: the statement or message is about this artifact, and of the type asked for. */
import { bytesEqual } from '../digest.ts';
import type { Statement } from '../evidence.ts';
import { reason, type VerifyReason } from './reasons.ts';

/** The digests Custody knows for an artifact, lowercase hex by algorithm. */
export interface ArtifactDigests {
  sha256?: string;
  sha512?: string;
}

// Decoded digests go into these fixed buffers rather than two fresh ones per
// comparison, and the artifact's digest is decoded once for a whole batch:
// the subject check runs once per bundle in bulk verification.
const DECODED = { sha256: { mine: Buffer.alloc(32), theirs: Buffer.alloc(32), hex: '' }, sha512: { mine: Buffer.alloc(64), theirs: Buffer.alloc(64), hex: '' } };

/**
 * Constant-time equality of two hex digests of one algorithm. Hex decoding
 * stops at the first non-hex character, so anything but exactly the right
 * number of hex digits decodes short and fails the length check.
 */
function hexEqual(alg: 'sha256' | 'sha512', theirs: string, mine: string): boolean {
  const d = DECODED[alg];
  const n = d.mine.length;
  if (theirs.length !== 2 * n || mine.length !== 2 * n) return false;
  if (mine !== d.hex) {
    d.hex = '';
    if (d.mine.write(mine, 0, 'hex') !== n) return false;
    d.hex = mine;
  }
  return d.theirs.write(theirs, 0, 'hex') === n && bytesEqual(d.theirs, d.mine);
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
