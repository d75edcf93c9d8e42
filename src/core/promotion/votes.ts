/**
 * Votes on a promotion awaiting approval: who may cast one (separation of
 * duties), and when a vote stops counting (staleness). Pure functions over
 * values; the approve and reject use cases call them in their transaction.
 *
 * Rules, cited where enforced:
 * - V1 A voter holds the approver role (of the authenticated identity, never
 *   one named in a request body).
 * - V2 An approval never comes from the requester: no one approves their own
 *   promotion.
 * - V3 An approval never comes from a signer of the evidence the plan relies
 *   on: the key's owner, or the certificate identity of keyless evidence.
 * - V4 One vote per identity and promotion, approve or reject: a repeat of
 *   the same vote is answered without being counted again, a different vote
 *   is refused. Only a vote invalidated as stale (V5) may be cast again, on
 *   what is true now.
 * - V5 A vote records what its voter saw: the artifact's evidence and the
 *   revocation facts of every key that signed it. When either changes, the
 *   vote is stale: it is invalidated (recorded, with the reason) and no
 *   longer counts.
 * - V6 A veto (reject) needs only V1 and V4: blocking a promotion is always
 *   safe, so a requester or signer who finds a problem may stop it.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical.ts';
import type { Reason } from '../errors.ts';
import type { EvidenceItem } from '../evidence.ts';
import type { KnownKey } from '../policy/types.ts';
import type { KeyFact, Plan, Promotion, SeenState, Vote, VoteKind } from './types.ts';

/** Receipts are evidence too, but a new receipt for another environment changes nothing a voter judged. */
export const RECEIPT_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1';

/** V5: the evidence set and the key facts, in a canonical order. */
export function seenState(evidence: readonly EvidenceItem[], keys: readonly KnownKey[]): SeenState {
  const digests = new Set<string>();
  const signers = new Set<string>();
  for (const e of evidence) {
    if (e.predicateType === RECEIPT_PREDICATE_TYPE) continue;
    digests.add(e.digest);
    for (const s of e.signatures) signers.add(s.signer.keyid);
  }
  const facts: KeyFact[] = keys
    .filter((k) => signers.has(k.keyid))
    .map((k) => ({ keyid: k.keyid, revokedAt: k.revokedAt, compromisedSince: k.compromisedSince }))
    .sort((a, b) => (a.keyid < b.keyid ? -1 : a.keyid > b.keyid ? 1 : 0));
  return { evidence: [...digests].sort(), keys: facts };
}

// A plan takes the fingerprint of one seen state up to four times (the plan, stale votes, counted approvals, the
// policy input); states are built fresh per plan and never changed, so each is hashed once.
const fingerprints = new WeakMap<SeenState, string>();

export function fingerprintOf(seen: SeenState): string {
  let f = fingerprints.get(seen);
  if (f === undefined) {
    f = `sha256:${createHash('sha256').update(canonicalJson(seen)).digest('hex')}`;
    fingerprints.set(seen, f);
  }
  return f;
}

export interface VoteRequest {
  promotion: Pick<Promotion, 'id' | 'requestedBy'>;
  plan: Pick<Plan, 'relied'> | null;
  voter: { identity: string; roles: readonly string[] };
  vote: VoteKind;
  /** Every vote already cast on this promotion. */
  votes: readonly Pick<Vote, 'identity' | 'vote' | 'invalidatedAt'>[];
}

/** Why this vote may not be cast; empty when it may. */
export function voteRefusals(r: VoteRequest): Reason[] {
  const out: Reason[] = [];
  const who = r.voter.identity;
  // V1
  if (!r.voter.roles.includes('approver')) out.push({ code: 'APPROVER_ROLE_MISSING', message: `${who} does not hold the approver role` });
  // V4
  const earlier = r.votes.find((v) => v.identity === who && v.invalidatedAt === null);
  if (earlier) out.push({ code: 'ALREADY_VOTED', message: `${who} already voted (${earlier.vote}) on ${r.promotion.id}; one vote per identity` });
  if (r.vote === 'reject') return out; // V6
  // V2
  if (who === r.promotion.requestedBy) out.push({ code: 'APPROVER_IS_REQUESTER', message: `${who} requested ${r.promotion.id} and cannot approve it` });
  // V3
  for (const e of r.plan?.relied.evidence ?? []) {
    const signed = e.signers.find((s) => s.owner === who || s.certificateIdentity === who);
    if (signed) {
      out.push({ code: 'APPROVER_SIGNED_EVIDENCE', message: `${who} signed evidence this promotion relies on (${e.predicateType} ${short(e.digest)}, key ${signed.key ?? signed.keyid.slice(0, 12)}), so cannot approve it` });
      break;
    }
  }
  return out;
}

export interface StaleVote {
  identity: string;
  reason: string;
}

/** V5: the votes still counted whose voter saw another evidence set or other key facts than `now`. */
export function staleVotes(votes: readonly Vote[], now: SeenState): StaleVote[] {
  if (votes.length === 0) return [];
  const fp = fingerprintOf(now);
  const out: StaleVote[] = [];
  for (const v of votes) {
    if (v.invalidatedAt !== null || v.fingerprint === fp) continue;
    out.push({ identity: v.identity, reason: describeChange(v.seen, now) });
  }
  return out;
}

/** The approvals that count: approve votes, not invalidated, cast on what is still true. */
export function countedApprovals(votes: readonly Vote[], now: SeenState): Vote[] {
  if (votes.length === 0) return [];
  const fp = fingerprintOf(now);
  return votes.filter((v) => v.vote === 'approve' && v.invalidatedAt === null && v.fingerprint === fp);
}

function describeChange(before: SeenState, after: SeenState): string {
  const parts: string[] = [];
  const added = after.evidence.filter((d) => !before.evidence.includes(d));
  const removed = before.evidence.filter((d) => !after.evidence.includes(d));
  if (added.length > 0) parts.push(`evidence added since the vote: ${added.map(short).join(', ')}`);
  if (removed.length > 0) parts.push(`evidence gone since the vote: ${removed.map(short).join(', ')}`);
  const was = new Map(before.keys.map((k) => [k.keyid, k]));
  for (const k of after.keys) {
    const b = was.get(k.keyid);
    if (b && b.revokedAt === k.revokedAt && b.compromisedSince === k.compromisedSince) continue;
    if (k.revokedAt !== null) parts.push(`key ${k.keyid.slice(0, 12)} revoked ${k.revokedAt}${k.compromisedSince ? ` (compromised since ${k.compromisedSince})` : ''}`);
    else if (!b) parts.push(`key ${k.keyid.slice(0, 12)} signs evidence now and did not then`);
  }
  return parts.length > 0 ? parts.join('; ') : 'the evidence or key states changed since the vote';
}

function short(d: string): string {
  const c = d.indexOf(':');
  return c < 0 ? d.slice(0, 12) : d.slice(0, c + 13);
}
