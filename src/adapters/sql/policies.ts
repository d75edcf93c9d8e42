import type { PolicyException } from '../../core/policy/types.ts';
import type { ExceptionFilter, ExceptionRepository, PolicyRepository, PolicyVersionRecord, PolicyVersionSummary } from '../../core/ports.ts';
import { TxCache } from './cache.ts';
import type { SqlExecutor } from './executor.ts';
import { toInt } from './executor.ts';

interface VersionRow {
  version: unknown;
  set_digest: string;
  bundle: string;
  keyid: string;
  published_at: string;
  published_by: string;
}

const SUMMARY = 'version, set_digest, keyid, published_at, published_by';

function summary(r: Omit<VersionRow, 'bundle'>): PolicyVersionSummary {
  return { version: toInt(r.version), setDigest: r.set_digest, keyid: r.keyid, publishedAt: r.published_at, publishedBy: r.published_by };
}

/** Published policy versions: each row holds the signed bundle as the store received it. */
export function policyRepository(db: SqlExecutor, cache: TxCache = new TxCache(db)): PolicyRepository {
  const full = (r: VersionRow | undefined): PolicyVersionRecord | undefined => (r ? { ...summary(r), bundle: r.bundle } : undefined);
  return {
    async latest() {
      // Every decision reads it: kept per connection while nothing is published (./cache.ts).
      return cache.latestPolicy(async () => full(await db.get<VersionRow>(`SELECT ${SUMMARY}, bundle FROM policy_versions ORDER BY version DESC LIMIT 1`)));
    },
    async byVersion(version) {
      return full(await db.get<VersionRow>(`SELECT ${SUMMARY}, bundle FROM policy_versions WHERE version = ?`, [version]));
    },
    async list() {
      const rows = await db.all<VersionRow>(`SELECT ${SUMMARY} FROM policy_versions ORDER BY version DESC`);
      return rows.map(summary);
    },
    async insert(r) {
      cache.dropPolicies();
      await db.run('INSERT INTO policy_versions (version, set_digest, bundle, keyid, published_at, published_by) VALUES (?, ?, ?, ?, ?, ?)', [
        r.version,
        r.setDigest,
        r.bundle,
        r.keyid,
        r.publishedAt,
        r.publishedBy,
      ]);
    },
  };
}

interface ExceptionRow {
  record: string;
}

/** Exceptions (waivers) as data: the whole record is JSON, with the columns queries need beside it. */
export function exceptionRepository(db: SqlExecutor): ExceptionRepository {
  const parse = (r: ExceptionRow) => JSON.parse(r.record) as PolicyException;
  return {
    async byId(id) {
      const r = await db.get<ExceptionRow>('SELECT record FROM policy_exceptions WHERE id = ?', [id]);
      return r && parse(r);
    },
    async list(filter: ExceptionFilter = {}) {
      const where: string[] = [];
      const params: string[] = [];
      if (filter.environment !== undefined) {
        where.push('environment = ?');
        params.push(filter.environment);
      }
      if (filter.unexpiredAt !== undefined) {
        where.push('expires_at > ?');
        params.push(filter.unexpiredAt);
      }
      const rows = await db.all<ExceptionRow>(`SELECT record FROM policy_exceptions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id`, params);
      return rows.map(parse);
    },
    async insert(e) {
      await db.run('INSERT INTO policy_exceptions (id, environment, record, expires_at, created_at) VALUES (?, ?, ?, ?, ?)', [e.id, e.environment, JSON.stringify(e), e.expiresAt, e.createdAt]);
    },
    async update(e) {
      await db.run('UPDATE policy_exceptions SET record = ? WHERE id = ?', [JSON.stringify(e), e.id]);
    },
  };
}
