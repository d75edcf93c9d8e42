/**
 * The log's storage: entries, the Merkle tree's subtree hashes, a subject
 * lookup and signed checkpoints, all in portable SQL.
 *
 * Why these tables (numbers from bench/tlog.ts on the development VM):
 *
 * - `log_entries (idx, body, leaf_hash)`: the canonical body is the record;
 *   everything else is derived from it, so there is nothing to drift from it.
 *   `idx` is the primary key (the rowid in SQLite), so an append writes one
 *   B-tree, at its right edge.
 * - `log_nodes (level, idx, hash)`: the hash of every complete subtree above
 *   the leaves, keyed by position. Complete subtrees never change, so rows are
 *   insert-only (n - 1 for n leaves, one per append on average, all at the right
 *   edge of their level) and any proof or root is O(log n) point reads. Tiles
 *   (C2SP tlog-tiles) would mean fewer rows but rewriting a partial tile on every
 *   append, because entries are appended inside other use cases' transactions,
 *   one at a time, with no hook at commit.
 * - `log_subjects (bucket, idx, subject_key)`: "history of this digest". A plain
 *   index on a random key (a digest) puts each append on a random page: at 1M
 *   entries that alone cut batched appends from ~350k/s to ~37k/s. Keying the
 *   lookup by one of 16 buckets, then the index, keeps every append at one of 16
 *   right edges (16 pages dirtied per batch, not one per entry); a lookup scans
 *   1/16 of the keys (48 bits of the subject's SHA-256) and re-checks the
 *   subject in each body it returns.
 * - `log_checkpoints`: every signed checkpoint, kept, so that consistency
 *   between any two can be shown.
 *
 * The compact range (the frontier of the tree, O(log n) hashes) is held for
 * the whole transaction (repositories are bound per transaction), so the
 * appends of a batch cost no reads at all. Between transactions it is kept per
 * connection and trusted again only when the log still ends where it did and,
 * in SQLite, `PRAGMA data_version` says no other connection committed: a
 * rolled-back transaction or another process's append means a reload from
 * log_nodes (O(log n) reads). In PostgreSQL the frontier is read once per
 * transaction (the store serialises writers, so it stays the end of the log).
 */
import { hash } from 'node:crypto';
import { bytesEqual } from '../../core/digest.ts';
import { CustodyError } from '../../core/errors.ts';
import type { LogEntry, LogEntryInput, LogRepository, NewCheckpoint, StoredCheckpoint, StoredLeaf } from '../../core/ports.ts';
import { entryBody, entryId as idOf, entryLeaf, parseEntryBody, parseEntryId } from '../../core/tlog/index.ts';
import { emptyRoot } from '../../core/tlog/index.ts';
import {
  CompactRange,
  consistencyRanges,
  frontierIds,
  inclusionRanges,
  materialize,
  nodeKey,
  nodesFor,
  type LeafRange,
  type NodeId,
} from '../../core/tlog/index.ts';
import type { SqlExecutor, SqlValue } from './executor.ts';
import { toBytes, toInt } from './executor.ts';

/** Subject buckets: more means faster lookups and more pages dirtied per batch. */
export const SUBJECT_BUCKETS = 16;
/** Rows per statement when rebuilding the tree of entries written before the tree was stored. */
const BACKFILL_PAGE = 5000;

interface EntryRow {
  idx: unknown;
  body: string;
  leaf_hash: unknown;
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

export function subjectKey(subject: string): { bucket: number; key: number } {
  const h = hash('sha256', subject, 'buffer');
  return { bucket: (h[0] as number) % SUBJECT_BUCKETS, key: h.readUIntBE(1, 6) };
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

/** Per connection: the tree after its last append, and the data_version it was read at. */
const frontiers = new WeakMap<SqlExecutor, { tree: CompactRange; version: number | undefined }>();
/** Connections whose pre-tree entries are known to be indexed. */
const indexed = new WeakSet<SqlExecutor>();

export function logRepository(db: SqlExecutor): LogRepository {
  /** The tree this transaction appends to, once known. */
  let tree: CompactRange | undefined;

  async function dataVersion(): Promise<number | undefined> {
    if (db.dialect !== 'sqlite') return undefined;
    const r = await db.get<{ data_version: unknown }>('PRAGMA data_version');
    return toInt(r?.data_version);
  }

  async function currentSize(): Promise<number> {
    const r = await db.get<{ m: unknown }>('SELECT MAX(idx) AS m FROM log_entries');
    return r?.m === null || r?.m === undefined ? 0 : toInt(r.m) + 1;
  }

  /** Hashes of complete subtrees by position: leaves from log_entries, the rest from log_nodes. */
  async function fetchNodes(ids: readonly NodeId[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const leaves = ids.filter((id) => id.level === 0).map((id) => id.index);
    const inner = ids.filter((id) => id.level > 0);
    if (leaves.length > 0) {
      const rows = await db.all<{ idx: unknown; leaf_hash: unknown }>(
        `SELECT idx, leaf_hash FROM log_entries WHERE idx IN (${leaves.map(() => '?').join(', ')})`,
        leaves,
      );
      for (const r of rows) out.set(nodeKey({ level: 0, index: toInt(r.idx) }), bytes(r.leaf_hash));
    }
    if (inner.length > 0) {
      const byLevel = new Map<number, number[]>();
      for (const id of inner) byLevel.set(id.level, [...(byLevel.get(id.level) ?? []), id.index]);
      const clauses: string[] = [];
      const params: SqlValue[] = [];
      for (const [level, indexes] of byLevel) {
        clauses.push(`(level = ? AND idx IN (${indexes.map(() => '?').join(', ')}))`);
        params.push(level, ...indexes);
      }
      const rows = await db.all<{ level: unknown; idx: unknown; hash: unknown }>(`SELECT level, idx, hash FROM log_nodes WHERE ${clauses.join(' OR ')}`, params);
      for (const r of rows) out.set(nodeKey({ level: toInt(r.level), index: toInt(r.idx) }), bytes(r.hash));
    }
    return out;
  }

  async function hashesOf(ranges: readonly LeafRange[]): Promise<Uint8Array[]> {
    const found = (await backfillPending()) ? await legacyNodes() : await fetchNodes(nodesFor(ranges));
    return materialize(ranges, (id) => found.get(nodeKey(id)));
  }

  /** Whether entries from before the tree was stored still wait for their subtree hashes (built by the next append). */
  async function backfillPending(): Promise<boolean> {
    if (indexed.has(db)) return false;
    const pending = await db.get<{ upto: unknown }>('SELECT upto FROM log_backfill');
    if (!pending) indexed.add(db);
    return pending !== undefined;
  }

  /** Until then, reads compute every subtree of those (few) entries in memory: a read transaction cannot write them. */
  async function legacyNodes(): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const tree = new CompactRange();
    for (let from = 0; ; from += BACKFILL_PAGE) {
      const rows = await db.all<EntryRow>('SELECT idx, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, BACKFILL_PAGE]);
      for (const r of rows) {
        if (toInt(r.idx) !== tree.size) return out;
        tree.append(bytes(r.leaf_hash), (level, index, hash) => out.set(nodeKey({ level, index }), hash));
      }
      if (rows.length < BACKFILL_PAGE) return out;
    }
  }

  async function loadTree(): Promise<CompactRange> {
    const size = await currentSize();
    const ids = frontierIds(size);
    const found = await fetchNodes(ids);
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

  /**
   * Entries written before the tree was stored (schema version 2) have no
   * subtree hashes or subject rows: build them once, in the caller's transaction.
   */
  async function ensureTree(): Promise<void> {
    if (indexed.has(db)) return;
    const pending = await db.get<{ upto: unknown }>('SELECT upto FROM log_backfill');
    if (pending) {
      const upto = toInt(pending.upto);
      const tree = new CompactRange();
      for (let from = 0; from < upto; from += BACKFILL_PAGE) {
        const rows = await db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx', [from, Math.min(upto, from + BACKFILL_PAGE)]);
        for (const r of rows) {
          const index = toInt(r.idx);
          if (index !== tree.size) throw new CustodyError('LOG_TAMPERED', `entry ${tree.size} is missing; the log cannot be indexed`, { hint: 'run `custody audit verify`' });
          const nodes: [number, number, Uint8Array][] = [];
          tree.append(bytes(r.leaf_hash), (level, idx, hash) => {
            if (level > 0) nodes.push([level, idx, hash]);
          });
          for (const [level, idx, hash] of nodes) await db.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', [level, idx, hash]);
          const subject = parseEntryBody(r.body).subject;
          if (subject !== undefined) await insertSubject(subject, index);
        }
      }
      await db.run('DELETE FROM log_backfill');
      // Not remembered: if this transaction rolls back, the next one must build the tree again.
      return;
    }
    indexed.add(db);
  }

  async function insertSubject(subject: string, index: number): Promise<void> {
    const { bucket, key } = subjectKey(subject);
    await db.run('INSERT INTO log_subjects (bucket, idx, subject_key) VALUES (?, ?, ?)', [bucket, index, key]);
  }

  /** The tree to append to, valid for this transaction. */
  async function head(): Promise<CompactRange> {
    if (tree) return tree;
    if (db.dialect === 'postgres') {
      // Writers are serialised by the store (ports.ts: Store.transaction), so what this transaction reads stays the end of the log.
      tree = await loadTree();
      return tree;
    }
    const version = await dataVersion();
    const known = frontiers.get(db);
    if (known && known.version === version && known.tree.size === (await currentSize())) {
      tree = known.tree;
    } else {
      tree = await loadTree();
      frontiers.set(db, { tree, version });
    }
    return tree;
  }

  async function append(e: LogEntryInput): Promise<LogEntry> {
    const t = await head();
    const index = t.size;
    const body = entryBody(index, e);
    const leaf = entryLeaf(body);
    await db.run('INSERT INTO log_entries (idx, body, leaf_hash) VALUES (?, ?, ?)', [index, body, leaf]);
    const nodes: [number, number, Uint8Array][] = [];
    t.append(leaf, (level, idx, hash) => {
      if (level > 0) nodes.push([level, idx, hash]);
    });
    for (const [level, idx, hash] of nodes) await db.run('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)', [level, idx, hash]);
    if (e.subject !== undefined) await insertSubject(e.subject, index);
    return { ...e, index, id: idOf(index, leaf), body, leafHash: Buffer.from(leaf).toString('hex') };
  }

  return {
    async append(e) {
      await ensureTree();
      try {
        return await append(e);
      } catch (err) {
        // Half an append may be in the transaction: trust nothing cached until the tree is read again.
        tree = undefined;
        frontiers.delete(db);
        throw err;
      }
    },
    async size() {
      return currentSize();
    },
    async byIndex(index) {
      if (!Number.isSafeInteger(index) || index < 0) return undefined;
      const r = await db.get<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx = ?', [index]);
      return r && toEntry(r);
    },
    async byId(id) {
      const parsed = parseEntryId(id);
      if (!parsed) return undefined;
      const r = await db.get<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx = ?', [parsed.index]);
      if (!r || !bytesEqual(bytes(r.leaf_hash).subarray(0, 16), parsed.leafPrefix)) return undefined;
      return toEntry(r);
    },
    async range(from, limit) {
      const rows = await db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, limit]);
      return rows.map(toEntry);
    },
    async bySubject(subject) {
      if (await backfillPending()) {
        const all = await db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries ORDER BY idx');
        return all.map(toEntry).filter((e) => e.subject === subject);
      }
      const { bucket, key } = subjectKey(subject);
      const rows = await db.all<EntryRow>(
        'SELECT e.idx, e.body, e.leaf_hash FROM log_subjects s JOIN log_entries e ON e.idx = s.idx WHERE s.bucket = ? AND s.subject_key = ? ORDER BY s.idx',
        [bucket, key],
      );
      // 48 bits can collide; the body is the record.
      return rows.map(toEntry).filter((e) => e.subject === subject);
    },
    async leaves(from, limit) {
      const rows = await db.all<EntryRow>('SELECT idx, body, leaf_hash FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?', [from, limit]);
      return rows.map((r): StoredLeaf => ({ index: toInt(r.idx), body: r.body, leafHash: bytes(r.leaf_hash) }));
    },
    async nodes(level, from, to) {
      const rows = await db.all<{ idx: unknown; hash: unknown }>('SELECT idx, hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx', [level, from, to]);
      return rows.map((r) => ({ index: toInt(r.idx), hash: bytes(r.hash) }));
    },
    async root(size) {
      const n = size ?? (await currentSize());
      if (n === 0) return emptyRoot();
      await checkSize(n);
      const [root] = await hashesOf([{ start: 0, end: n }]);
      return root as Uint8Array;
    },
    async inclusionProof(index, size) {
      await checkSize(size);
      return hashesOf(inclusionRanges(index, size));
    },
    async consistencyProof(size1, size2) {
      await checkSize(size2);
      return hashesOf(consistencyRanges(size1, size2));
    },
    async addCheckpoint(cp: NewCheckpoint) {
      const r = await db.get<{ n: unknown }>('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM log_checkpoints');
      const seq = toInt(r?.n ?? 1);
      await db.run(`INSERT INTO log_checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [seq, cp.size, cp.root, cp.note, cp.keyid, cp.createdAt]);
      return { ...cp, seq };
    },
    async latestCheckpoint() {
      const r = await db.get<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY size DESC, seq DESC LIMIT 1`);
      return r && toCheckpoint(r);
    },
    async checkpoints(after, limit) {
      const rows = after
        ? await db.all<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints WHERE size > ? OR (size = ? AND seq > ?) ORDER BY size, seq LIMIT ?`, [
            after.size,
            after.size,
            after.seq,
            limit,
          ])
        : await db.all<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY size, seq LIMIT ?`, [limit]);
      return rows.map(toCheckpoint);
    },
    async checkpointBySeq(seq) {
      const r = await db.get<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints WHERE seq = ?`, [seq]);
      return r && toCheckpoint(r);
    },
    async updateCheckpointNote(seq, note) {
      await db.run('UPDATE log_checkpoints SET note = ? WHERE seq = ?', [note, seq]);
    },
  };

  async function checkSize(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new CustodyError('INPUT_INVALID', `bad tree size ${String(size)}`);
    const have = await currentSize();
    if (size > have) throw new CustodyError('LOG_ENTRY_NOT_FOUND', `the log has ${have} entries, not ${size}`);
  }
}
