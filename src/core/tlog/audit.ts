/**
 * The log auditor: recomputes the Merkle tree from the stored entries, in index
 * order, and compares everything the store claims against it: each entry's
 * recorded leaf hash, each stored subtree hash, each signed checkpoint. It is a
 * pure state machine fed by a driver (the store, or an evidence bundle) one
 * entry at a time, so memory is O(log n) plus one page of stored nodes.
 *
 * It stops at the first finding: the lowest index at which the stored log and
 * the recomputed one disagree, with what disagrees.
 */
import { bytesEqual } from '../digest.ts';
import { emptyRoot, HASH_SIZE } from './hash.ts';
import { entryLeaf } from './entry.ts';
import { verifyCheckpoint, type NoteVerifier } from './checkpoint.ts';
import { CompactRange } from './tree.ts';

export type FindingKind =
  /** An index has no entry: deleted. */
  | 'entry-missing'
  /** A body names another index: moved, swapped or reordered. */
  | 'entry-moved'
  /** A body is not an entry, or does not hash to its recorded leaf: edited. */
  | 'entry-edited'
  /** Entries no longer hash to a recorded subtree: edited along with their leaf hashes, or the subtree was. */
  | 'node-mismatch'
  /** A stored checkpoint does not parse, names another log, or its row disagrees with its signed text. */
  | 'checkpoint-invalid'
  /** A checkpoint is not signed by a trusted log key: rewritten or forged. */
  | 'checkpoint-signature'
  /** A validly signed checkpoint's root is not the root of the stored entries: history was rewritten. */
  | 'checkpoint-root'
  /** Two consecutive checkpoints are not consistent. */
  | 'checkpoint-inconsistent'
  /** A checkpoint covers entries the log no longer has. */
  | 'truncated'
  /** A trusted checkpoint kept outside the database (stored file, witness) is ahead of or diverges from the log. */
  | 'rollback'
  /** Entries after the last valid checkpoint: nothing signed vouches for them. */
  | 'uncovered'
  /** A promotion's row disagrees with its `promotion.*` entries, or there is a row the log never requested (core/promotion/ledger.ts). */
  | 'promotion-row';

export interface Finding {
  /** The first index at which the log differs from what was recorded or signed. */
  index: number;
  kind: FindingKind;
  message: string;
  /** For subtree and checkpoint findings: the leaves [from, to) where the difference lies. */
  range?: { from: number; to: number };
  checkpoint?: { size?: number; seq?: number; source?: string };
}

/** A checkpoint as the store (or an outside source) holds it. */
export interface AuditCheckpoint {
  /** Its position among stored checkpoints; absent for outside checkpoints. */
  seq?: number;
  /** The size and root the row records (queried by the store), checked against the signed text. */
  size: number;
  root?: Uint8Array;
  note: string;
  /** When the log says it signed it; keys are checked for validity at this time. */
  createdAt?: string;
  /** Where an outside checkpoint came from (a file, a witness), for reports. */
  source?: string;
}

export interface AuditOptions {
  origin: string;
  /** The log's keys, as note verifiers (every version: validity decides). */
  verifiers: readonly NoteVerifier[];
}

export class LogAuditor {
  private readonly tree = new CompactRange();
  private readonly options: AuditOptions;
  /** Size of the last checkpoint that verified and matched: everything below it is vouched for. */
  private covered = 0;
  private coveredRoot: Uint8Array = emptyRoot();
  private lastSeq: number | undefined;

  constructor(options: AuditOptions) {
    this.options = options;
  }

  get size(): number {
    return this.tree.size;
  }

  get root(): Uint8Array {
    return this.tree.root();
  }

  /** The size up to which a valid checkpoint vouches for the log, and its root. */
  get vouched(): { size: number; root: Uint8Array } {
    return { size: this.covered, root: this.coveredRoot };
  }

  /**
   * Feeds the stored row at `index` (the driver passes rows in index order):
   * its body, and what the store recorded with it: the leaf hash and the hashes
   * of the subtrees this leaf completes (level 1 upwards, 32 bytes each).
   */
  entry(index: number, body: string, recordedLeaf: Uint8Array | undefined, recordedNodes?: Uint8Array): Finding | undefined {
    const expected = this.tree.size;
    if (index !== expected) {
      return { index: expected, kind: 'entry-missing', message: index > expected ? `entry ${expected} is missing (the next stored entry is ${index})` : `entry ${index} is stored twice` };
    }
    const findings: Finding[] = [];
    const named = namedIndex(body);
    if (named === undefined) {
      findings.push({ index, kind: 'entry-edited', message: `entry ${index} is not a log entry body` });
    } else if (named !== index) {
      findings.push({ index, kind: 'entry-moved', message: `entry ${index} holds the body of entry ${named}` });
    }
    const leaf = entryLeaf(body);
    if (recordedLeaf !== undefined && !bytesEqual(leaf, recordedLeaf)) {
      findings.push({ index, kind: 'entry-edited', message: `entry ${index} does not hash to its recorded leaf` });
    }
    let completed = 0;
    this.tree.append(leaf, (level, nodeIndex, hash) => {
      if (level === 0 || !recordedNodes) return;
      completed = level;
      const want = recordedNodes.length >= level * HASH_SIZE ? recordedNodes.subarray((level - 1) * HASH_SIZE, level * HASH_SIZE) : undefined;
      const from = nodeIndex * 2 ** level;
      const to = from + 2 ** level;
      if (!want) {
        findings.push({ index: from, kind: 'node-mismatch', range: { from, to }, message: `the recorded hash of entries [${from}, ${to}) is missing` });
      } else if (!bytesEqual(want, hash)) {
        findings.push({ index: from, kind: 'node-mismatch', range: { from, to }, message: `entries [${from}, ${to}) do not hash to their recorded subtree` });
      }
    });
    if (recordedNodes && recordedNodes.length !== completed * HASH_SIZE && findings.length === 0) {
      findings.push({ index, kind: 'node-mismatch', range: { from: index, to: index + 1 }, message: `entry ${index} records subtree hashes it does not complete` });
    }
    return first(findings);
  }

  /**
   * Checks a stored checkpoint once the tree has reached its size. Outside
   * checkpoints (`source` set) are held to the same rules but report `rollback`.
   */
  checkpoint(cp: AuditCheckpoint): Finding | undefined {
    const outside = cp.source !== undefined;
    const where = { size: cp.size, ...(cp.seq === undefined ? {} : { seq: cp.seq }), ...(cp.source === undefined ? {} : { source: cp.source }) };
    const name = outside ? `the checkpoint in ${cp.source}` : `checkpoint #${cp.seq ?? '?'} (size ${cp.size})`;
    const at = cp.createdAt === undefined ? undefined : new Date(cp.createdAt);
    const verified = verifyCheckpoint(cp.note, this.options.verifiers, { origin: this.options.origin, ...(at && !Number.isNaN(at.getTime()) ? { at } : {}) });
    const from = this.covered;
    const range = { from, to: Math.max(from, cp.size) };
    if (!verified.ok || !verified.value) {
      const parse = verified.reasons.some((r) => r.code === 'CHECKPOINT_INVALID' || r.code === 'CHECKPOINT_ORIGIN');
      return {
        index: from,
        kind: parse ? 'checkpoint-invalid' : 'checkpoint-signature',
        range,
        checkpoint: where,
        message: `${name} does not verify: ${verified.reasons.map((r) => r.message).join('; ')}`,
      };
    }
    const signed = verified.value.checkpoint;
    if (signed.size !== cp.size || (cp.root !== undefined && !bytesEqual(signed.root, cp.root))) {
      return { index: from, kind: 'checkpoint-invalid', range, checkpoint: where, message: `${name}: the stored size or root differs from its signed text` };
    }
    if (cp.size > this.tree.size) {
      return {
        index: this.tree.size,
        kind: outside ? 'rollback' : 'truncated',
        range: { from: this.tree.size, to: cp.size },
        checkpoint: where,
        message: `${name} is signed for ${cp.size} entries, but the log has ${this.tree.size}: entries from ${this.tree.size} were removed`,
      };
    }
    if (cp.size < this.tree.size) {
      return { index: cp.size, kind: 'checkpoint-invalid', checkpoint: where, message: `${name} was checked out of order` };
    }
    if (!bytesEqual(signed.root, this.tree.root())) {
      return {
        index: from,
        kind: outside ? 'rollback' : 'checkpoint-root',
        range,
        checkpoint: where,
        message: `${name} signs a root that the stored entries [0, ${cp.size}) do not hash to: history between ${from} and ${cp.size} was rewritten`,
      };
    }
    if (!outside && cp.seq !== undefined) this.lastSeq = cp.seq;
    if (cp.size >= this.covered) {
      this.covered = cp.size;
      this.coveredRoot = signed.root;
    }
    return undefined;
  }

  /** After the last entry: everything past the last valid checkpoint is unvouched. */
  finish(): Finding | undefined {
    if (this.covered < this.tree.size) {
      return {
        index: this.covered,
        kind: 'uncovered',
        range: { from: this.covered, to: this.tree.size },
        message: `entries [${this.covered}, ${this.tree.size}) are not covered by any signed checkpoint`,
      };
    }
    return undefined;
  }

  get lastCheckpointSeq(): number | undefined {
    return this.lastSeq;
  }
}

/**
 * What one step found, most precise first: a finding about the entry itself
 * names its exact index; a subtree that no longer matches only says that
 * something in its range differs, so the narrowest one is reported.
 */
function first(findings: Finding[]): Finding | undefined {
  const exact = findings.find((f) => f.kind !== 'node-mismatch');
  if (exact) return exact;
  let best: Finding | undefined;
  for (const f of findings) {
    const width = (f.range?.to ?? 0) - (f.range?.from ?? 0);
    if (!best || width < (best.range?.to ?? 0) - (best.range?.from ?? 0)) best = f;
  }
  return best;
}

const PREFIX = '{"actor":"';
const INDEX_KEY = ',"index":';

/**
 * The index a body names, or undefined when the body is not an entry at all.
 * Canonical bodies start `{"actor":"…","index":N,`, so that prefix is read
 * directly (a million entries are audited in seconds, without a million parse
 * trees); anything else gets a full parse. Nothing rests on this but the kind of
 * a finding: any change to a body also changes its leaf hash.
 */
function namedIndex(body: string): number | undefined {
  if (body.startsWith(PREFIX)) {
    let i = PREFIX.length;
    for (; i < body.length; i++) {
      const c = body.charCodeAt(i);
      if (c === 0x5c) i++;
      else if (c === 0x22) break;
    }
    if (body.startsWith(INDEX_KEY, i + 1)) {
      let j = i + 1 + INDEX_KEY.length;
      const start = j;
      while (j < body.length && body.charCodeAt(j) >= 0x30 && body.charCodeAt(j) <= 0x39) j++;
      const digits = body.slice(start, j);
      if (body.charCodeAt(j) === 0x2c && /^(0|[1-9][0-9]{0,15})$/.test(digits) && body.endsWith('}')) return Number(digits);
    }
  }
  return parsedIndex(body);
}

function parsedIndex(body: string): number | undefined {
  try {
    const v = JSON.parse(body) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const o = v as Record<string, unknown>;
    const index = o['index'];
    if (!Number.isSafeInteger(index) || typeof o['type'] !== 'string' || typeof o['actor'] !== 'string' || typeof o['time'] !== 'string') return undefined;
    if (o['payload'] === null || typeof o['payload'] !== 'object') return undefined;
    return index as number;
  } catch {
    return undefined;
  }
}
