/**
 * Ports: the interfaces that adapters implement and use cases call. Core code
 * never reaches storage, files, tokens or networks except through these.
 */
import type { Artifact } from './artifact.ts';
import type { DigestString } from './digest.ts';
import type { StoredEvidence } from './evidence.ts';
import type { KeyAlgorithm, KeyRecord } from './key.ts';
import type { ApiTokenRecord } from './token.ts';
import type { PolicyException } from './policy/types.ts';
import type { EnvironmentState, InclusionRecord, Promotion, PromotionState, Vote } from './promotion/index.ts';

// ---------------------------------------------------------------- store

/** The store: every use case runs inside exactly one transaction. */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one write transaction: commit when it resolves, roll back when it
   * throws. Transactions are serialised, so `fn` sees a stable view.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** A read-only snapshot; cheaper than a write transaction where the store allows it. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Marks a span, until the returned function is called, in which other callers
   * may ask for write transactions at any moment (a server's request: its other
   * clients' requests may already wait in its sockets; one of several promotions
   * in flight). While any is open, a store that commits concurrent transactions
   * together waits for the callers woken with one; otherwise it commits a lone
   * caller's transaction at once.
   */
  concurrent?(): () => void;
  close(): Promise<void>;
}

/** Repositories bound to one transaction. */
export interface Tx {
  artifacts: ArtifactRepository;
  keys: KeyRepository;
  log: LogRepository;
  tokens: TokenRepository;
  evidence: EvidenceRepository;
  policies: PolicyRepository;
  exceptions: ExceptionRepository;
  promotions: PromotionRepository;
  approvals: ApprovalRepository;
  environments: EnvironmentRepository;
}

export interface ArtifactFilter {
  name?: string;
  label?: Record<string, string>;
  limit?: number;
}

export interface ArtifactRepository {
  byDigest(digest: DigestString): Promise<Artifact | undefined>;
  byNameVersion(name: string, version: string): Promise<Artifact | undefined>;
  /** Versions of one name, newest first by creation. */
  versionsOf(name: string): Promise<Artifact[]>;
  insert(artifact: Artifact): Promise<void>;
  list(filter?: ArtifactFilter): Promise<Artifact[]>;
}

export interface KeyRepository {
  byKeyid(keyid: string): Promise<KeyRecord | undefined>;
  byNameVersion(name: string, version: number): Promise<KeyRecord | undefined>;
  /** All versions of a name, oldest first. */
  versionsOf(name: string): Promise<KeyRecord[]>;
  /** Ordered by name and version; shared and frozen where the store caches it, so never change it in place. */
  list(): Promise<readonly KeyRecord[]>;
  /** Throws KEY_EXISTS when the keyid or the name+version is already recorded. */
  insert(key: KeyRecord, privateRef: PrivateKeyRef | null): Promise<void>;
  update(key: KeyRecord): Promise<void>;
  privateRef(keyid: string): Promise<PrivateKeyRef | null>;
}

/**
 * Where the private half of a key lives. Never the plaintext key itself. A file
 * path is relative to the workspace, so a workspace can move.
 */
export type PrivateKeyRef =
  | { backend: 'file'; path: string }
  | { backend: 'pkcs11'; module: string; slot: number; tokenLabel?: string; objectId: string; pinEnv: string };

/** API tokens: only the salted hash of the secret is ever stored. */
export interface TokenRepository {
  byId(id: string): Promise<ApiTokenRecord | undefined>;
  /** Newest first. */
  list(): Promise<ApiTokenRecord[]>;
  insert(token: ApiTokenRecord): Promise<void>;
  /** Marks the token revoked; returns false when it was already revoked (or does not exist). */
  revoke(id: string, at: string, by: string): Promise<boolean>;
}

// ---------------------------------------------------------------- evidence

export interface EvidenceRepository {
  byDigest(digest: DigestString): Promise<StoredEvidence | undefined>;
  /**
   * Stores evidence and indexes it under each of its subjects; with
   * `bySubject: false`, not indexed (a receipt this workspace issued: its
   * promotion names it, and `forSubjects` readers that want it look there).
   */
  insert(evidence: StoredEvidence, options?: { bySubject?: boolean }): Promise<void>;
  /** Evidence about any of these digests (`alg:hex`), optionally of one predicate type, oldest first. */
  forSubjects(digests: readonly string[], predicateType?: string): Promise<StoredEvidence[]>;
  /** The digests of the evidence `forSubjects` would return (no predicate filter), in no particular order: from the subject index alone. */
  digestsForSubjects(digests: readonly string[]): Promise<string[]>;
}

// ---------------------------------------------------------------- policies

export interface PolicyVersionSummary {
  version: number;
  setDigest: string;
  keyid: string;
  publishedAt: string;
  publishedBy: string;
}

export interface PolicyVersionRecord extends PolicyVersionSummary {
  /** The Sigstore bundle (DSSE) as JSON text, verified again every time it is used. */
  bundle: string;
}

export interface PolicyRepository {
  latest(): Promise<PolicyVersionRecord | undefined>;
  byVersion(version: number): Promise<PolicyVersionRecord | undefined>;
  /** Newest first, without the bundles. */
  list(): Promise<PolicyVersionSummary[]>;
  insert(record: PolicyVersionRecord): Promise<void>;
}

export interface ExceptionFilter {
  environment?: string;
  /** Only those expiring after this instant (RFC 3339). */
  unexpiredAt?: string;
}

export interface ExceptionRepository {
  byId(id: string): Promise<PolicyException | undefined>;
  /** Newest first. */
  list(filter?: ExceptionFilter): Promise<PolicyException[]>;
  insert(exception: PolicyException): Promise<void>;
  update(exception: PolicyException): Promise<void>;
}

// ---------------------------------------------------------------- promotions

export interface PromotionFilter {
  environment?: string;
  /** An artifact digest. */
  artifact?: string;
  states?: readonly PromotionState[];
  kind?: 'promotion' | 'rollback';
  limit?: number;
}

export interface PromotionRepository {
  byId(id: string): Promise<Promotion | undefined>;
  /** The promotions of these ids that exist, in no particular order (any number of ids: read in batches). */
  byIds(ids: readonly string[]): Promise<Promotion[]>;
  /** The promotion a retried request with the same key finds: unique per requester and environment. */
  byIdempotencyKey(requestedBy: string, environment: string, key: string): Promise<Promotion | undefined>;
  /** The next value of the workspace-wide creation order. */
  nextSeq(): Promise<number>;
  /** A duplicate idempotency key is a unique violation (STORE_ERROR, details.violation = 'unique', table promotions). */
  insert(p: Promotion): Promise<void>;
  update(p: Promotion): Promise<void>;
  /** Attaches the inclusion proof of the promotion's log entry (derived data: no state changes). */
  setProof(id: string, proof: InclusionRecord): Promise<void>;
  /** Writes only the state and its times (a transition of a promotion that is otherwise settled: replaced, rolled back). */
  setState(p: Pick<Promotion, 'id' | 'state' | 'updatedAt' | 'finishedAt'>): Promise<void>;
  /** The promotions of an environment still in flight (requested, evaluating, awaiting approval, applying), newest first. */
  open(environment: string): Promise<Promotion[]>;
  /** Newest first (by creation order). */
  list(filter?: PromotionFilter): Promise<Promotion[]>;
  /**
   * Every promotion of an artifact (by digest) that reached `promoted`, whatever
   * became of it since (replaced, rolled back), oldest first: the facts the
   * policy's history gates read, without the plans.
   */
  settled(artifact: string): Promise<SettledPromotion[]>;
  /** How many rows there are, whatever their state (`audit verify` compares it with the log's count). */
  count(): Promise<number>;
}

/** A promotion that reached `promoted`: when, and, if it has since been superseded, how and when. */
export interface SettledPromotion {
  environment: string;
  version: string;
  state: Extract<PromotionState, 'promoted' | 'replaced' | 'rolled-back'>;
  /** When it was promoted. */
  finishedAt: string;
  /** When it was replaced or rolled back (for `promoted`, the same as finishedAt). */
  updatedAt: string;
}

export interface ApprovalRepository {
  /** Every vote cast on a promotion, oldest first (invalidated ones included). */
  forPromotion(promotion: string): Promise<Vote[]>;
  /** A second vote by the same identity is a unique violation. */
  insert(vote: Vote): Promise<void>;
  /** Replaces a vote that was invalidated (stale) with a fresh one by the same identity; false when there is none to replace. */
  recast(vote: Vote): Promise<boolean>;
  invalidate(promotion: string, identity: string, at: string, reason: string): Promise<void>;
}

export interface EnvironmentRepository {
  /** Undefined until the first promotion into the environment. */
  get(environment: string): Promise<EnvironmentState | undefined>;
  list(): Promise<EnvironmentState[]>;
  /** Writes the state if its stored seq is still `expectedSeq` (null: no row yet); false when someone moved it first. */
  save(state: EnvironmentState, expectedSeq: number | null): Promise<boolean>;
}

// ---------------------------------------------------------------- log

/** What a use case records: one state change, described for auditors. */
export interface LogEntryInput {
  type: string;
  actor: string;
  /** The operation's reference time (RFC 3339). */
  time: string;
  /** The subject the entry is about (an artifact digest, a keyid, a promotion id). */
  subject?: string;
  /** Small, canonical-JSON-safe facts; large things go in as digests. */
  payload: Record<string, unknown>;
}

export interface LogEntry extends LogEntryInput {
  index: number;
  id: string;
  /** RFC 6962 leaf hash, lowercase hex. */
  leafHash: string;
  /** The canonical JSON bytes that were hashed into the leaf. */
  body: string;
}

export interface LogRepository {
  /**
   * Appends in the current transaction: the entry, its leaf and the subtree
   * hashes it completes commit with the change it records, or not at all.
   */
  append(entry: LogEntryInput): Promise<LogEntry>;
  /** The number of entries: the index the next append gets. */
  size(): Promise<number>;
  byIndex(index: number): Promise<LogEntry | undefined>;
  /** By entry id (`<index>-<leaf hash prefix>`): undefined unless both parts match. */
  byId(id: string): Promise<LogEntry | undefined>;
  /** Entries in index order, from `from` inclusive, at most `limit`. */
  range(from: number, limit: number): Promise<LogEntry[]>;
  bySubject(subject: string): Promise<LogEntry[]>;

  /** Stored rows in index order, unparsed: what an auditor re-hashes. */
  leaves(from: number, limit: number): Promise<StoredLeaf[]>;
  /** The RFC 6962 root at `size` (default: the whole log), from recorded subtree hashes. */
  root(size?: number): Promise<Uint8Array>;
  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` entries. */
  inclusionProof(index: number, size: number): Promise<Uint8Array[]>;
  /** RFC 9162 consistency proof between the trees of `size1` and `size2` entries. */
  consistencyProof(size1: number, size2: number): Promise<Uint8Array[]>;

  /** Keeps a signed checkpoint; every one is kept, so any two can be shown consistent. */
  addCheckpoint(checkpoint: NewCheckpoint): Promise<StoredCheckpoint>;
  /** The checkpoint of the largest size (the newest among equals). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Checkpoints ordered by (size, seq), after the given one, at most `limit`. */
  checkpoints(after: { size: number; seq: number } | undefined, limit: number): Promise<StoredCheckpoint[]>;
  checkpointBySeq(seq: number): Promise<StoredCheckpoint | undefined>;
  /** Replaces a checkpoint's note with one carrying more signatures (witness cosignatures); the signed text must not change. */
  updateCheckpointNote(seq: number, note: string): Promise<void>;
}

/** One stored entry as written: its body, the leaf hash recorded with it, and the subtree hashes that leaf completed. */
export interface StoredLeaf {
  index: number;
  body: string;
  leafHash: Uint8Array;
  /** The hashes of the complete subtrees this leaf completed, level 1 upwards, 32 bytes each (empty for most even indexes). */
  nodes: Uint8Array;
}

export interface NewCheckpoint {
  size: number;
  root: Uint8Array;
  /** The C2SP signed note, exactly as signed (plus any cosignature lines). */
  note: string;
  /** Custody keyid of the log key that signed it. */
  keyid: string;
  createdAt: string;
}

export interface StoredCheckpoint extends NewCheckpoint {
  seq: number;
}

// ---------------------------------------------------------------- blobs

export interface IngestProgress {
  bytes: number;
  total: number;
}

/** Bytes hashed and written to a temporary place, not yet visible under a digest. */
export interface StagedBlob {
  sha256: string;
  sha512: string;
  size: number;
  /**
   * Makes the blob visible under its digest (atomic rename), leaving a marker
   * that recovery uses to remove it again if the transaction never commits.
   * Call inside the transaction, before commit.
   */
  publish(): Promise<void>;
  /** After commit: drops the marker, so the blob is permanent. */
  finish(): Promise<void>;
  /** After a failure: removes the staged or just-published bytes; safe to call twice. */
  discard(): Promise<void>;
}

/** Bytes that arrive from elsewhere (an HTTP upload body), read once and in order. */
export interface ByteStream {
  /** Names the source in error messages, in place of a path. */
  label: string;
  chunks: AsyncIterable<Uint8Array>;
  /** The announced length (Content-Length) when known: refused up front if over the limit, checked at the end. */
  expectedBytes?: number;
}

export interface BlobStore {
  /**
   * Reads a file (by path) or a stream once, computing sha256 and sha512 while
   * writing the bytes to a temporary file, with the same size limit and
   * crash-safety either way.
   */
  stage(source: string | ByteStream, onProgress?: (p: IngestProgress) => void): Promise<StagedBlob>;
  has(digest: DigestString): Promise<boolean>;
  pathOf(digest: DigestString): string;
  /** Removes what an interrupted process left: temporary files and unpublished blobs. */
  recover(isKnown: (digest: DigestString) => Promise<boolean>): Promise<{ removed: number }>;
}

// ---------------------------------------------------------------- signing

/** One method, like sigstore-js's Signer: the private half never leaves the backend. */
export interface Signer {
  readonly keyid: string;
  readonly algorithm: KeyAlgorithm;
  /**
   * True when node:crypto computes the signatures in this process, from a
   * private key whose public half was matched to its record when it was
   * unlocked (the file backend). Callers that check what they sign may then
   * check such a signer once per process rather than every signature; a
   * token's output is checked every time (see signReceipt in app/promotion.ts).
   */
  readonly inProcess?: boolean;
  sign(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Signs the SHA-256 digest of a message as the signature of that message
   * (core/prehash.ts): what a message signature of an artifact is, for every
   * algorithm but Ed25519 (which signs whole messages only, and lacks this).
   */
  signDigest?(sha256: Uint8Array): Promise<Uint8Array>;
}

// ---------------------------------------------------------------- time

export interface Clock {
  now(): Date;
}

// ---------------------------------------------------------------- targets

/** What a target is asked to do: make `artifact` what `environment` serves. */
export interface TargetRequest {
  promotionId: string;
  kind: 'promotion' | 'rollback';
  environment: string;
  artifact: Artifact;
  /** Path of the stored bytes, when Custody holds them. */
  blobPath: string | null;
  /** True when this is a retry of an apply that was interrupted. */
  resumed: boolean;
}

export interface TargetOutcome {
  /** Human-readable record of what was done (captured command output, paths written). */
  output: string;
  details: Record<string, unknown>;
}

/**
 * Where a promotion lands: a file channel, a command, an OCI tag, an npm
 * dist-tag, a progressive rollout. The engine only knows this interface.
 *
 * `apply` must be all-or-nothing and idempotent: the engine retries it after a
 * crash mid-apply, so applying the same request twice must leave the same state.
 * It throws TARGET_FAILED with the reason when the target could not be moved.
 */
export interface Target {
  readonly type: string;
  apply(request: TargetRequest, signal: AbortSignal): Promise<TargetOutcome>;
}
