/**
 * What the policy engine reads and what it decides. The engine is pure: every
 * fact it uses arrives in a `PolicyInput`, including the one reference time.
 */
import type { ArtifactSource } from '../artifact.ts';
import type { DigestString } from '../digest.ts';
import type { Reason } from '../errors.ts';
import type { EvidenceItem } from '../evidence.ts';
import type { KeyRecord } from '../key.ts';
import type { Role } from '../identity.ts';
import type { GateKind, GateOutcome } from './schema.ts';

export interface PolicyArtifact {
  digest: DigestString;
  name: string;
  version: string;
  digests?: Partial<Record<'sha256' | 'sha512', string>>;
  labels: Record<string, string>;
  source: ArtifactSource | null;
  createdAt?: string;
  createdBy?: string;
}

export interface PolicyActor {
  identity: string;
  roles: readonly string[];
  groups?: readonly string[];
}

/** One vote, as the promotion work collected it. */
export interface Approval {
  identity: string;
  roles: readonly string[];
  groups?: readonly string[];
  time?: string;
}

/** One step of the artifact's history in an environment. */
export interface HistoryEntry {
  environment: string;
  event: 'promoted' | 'rolled-back' | 'replaced';
  time: string;
  version?: string;
}

/**
 * A waiver: data, not a policy edit. It names gates, one environment and one
 * artifact (a digest, or a glob over the digest or name@version), and lasts
 * until `expiresAt`. Only an approved one, approved by someone other than its
 * requester, applies.
 */
export interface PolicyException {
  id: string;
  environment: string;
  gates: string[];
  artifact: string;
  justification: string;
  requestedBy: string;
  createdAt: string;
  expiresAt: string;
  approvedBy: string | null;
  approverRoles: Role[];
  approvedAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

/** The public facts about keys the engine uses to explain ("no key named build-ci"). */
export type KnownKey = Pick<KeyRecord, 'keyid' | 'name' | 'version' | 'status' | 'revokedAt' | 'compromisedSince'>;

export interface PolicyInput {
  /** The reference time of the decision: read once by the caller. */
  time: Date;
  kind?: 'promotion' | 'rollback';
  environment: { name: string; from: readonly string[] };
  artifact: PolicyArtifact;
  actor: PolicyActor;
  /** Every stored attestation about the artifact, already verified; unverified ones are used only to explain. */
  evidence: readonly EvidenceItem[];
  /** The version currently promoted in the environment. */
  current: { version: string; digest?: string; since?: string } | null;
  /** The artifact's own promotion history, across environments. */
  history: readonly HistoryEntry[];
  approvals: readonly Approval[];
  /** Exceptions recorded for this environment. */
  exceptions: readonly PolicyException[];
  keys?: readonly KnownKey[];
}

export interface Waiver {
  kind: 'exception' | 'fast-track' | 'rollback';
  /** The exception id or the fast-track name. */
  id: string;
}

export interface GateResult {
  name: string;
  kind: GateKind | 'tier';
  outcome: GateOutcome;
  /** What the gate asks for, in words. */
  requirement: string;
  reasons: Reason[];
  waivedBy?: Waiver;
  /** Digests of the evidence that satisfied it. */
  evidence?: string[];
}

export interface DecisionPolicyRef {
  name: string;
  /** sha256 of the resolved policy's canonical JSON. */
  digest: string;
  /** The published version it came from, or null for files (unsigned). */
  version: number | null;
  setDigest: string | null;
  source: 'published' | 'files';
}

export interface Decision {
  outcome: 'pass' | 'fail' | 'pending';
  allowed: boolean;
  environment: string;
  artifact: { digest: string; name: string; version: string };
  policy: DecisionPolicyRef;
  time: string;
  kind: 'promotion' | 'rollback';
  tier: string | null;
  gates: GateResult[];
  fastTrack: { name: string; waived: string[] }[];
  exceptions: { id: string; gates: string[]; applied: boolean; reason: string }[];
  inputs: {
    actor: string;
    evidence: { digest: string; predicateType: string; verified: boolean }[];
    approvals: string[];
    current: string | null;
    history: number;
    exceptions: string[];
  };
  summary: string;
}
