import { createHmac, randomBytes } from 'node:crypto';
import { bytesEqual } from './digest.ts';
import type { Role } from './identity.ts';

/**
 * API tokens. The string handed to a user is `cst_<id>_<secret>`: the id is
 * public (it names the token in `token list` and in the log), the secret is 256
 * random bits shown once. Only HMAC-SHA256(salt, secret) is stored, so a copy of
 * the database lets no one act. A slow password hash buys nothing here: the
 * secret is random, not chosen by a person, and would cost every request.
 */
export const TOKEN_PREFIX = 'cst_';
const TOKEN_RE = /^cst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ApiTokenRecord {
  id: string;
  identity: string;
  roles: Role[];
  /** Environments the token may act on; null means every environment. */
  environments: string[] | null;
  description: string | null;
  /** Hex. */
  salt: string;
  /** Hex HMAC-SHA256(salt, secret). */
  hash: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

export type TokenStatus = 'active' | 'expired' | 'revoked';

export interface NewToken {
  /** The bearer string, shown once. */
  token: string;
  id: string;
  salt: string;
  hash: string;
}

export function generateToken(): NewToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  return { token: `${TOKEN_PREFIX}${id}_${secret}`, id, salt, hash: hashSecret(salt, secret) };
}

export function hashSecret(saltHex: string, secret: string): string {
  return createHmac('sha256', Buffer.from(saltHex, 'hex')).update(secret, 'utf8').digest('hex');
}

/** Splits a bearer string into id and secret, or undefined when it is not shaped like a Custody token. */
export function parseToken(bearer: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(bearer);
  return m ? { id: m[1] ?? '', secret: m[2] ?? '' } : undefined;
}

export function looksLikeApiToken(bearer: string): boolean {
  return bearer.startsWith(TOKEN_PREFIX);
}

/** Constant-time check of a presented secret against the stored hash. */
export function secretMatches(record: Pick<ApiTokenRecord, 'salt' | 'hash'>, secret: string): boolean {
  return bytesEqual(Buffer.from(hashSecret(record.salt, secret), 'hex'), Buffer.from(record.hash, 'hex'));
}

// A fixed salt and hash that no secret matches, compared against when the id is
// unknown so that a miss costs the same as a wrong secret.
export const DUMMY_TOKEN: Pick<ApiTokenRecord, 'salt' | 'hash'> = { salt: '00'.repeat(16), hash: 'ff'.repeat(32) };

export function tokenStatus(t: Pick<ApiTokenRecord, 'expiresAt' | 'revokedAt'>, now: Date): TokenStatus {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt !== null && Date.parse(t.expiresAt) <= now.getTime()) return 'expired';
  return 'active';
}

/** What `token list` and the API show: everything but the salt and the hash. */
export interface TokenInfo {
  id: string;
  identity: string;
  roles: Role[];
  environments: string[] | null;
  description: string | null;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  status: TokenStatus;
}

export function tokenInfo(t: ApiTokenRecord, now: Date): TokenInfo {
  return {
    id: t.id,
    identity: t.identity,
    roles: t.roles,
    environments: t.environments,
    description: t.description,
    createdAt: t.createdAt,
    createdBy: t.createdBy,
    expiresAt: t.expiresAt,
    revokedAt: t.revokedAt,
    revokedBy: t.revokedBy,
    status: tokenStatus(t, now),
  };
}
