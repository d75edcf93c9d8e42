import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical.ts';
import type { LogEntry, LogEntryInput, LogRepository } from '../../core/ports.ts';
import { leafHash } from '../../core/tlog/hash.ts';
import type { SqlExecutor } from './executor.ts';
import { toBytes, toInt } from './executor.ts';

interface EntryRow {
  idx: unknown;
  id: string;
  type: string;
  actor: string;
  time: string;
  subject: string | null;
  body: string;
  leaf_hash: unknown;
}

const COLUMNS = 'idx, id, type, actor, time, subject, body, leaf_hash';

function fromRow(r: EntryRow): LogEntry {
  const body = JSON.parse(r.body) as { payload?: Record<string, unknown> };
  return {
    index: toInt(r.idx),
    id: r.id,
    type: r.type,
    actor: r.actor,
    time: r.time,
    ...(r.subject === null ? {} : { subject: r.subject }),
    payload: body.payload ?? {},
    body: r.body,
    leafHash: Buffer.from(toBytes(r.leaf_hash)).toString('hex'),
  };
}

/**
 * The entry body is canonical JSON that includes its own index, so a swapped or
 * re-inserted entry never hashes to the leaf it replaced.
 */
export function entryBody(index: number, e: LogEntryInput): string {
  return canonicalJson({
    index,
    type: e.type,
    actor: e.actor,
    time: e.time,
    ...(e.subject === undefined ? {} : { subject: e.subject }),
    payload: e.payload,
  });
}

export function entryId(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 32);
}

export function logRepository(db: SqlExecutor): LogRepository {
  return {
    async append(e) {
      const head = await db.get<{ n: unknown }>('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM log_entries');
      const index = toInt(head?.n ?? 0);
      const body = entryBody(index, e);
      const leaf = leafHash(Buffer.from(body, 'utf8'));
      const id = entryId(body);
      await db.run(`INSERT INTO log_entries (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        index,
        id,
        e.type,
        e.actor,
        e.time,
        e.subject ?? null,
        body,
        leaf,
      ]);
      return { ...e, index, id, body, leafHash: Buffer.from(leaf).toString('hex') };
    },
    async size() {
      const r = await db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM log_entries');
      return toInt(r?.n ?? 0);
    },
    async byIndex(index) {
      const r = await db.get<EntryRow>(`SELECT ${COLUMNS} FROM log_entries WHERE idx = ?`, [index]);
      return r && fromRow(r);
    },
    async byId(id) {
      const r = await db.get<EntryRow>(`SELECT ${COLUMNS} FROM log_entries WHERE id = ?`, [id]);
      return r && fromRow(r);
    },
    async range(from, limit) {
      const rows = await db.all<EntryRow>(`SELECT ${COLUMNS} FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?`, [from, limit]);
      return rows.map(fromRow);
    },
    async bySubject(subject) {
      const rows = await db.all<EntryRow>(`SELECT ${COLUMNS} FROM log_entries WHERE subject = ? ORDER BY idx`, [subject]);
      return rows.map(fromRow);
    },
  };
}
