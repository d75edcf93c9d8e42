/**
 * The log's storage: entries with the Merkle tree's subtree hashes and a
 * subject lookup, and signed checkpoints, in portable SQL.
 *
 * One row per entry, written once, by one INSERT per append (entries are
 * appended inside other use cases' transactions, one at a time, with no hook
 * at commit, so every extra statement or B-tree is paid on every append;
 * figures from bench/tlog.ts are in bench/README.md):
 *
 * - `idx` is the primary key (the rowid in SQLite): the insert lands at the
 *   right edge of one B-tree.
 * - `body` is the canonical entry (the record; everything else is derived from
 *   it, so nothing can drift from it) and `leaf_hash` its RFC 6962 leaf hash.
 * - `nodes` holds the hashes of the complete subtrees this leaf completes, level
 *   1 upwards: the leaf at index i completes one subtree per trailing 1-bit of i,
 *   so complete subtree (level l, index j) is stored once, in the row of leaf
 *   (j + 1)·2^l − 1. Complete subtrees never change, so this is write-once, n − 1
 *   hashes for n leaves, and any proof or root is O(log n) primary-key reads.
 *   A separate (level, index) table would cost a second statement and B-tree per
 *   append; tiles (C2SP tlog-tiles) would rewrite a partial tile on every append.
 * - `subject_bucket`, `subject_key`: "history of this digest". A plain index on
 *   a random key (a digest) puts each append on a random page: at 1M entries
 *   that alone cut batched inserts from ~350k/s to ~37k/s. The index is on
 *   (bucket, idx, key) with 16 buckets, so appends land on one of 16 right edges
 *   (16 pages per batch, not one per entry); a lookup scans 1/16 of the index
 *   for a 48-bit key of the subject, then re-checks the subject in each body.
 * - Entries join that index a block of INDEX_BLOCK at a time. An entry is
 *   written pending (no bucket, so outside the partial index; its bucket kept
 *   in the key's high bits), and the append that completes a block indexes
 *   the whole block with one UPDATE in the same transaction. So pending rows
 *   are exactly those of the last, incomplete block, and a lookup reads them
 *   by primary key range. A single-entry commit then writes one B-tree page
 *   instead of two (the index's page is a second WAL frame and most of the
 *   difference from a raw one-row commit); the block's index pages are
 *   written once per block.
 * - `log_checkpoints`: every signed checkpoint, kept, so that consistency
 *   between any two can be shown.
 *
 * The compact range (the tree's frontier, O(log n) hashes) is held for the whole
 * transaction (repositories are bound per transaction), so the appends of a
 * batch read nothing. Between transactions it is kept per connection and
 * trusted again only when the log still ends where it did and, in SQLite,
 * `PRAGMA data_version` says no other connection committed: a rolled-back
 * transaction or another process's append means a reload (O(log n) reads). In
 * PostgreSQL the frontier is read once per transaction (the store serialises
 * writers, so it stays the end of the log).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { bytesEqual } from '../../core/digest.ts';
import { CustodyError } from '../../core/errors.ts';
import type { LogEntry, LogEntryInput, LogRepository, NewCheckpoint, StoredCheckpoint, StoredLeaf } from '../../core/ports.ts';
import {
  CompactRange,
  consistencyRanges,
  emptyRoot,
  entryBody,
  entryId as idOf,
  entryLeaf,
  frontierIds,
  HASH_SIZE,
  inclusionRanges,
  materialize,
  nodeKey,
  nodesFor,
  parseEntryBody,
  parseEntryId,
  type LeafRange,
  type NodeId,
} from '../../core/tlog/index.ts';
import type { SqlExecutor, SqlValue } from './executor.ts';
import { placeholders, toBytes, toInt } from './executor.ts';

/** Subject buckets: more means faster lookups and more pages dirtied per batch. */
export const SUBJECT_BUCKETS = 16;
/** Entries join the subject index this many at a time (see the header). */
// 256, not 64: each block dirties up to 16 index pages once, so a promotion's
// share of them fell from 1.8 to 0.7 WAL frames (bench/README, stop 14); a lookup
// reads at most a block of pending rows by primary key.
export const INDEX_BLOCK = 256;
/** A pending entry's subject_key: bucket · 2^48 + key (below 2^52, exact in a double and in both databases' integers). */
const KEY_SPAN = 2 ** 48;
/** Indexes the pending entries from a block's first index on: their bucket moves out of the key's high bits. */
const INDEX_PENDING = `UPDATE log_entries SET subject_bucket = subject_key / ${KEY_SPAN}, subject_key = subject_key % ${KEY_SPAN} WHERE idx >= ? AND subject_bucket IS NULL AND subject_key IS NOT NULL`;
/** Rows per statement when indexing entries written before the tree was stored. */
const BACKFILL_PAGE = 5000;

interface EntryRow {
  idx: unknown;
  body: string;
  leaf_hash: unknown;
  nodes?: unknown;
}

interface CheckpointRow {
  seq: unknown;
  size: unknown;
  root: unknown;
  note: string;
  keyid: string;
  created_at: string;
}

/** The canonical body of the entry at `index` (RFC 8785 JSON; see core/tlog/entry.ts). */
export { entryBody };

/** The id of a stored body: `<index>-<leaf hash prefix>`, computed from the body alone. */
export function entryId(body: string): string {
  return idOf(parseEntryBody(body).index, entryLeaf(body));
}

/** Bytes as plain Uint8Array views, whichever driver returned them (pg gives Buffers). */
function bytes(v: unknown): Uint8Array {
  const b = toBytes(v);
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Where a subject's entries are indexed: a bucket (0..15) and a 48-bit key,
 * from two FNV-1a lanes over its UTF-16 code units. Not a security boundary:
 * lookups re-check the subject in every body, so a collision costs a body parse.
 * A cheap hash because it runs on every append (SHA-256 costs ~0.5 µs a call).
 */
export function subjectKey(subject: string): { bucket: number; key: number } {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ subject.length;
  for (let i = 0; i < subject.length; i++) {
    const c = subject.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a >>>= 0;
  b >>>= 0;
  // 32 bits of one lane and 16 of the other make the key; the other lane's top bits pick the bucket.
  return { bucket: (b >>> 28) % SUBJECT_BUCKETS, key: a * 65536 + (b & 0xffff) };
}

/** The row that stores a complete subtree: the leaf that completed it. Level 0 is the leaf itself. */
export function rowOf(id: NodeId): number {
  return (id.index + 1) * 2 ** id.level - 1;
}

function toEntry(r: EntryRow): LogEntry {
  const index = toInt(r.idx);
  const leaf = bytes(r.leaf_hash);
  const body = parseEntryBody(r.body);
  return {
    index,
    id: idOf(index, leaf),
    type: body.type,
    actor: body.actor,
    time: body.time,
    ...(body.subject === undefined ? {} : { subject: body.subject }),
    payload: body.payload,
    body: r.body,
    leafHash: Buffer.from(leaf).toString('hex'),
  };
}

function toCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return { seq: toInt(r.seq), size: toInt(r.size), root: bytes(r.root), note: r.note, keyid: r.keyid, createdAt: r.created_at };
}

const CHECKPOINT_COLUMNS = 'seq, size, root, note, keyid, created_at';
const INSERT_ENTRY = 'INSERT INTO log_entries (idx, body, leaf_hash, nodes, subject_bucket, subject_key) VALUES (?, ?, ?, ?, ?, ?)';

/**
 * Entries appended under `tallyAppends`: what one command or one request added
 * to the log (counted at the insert; a transaction that then rolls back still
 * counts), without wrapping the store its callers hold.
 */
let tally: AsyncLocalStorage<{ appended: number }> | undefined;

export async function tallyAppends<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; appended: number }> {
  const counter = { appended: 0 };
  // Made on first use, not at load (the CLI's startup snapshot loads this module at build time).
  tally ??= new AsyncLocalStorage();
  try {
    const result = await tally.run(counter, fn);
    return { result, appended: counter.appended };
  } catch (error) {
    return { error, appended: counter.appended };
  }
}

/** Per connection: the tree after its last append, and the data_version it was read at. */
const frontiers = new WeakMap<SqlExecutor, { tree: CompactRange; version: number | undefined }>();
/** Connections whose pre-tree entries are known to be indexed. */
const indexed = new WeakSet<SqlExecutor>();

export function logRepository(db: SqlExecutor): LogRepository {
  return new SqlLogRepository(db);
}

/** A class, not a closure: one is made per transaction, and instantiating a class costs next to nothing. */
class SqlLogRepository implements LogRepository {
  private readonly db: SqlExecutor;
  /** The tree this transaction appends to, once known. */
  private tree: CompactRange | undefined;

  constructor(db: SqlExecutor) {
    this.db = db;
  }

  async append(e: LogEntryInput): Promise<LogEntry> {
    if (!indexed.has(this.db)) await this.ensureTree();
    try {
      const t = this.tree ?? (await this.head());
      const index = t.size;
      const body = entryBody(index, e);
      const leaf = entryLeaf(body);
      const s = e.subject === undefined ? undefined : subjectKey(e.subject);
      // If the insert fails, the catch below drops this tree: the next append reads the frontier again.
      const nodes = completed(t, leaf);
      await this.db.run(INSERT_ENTRY, [index, body, leaf, nodes, null, s === undefined ? null : s.bucket * KEY_SPAN + s.key]);
      if (index % INDEX_BLOCK === INDEX_BLOCK - 1) await this.db.run(INDEX_PENDING, [index - (INDEX_BLOCK - 1)]);
      const counter = tally?.getStore();
      if (counter) counter.appended++;
      const leafHash = Buffer.from(leaf).toString('hex');
      return { ...e, index, id: `${index}-${leafHash.slice(0, 32)}`, body, leafHash };
    } catch (err) {
      // Trust nothing cached until the tree is read again.
      this.tree = undefined;
      frontiers.delete(this.db);
      throw err;
    }
  }

  size(): Promise<number> {
    return this.currentSize();
  }

  async byIndex(index: number): Promise<LogEntry | undefined> {
    if (!Number.isSafeInteger(index) || index < 0) return undefined;
    const r = await this.db.get<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx = ?', [index]);
    return r && toEntry(r);
  }

  async byId(id: string): Promise<LogEntry | undefined> {
    const parsed = parseEntryId(id);
    if (!parsed) return undefined;
    const r = await this.db.get<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx = ?', [parsed.index]);
    if (!r || !bytesEqual(bytes(r.leaf_hash).subarray(0, 16), parsed.leafPrefix)) return undefined;
    return toEntry(r);
  }

  async range(from: number, limit: number): Promise<LogEntry[]> {
    const rows = await this.db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, limit]);
    return rows.map(toEntry);
  }

  async bySubject(subject: string): Promise<LogEntry[]> {
    if (await this.backfillPending()) {
      const all = await this.db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries ORDER BY idx');
      return all.map(toEntry).filter((e) => e.subject === subject);
    }
    const { bucket, key } = subjectKey(subject);
    const rows = await this.db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE subject_bucket = ? AND subject_key = ? ORDER BY idx', [bucket, key]);
    // The last, incomplete block is not indexed yet: its rows by primary key, at most INDEX_BLOCK of them.
    const pending = await this.db.all<EntryRow>(
      `SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= (SELECT MAX(idx) FROM log_entries) / ${INDEX_BLOCK} * ${INDEX_BLOCK} AND subject_bucket IS NULL AND subject_key = ? ORDER BY idx`,
      [bucket * KEY_SPAN + key],
    );
    // Rows indexed before blocks existed may sit in the last block too: keep index order.
    const all = pending.length === 0 ? rows : [...rows, ...pending].sort((a, b) => toInt(a.idx) - toInt(b.idx));
    // 48 bits can collide; the body is the record.
    return all.map(toEntry).filter((e) => e.subject === subject);
  }

  async leaves(from: number, limit: number): Promise<StoredLeaf[]> {
    const rows = await this.db.all<EntryRow>('SELECT idx, body, leaf_hash, nodes FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, limit]);
    return rows.map((r): StoredLeaf => ({ index: toInt(r.idx), body: r.body, leafHash: bytes(r.leaf_hash), nodes: nodesOf(r) }));
  }

  async root(size?: number): Promise<Uint8Array> {
    const n = size ?? (await this.currentSize());
    if (n === 0) return emptyRoot();
    await this.checkSize(n);
    const [root] = await this.hashesOf([{ start: 0, end: n }]);
    return root as Uint8Array;
  }

  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    await this.checkSize(size);
    return this.hashesOf(inclusionRanges(index, size));
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    await this.checkSize(size2);
    return this.hashesOf(consistencyRanges(size1, size2));
  }

  async addCheckpoint(cp: NewCheckpoint): Promise<StoredCheckpoint> {
    const r = await this.db.get<{ n: unknown }>('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM log_checkpoints');
    const seq = toInt(r?.n ?? 1);
    await this.db.run(`INSERT INTO log_checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [seq, cp.size, cp.root, cp.note, cp.keyid, cp.createdAt]);
    return { ...cp, seq };
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const r = await this.db.get<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY size DESC, seq DESC LIMIT 1`);
    return r && toCheckpoint(r);
  }

  async checkpoints(after: { size: number; seq: number } | undefined, limit: number): Promise<StoredCheckpoint[]> {
    const params: SqlValue[] = after ? [after.size, after.size, after.seq, limit] : [limit];
    const where = after ? 'WHERE size > ? OR (size = ? AND seq > ?) ' : '';
    const rows = await this.db.all<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ${where}ORDER BY size, seq LIMIT ?`, params);
    return rows.map(toCheckpoint);
  }

  async checkpointBySeq(seq: number): Promise<StoredCheckpoint | undefined> {
    const r = await this.db.get<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints WHERE seq = ?`, [seq]);
    return r && toCheckpoint(r);
  }

  async updateCheckpointNote(seq: number, note: string): Promise<void> {
    await this.db.run('UPDATE log_checkpoints SET note = ? WHERE seq = ?', [note, seq]);
  }

  // ---------------------------------------------------------------- internals

  private async currentSize(): Promise<number> {
    const r = await this.db.get<{ m: unknown }>('SELECT MAX(idx) AS m FROM log_entries');
    return r?.m === null || r?.m === undefined ? 0 : toInt(r.m) + 1;
  }

  private async checkSize(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new CustodyError('INPUT_INVALID', `bad tree size ${String(size)}`);
    const have = await this.currentSize();
    if (size > have) throw new CustodyError('LOG_ENTRY_NOT_FOUND', `the log has ${have} entries, not ${size}`);
  }

  /** The tree to append to, valid for this transaction. */
  private async head(): Promise<CompactRange> {
    if (this.db.dialect === 'postgres') {
      // Writers are serialised by the store (ports.ts: Store.transaction), so what this transaction reads stays the end of the log.
      this.tree = await this.loadTree();
      return this.tree;
    }
    // One read: where the log ends, and whether another connection committed since this one last looked.
    const r = await this.db.get<{ m: unknown; v: unknown }>('SELECT (SELECT MAX(idx) FROM log_entries) AS m, data_version AS v FROM pragma_data_version');
    const size = r?.m === null || r?.m === undefined ? 0 : toInt(r.m) + 1;
    const version = toInt(r?.v);
    const known = frontiers.get(this.db);
    if (known && known.version === version && known.tree.size === size) {
      this.tree = known.tree;
    } else {
      this.tree = await this.loadTree();
      frontiers.set(this.db, { tree: this.tree, version });
    }
    return this.tree;
  }

  private async loadTree(): Promise<CompactRange> {
    const size = await this.currentSize();
    const ids = frontierIds(size);
    const found = await this.fetchNodes(ids);
    const frontier = ids.map((id) => {
      const h = found.get(nodeKey(id));
      if (!h) {
        throw new CustodyError('LOG_TAMPERED', `the log is missing the hash of its subtree at level ${id.level}, index ${id.index}; appending would extend a broken tree`, {
          hint: 'run `custody audit verify` to find what changed',
          details: { level: id.level, index: id.index },
        });
      }
      return h;
    });
    return new CompactRange(size, frontier);
  }

  /** Hashes of complete subtrees by position: one primary-key read per row that holds them. */
  private async fetchNodes(ids: readonly NodeId[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (ids.length === 0) return out;
    const rows = [...new Set(ids.map(rowOf))];
    const found = new Map<number, { leaf: Uint8Array; nodes: Uint8Array }>();
    for (const r of await this.db.all<EntryRow>(`SELECT idx, leaf_hash, nodes FROM log_entries WHERE idx IN (${placeholders(rows)})`, rows)) {
      found.set(toInt(r.idx), { leaf: bytes(r.leaf_hash), nodes: nodesOf(r) });
    }
    for (const id of ids) {
      const row = found.get(rowOf(id));
      if (!row) continue;
      const h = id.level === 0 ? row.leaf : row.nodes.subarray((id.level - 1) * HASH_SIZE, id.level * HASH_SIZE);
      if (h.length === HASH_SIZE) out.set(nodeKey(id), h);
    }
    return out;
  }

  private async hashesOf(ranges: readonly LeafRange[]): Promise<Uint8Array[]> {
    const found = (await this.backfillPending()) ? await this.legacyNodes() : await this.fetchNodes(nodesFor(ranges));
    return materialize(ranges, (id) => found.get(nodeKey(id)));
  }

  /** Whether entries from before the tree was stored still wait for their subtree hashes (written by the next append). */
  private async backfillPending(): Promise<boolean> {
    if (indexed.has(this.db)) return false;
    const pending = await this.db.get<{ upto: unknown }>('SELECT upto FROM log_backfill');
    if (!pending) indexed.add(this.db);
    return pending !== undefined;
  }

  /** Until then, reads compute every subtree of those (few) entries in memory: a read transaction cannot write them. */
  private async legacyNodes(): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const t = new CompactRange();
    for (let from = 0; ; from += BACKFILL_PAGE) {
      const rows = await this.db.all<EntryRow>('SELECT idx, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, BACKFILL_PAGE]);
      for (const r of rows) {
        if (toInt(r.idx) !== t.size) return out;
        t.append(bytes(r.leaf_hash), (level, index, h) => out.set(nodeKey({ level, index }), h));
      }
      if (rows.length < BACKFILL_PAGE) return out;
    }
  }

  /**
   * Entries written before the tree was stored (schema version 2) have no
   * subtree hashes or subject keys: write them once, in the caller's transaction.
   */
  private async ensureTree(): Promise<void> {
    const pending = await this.db.get<{ upto: unknown }>('SELECT upto FROM log_backfill');
    if (!pending) {
      indexed.add(this.db);
      return;
    }
    const upto = toInt(pending.upto);
    const t = new CompactRange();
    for (let from = 0; from < upto; from += BACKFILL_PAGE) {
      const rows = await this.db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx', [from, Math.min(upto, from + BACKFILL_PAGE)]);
      for (const r of rows) {
        const index = toInt(r.idx);
        if (index !== t.size) throw new CustodyError('LOG_TAMPERED', `entry ${t.size} is missing; the log cannot be indexed`, { hint: 'run `custody audit verify`' });
        const nodes = completed(t, bytes(r.leaf_hash));
        const subject = parseEntryBody(r.body).subject;
        const s = subject === undefined ? undefined : subjectKey(subject);
        await this.db.run('UPDATE log_entries SET nodes = ?, subject_bucket = ?, subject_key = ? WHERE idx = ?', [nodes, s?.bucket ?? null, s?.key ?? null, index]);
      }
    }
    await this.db.run('DELETE FROM log_backfill');
    // Not remembered: if this transaction rolls back, the next one must index them again.
  }
}

function nodesOf(r: EntryRow): Uint8Array {
  return r.nodes === null || r.nodes === undefined ? new Uint8Array(0) : bytes(r.nodes);
}

/** Appends a leaf to the tree; the hashes of the subtrees it completes, concatenated, or null when none. */
function completed(t: CompactRange, leaf: Uint8Array): Uint8Array | null {
  let first: Uint8Array | undefined;
  let more: Uint8Array[] | undefined;
  t.append(leaf, (level, _index, h) => {
    if (level === 0) return;
    if (!first) first = h;
    else (more ??= [first]).push(h);
  });
  return more ? Buffer.concat(more) : (first ?? null);
}
