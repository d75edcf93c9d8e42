/**
 * What the promotion engine records and decides with. Plain values: the store
 * keeps them as rows and JSON, the planner and verifiers read them, nothing
 * here does I/O.
 */
import type { DigestString } from '../digest.ts';
import type { Reason } from '../errors.ts';
import type { Decision, DecisionPolicyRef } from '../policy/types.ts';
import type { PromotionState } from './state.ts';

export type PromotionKind = 'promotion' | 'rollback';

export interface PromotionArtifact {
  digest: DigestString;
  name: string;
  version: string;
}

/** One promotion as the store keeps it. */
export interface Promotion {
  /** `pr_` and 22 hex digits (creation time, then random): what `custody approve` takes. */
  id: string;
  environment: string;
  artifact: PromotionArtifact;
  kind: PromotionKind;
  state: PromotionState;
  requestedBy: string;
  requestedAt: string;
  updatedAt: string;
  /** When it reached a final state (or `promoted`). */
  finishedAt: string | null;
  /** Unique per requester and environment: a retried request finds this promotion. */
  idempotencyKey: string | null;
  /** The latest plan, with the decision it acted on. */
  plan: Plan | null;
  /** Why it stopped (rejected, failed, cancelled), as a coded reason. */
  outcome: Reason | null;
  /** What the target said, capped (see TARGET_OUTPUT_MAX). */
  targetOutput: string | null;
  /** Digest of the signed receipt (the stored VSA bundle). */
  receipt: DigestString | null;
  /** Index of the `promotion.promoted` log entry that names the receipt. */
  logIndex: number | null;
  /** The receipt entry's inclusion proof, once a checkpoint covers it. */
  proof: InclusionRecord | null;
  /** Who is applying it (host, process, start), while `applying` or queued. */
  owner: string | null;
  /** After this instant an `applying` whose owner is silent may be recovered by anyone. */
  leaseExpiresAt: string | null;
  /** Monotonic order of creation across the workspace. */
  seq: number;
}

/** An RFC 9162 inclusion proof of a log entry against a signed checkpoint. */
export interface InclusionRecord {
  index: number;
  size: number;
  /** Hex hashes, leaf to root. */
  hashes: string[];
  /** The C2SP signed note of the checkpoint of `size` entries. */
  checkpoint: string;
}

/** The environment's pointer: which promotion is current, and which one holds the apply lock. */
export interface EnvironmentState {
  environment: string;
  current: string | null;
  /** The promotion applying now; at most one per environment (the serialisation point). */
  applying: string | null;
  /** Bumped by every change: a plan records the value it saw. */
  seq: number;
  updatedAt: string;
}

/** The current promotion of an environment as a plan relies on it. */
export interface CurrentState {
  promotion: string;
  artifact: PromotionArtifact;
  since: string;
  by: string;
  receipt: DigestString | null;
}

// ---------------------------------------------------------------- votes

export type VoteKind = 'approve' | 'reject';

/** What a voter saw: the artifact's evidence and the revocation state of every key that signed it. */
export interface SeenState {
  evidence: string[];
  keys: KeyFact[];
}

/** The facts about a key that make evidence stop counting. Retirement is not one: it never re-judges the past. */
export interface KeyFact {
  keyid: string;
  revokedAt: string | null;
  compromisedSince: string | null;
}

export interface Vote {
  promotion: string;
  identity: string;
  vote: VoteKind;
  comment: string | null;
  roles: string[];
  groups: string[];
  time: string;
  /** sha256 of the canonical SeenState: equal fingerprints, same evidence and keys. */
  fingerprint: string;
  seen: SeenState;
  invalidatedAt: string | null;
  invalidatedReason: string | null;
}

// ---------------------------------------------------------------- plans

/** A signer whose signature counted, as a receipt records it. */
export interface ReliedSigner {
  keyid: string;
  /** `name@version` when the key is known. */
  key?: string;
  owner?: string;
  certificateIdentity?: string;
  certificateIssuer?: string;
}

/** A piece of evidence a plan relied on: a gate counted it. */
export interface ReliedEvidence {
  digest: DigestString;
  predicateType: string;
  /** The signing time its key validity was judged at (the time Custody recorded it). */
  signedAt: string;
  signers: ReliedSigner[];
  /** The gates it satisfied. */
  gates: string[];
}

/** A receipt of the same artifact in a source environment: the link of the chain this promotion continues. */
export interface SourceReceipt {
  environment: string;
  promotion: string;
  receipt: DigestString;
}

export type PlanAction = 'apply' | 'await-approval' | 'reject';

export interface Plan {
  action: PlanAction;
  promotion: string;
  kind: PromotionKind;
  environment: string;
  artifact: PromotionArtifact;
  time: string;
  decision: Decision;
  /** Why it is rejected, or what it waits for; empty when it applies. */
  reasons: Reason[];
  relied: {
    evidence: ReliedEvidence[];
    policy: DecisionPolicyRef;
    /** The environment as the plan saw it: an apply is refused if it moved since. */
    environment: { name: string; from: string[]; seq: number; current: CurrentState | null };
    sources: SourceReceipt[];
    /** Identities whose votes counted. */
    approvals: string[];
  };
  /** The SLSA build level the relied-on provenance shows (receipt.ts slsaBuildLevel), or null. */
  buildLevel: number | null;
  /** What votes are checked against (see votes.ts): evidence set and key facts. */
  seen: SeenState;
  fingerprint: string;
}
