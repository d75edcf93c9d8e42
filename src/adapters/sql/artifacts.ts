import type { Artifact } from '../../core/artifact.ts';
import type { DigestString } from '../../core/digest.ts';
import type { ArtifactFilter, ArtifactRepository } from '../../core/ports.ts';
import type { SqlExecutor } from './executor.ts';
import { toInt } from './executor.ts';

interface ArtifactRow {
  digest: string;
  name: string;
  version: string;
  size: unknown;
  digests: string;
  labels: string;
  source: string | null;
  stored: unknown;
  created_at: string;
  created_by: string;
}

const COLUMNS = 'digest, name, version, size, digests, labels, source, stored, created_at, created_by';
/** Rows read at a time while filtering by label. */
const LABEL_PAGE = 500;

function fromRow(r: ArtifactRow): Artifact {
  return {
    digest: r.digest as DigestString,
    name: r.name,
    version: r.version,
    size: r.size === null ? null : toInt(r.size),
    digests: JSON.parse(r.digests) as Artifact['digests'],
    labels: JSON.parse(r.labels) as Record<string, string>,
    source: r.source === null ? null : (JSON.parse(r.source) as Artifact['source']),
    stored: toInt(r.stored) === 1,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

export function artifactRepository(db: SqlExecutor): ArtifactRepository {
  return {
    async byDigest(digest) {
      const r = await db.get<ArtifactRow>(`SELECT ${COLUMNS} FROM artifacts WHERE digest = ?`, [digest]);
      return r && fromRow(r);
    },
    async byNameVersion(name, version) {
      const r = await db.get<ArtifactRow>(`SELECT ${COLUMNS} FROM artifacts WHERE name = ? AND version = ?`, [name, version]);
      return r && fromRow(r);
    },
    async versionsOf(name) {
      const rows = await db.all<ArtifactRow>(`SELECT ${COLUMNS} FROM artifacts WHERE name = ? ORDER BY created_at DESC`, [name]);
      return rows.map(fromRow);
    },
    async insert(a) {
      await db.run(`INSERT INTO artifacts (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        a.digest,
        a.name,
        a.version,
        a.size,
        JSON.stringify(a.digests),
        JSON.stringify(a.labels),
        a.source === null ? null : JSON.stringify(a.source),
        a.stored ? 1 : 0,
        a.createdAt,
        a.createdBy,
      ]);
    },
    async list(filter: ArtifactFilter = {}) {
      const limit = Math.min(Math.max(filter.limit ?? 1000, 1), 10_000);
      const label = filter.label !== undefined && Object.keys(filter.label).length > 0 ? filter.label : undefined;
      // artifacts_created (or artifacts_name with a name) gives this order, so a page reads only its own rows.
      const page = async (size: number, after: ArtifactRow | undefined): Promise<ArtifactRow[]> => {
        const where: string[] = [];
        const params: string[] = [];
        if (filter.name !== undefined) {
          where.push('name = ?');
          params.push(filter.name);
        }
        if (after) {
          where.push('(created_at < ? OR (created_at = ? AND (name > ? OR (name = ? AND version > ?))))');
          params.push(after.created_at, after.created_at, after.name, after.name, after.version);
        }
        return db.all<ArtifactRow>(`SELECT ${COLUMNS} FROM artifacts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, name, version LIMIT ${size}`, params);
      };
      if (!label) return (await page(limit, undefined)).map(fromRow);
      // Labels are JSON text, with no JSON predicate both databases share: they are matched here, page by page
      // newest first, until `limit` match (not among the newest `limit` only) or no rows are left.
      const out: Artifact[] = [];
      let after: ArtifactRow | undefined;
      for (;;) {
        const rows = await page(LABEL_PAGE, after);
        for (const r of rows) {
          const a = fromRow(r);
          if (Object.entries(label).every(([k, v]) => a.labels[k] === v)) out.push(a);
          if (out.length === limit) return out;
        }
        if (rows.length < LABEL_PAGE) return out;
        after = rows.at(-1);
      }
    },
  };
}
