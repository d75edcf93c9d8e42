import type { Role } from '../../core/identity.ts';
import type { TokenRepository } from '../../core/ports.ts';
import type { ApiTokenRecord } from '../../core/token.ts';
import type { SqlExecutor } from './executor.ts';

interface TokenRow {
  id: string;
  identity: string;
  roles: string;
  environments: string | null;
  description: string | null;
  salt: string;
  hash: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
}

const COLUMNS = 'id, identity, roles, environments, description, salt, hash, created_at, created_by, expires_at, revoked_at, revoked_by';

function fromRow(r: TokenRow): ApiTokenRecord {
  return {
    id: r.id,
    identity: r.identity,
    roles: JSON.parse(r.roles) as Role[],
    environments: r.environments === null ? null : (JSON.parse(r.environments) as string[]),
    description: r.description,
    salt: r.salt,
    hash: r.hash,
    createdAt: r.created_at,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
  };
}

export function tokenRepository(db: SqlExecutor): TokenRepository {
  return {
    async byId(id) {
      const r = await db.get<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE id = ?`, [id]);
      return r && fromRow(r);
    },
    async list() {
      const rows = await db.all<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens ORDER BY created_at DESC, id`);
      return rows.map(fromRow);
    },
    async insert(t) {
      await db.run(`INSERT INTO api_tokens (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        t.id,
        t.identity,
        JSON.stringify(t.roles),
        t.environments === null ? null : JSON.stringify(t.environments),
        t.description,
        t.salt,
        t.hash,
        t.createdAt,
        t.createdBy,
        t.expiresAt,
        t.revokedAt,
        t.revokedBy,
      ]);
    },
    async revoke(id, at, by) {
      const r = await db.run('UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL', [at, by, id]);
      return r.changes > 0;
    },
  };
}
