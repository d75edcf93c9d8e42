import type { DigestString } from '../../core/digest.ts';
import type { StoredEvidence } from '../../core/evidence.ts';
import type { EvidenceRepository } from '../../core/ports.ts';
import type { SqlExecutor } from './executor.ts';
import { placeholders, toInt } from './executor.ts';

interface EvidenceRow {
  digest: string;
  kind: string;
  format: string;
  media_type: string | null;
  predicate_type: string | null;
  signers: string;
  signed_at: string;
  stored_at: string;
  stored_by: string;
  source: string;
  expect: string | null;
  subjects: string;
  size: unknown;
  body: string;
}

const COLUMNS = 'digest, kind, format, media_type, predicate_type, signers, signed_at, stored_at, stored_by, source, expect, subjects, size, body';

function fromRow(r: EvidenceRow): StoredEvidence {
  return {
    digest: r.digest as DigestString,
    kind: r.kind as StoredEvidence['kind'],
    format: r.format as StoredEvidence['format'],
    mediaType: r.media_type,
    predicateType: r.predicate_type,
    signers: JSON.parse(r.signers) as string[],
    signedAt: r.signed_at,
    storedAt: r.stored_at,
    storedBy: r.stored_by,
    source: r.source as StoredEvidence['source'],
    expect: r.expect === null ? null : (JSON.parse(r.expect) as StoredEvidence['expect']),
    subjects: JSON.parse(r.subjects) as string[],
    size: toInt(r.size),
    body: r.body,
  };
}

// Bounded so a statement with many subjects cannot build an unbounded IN list.
const MAX_LOOKUP = 64;

export function evidenceRepository(db: SqlExecutor): EvidenceRepository {
  return {
    async byDigest(digest) {
      const r = await db.get<EvidenceRow>(`SELECT ${COLUMNS} FROM evidence WHERE digest = ?`, [digest]);
      return r && fromRow(r);
    },
    async insert(e, options) {
      await db.run(`INSERT INTO evidence (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        e.digest,
        e.kind,
        e.format,
        e.mediaType,
        e.predicateType,
        JSON.stringify(e.signers),
        e.signedAt,
        e.storedAt,
        e.storedBy,
        e.source,
        e.expect === null ? null : JSON.stringify(e.expect),
        JSON.stringify(e.subjects),
        e.size,
        e.body,
      ]);
      if (options?.bySubject === false) return;
      for (const subject of new Set(e.subjects)) {
        await db.run('INSERT INTO evidence_subjects (subject, evidence, predicate_type) VALUES (?, ?, ?)', [subject, e.digest, e.predicateType]);
      }
    },
    async forSubjects(digests, predicateType) {
      const list = [...new Set(digests)].slice(0, MAX_LOOKUP);
      if (list.length === 0) return [];
      const typeFilter = predicateType === undefined ? '' : ' AND predicate_type = ?';
      const params = predicateType === undefined ? list : [...list, predicateType];
      const rows = await db.all<EvidenceRow>(
        `SELECT ${COLUMNS} FROM evidence WHERE digest IN (SELECT evidence FROM evidence_subjects WHERE subject IN (${placeholders(list)})${typeFilter}) ORDER BY stored_at, digest`,
        params,
      );
      return rows.map(fromRow);
    },
    async digestsForSubjects(digests) {
      const list = [...new Set(digests)].slice(0, MAX_LOOKUP);
      if (list.length === 0) return [];
      const rows = await db.all<{ evidence: string }>(`SELECT DISTINCT evidence FROM evidence_subjects WHERE subject IN (${placeholders(list)})`, list);
      return rows.map((r) => r.evidence);
    },
  };
}
