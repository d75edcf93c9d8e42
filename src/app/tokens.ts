/**
 * API token use cases. The rule for who may manage tokens, stated once:
 *
 * - creating, listing and revoking tokens needs the `key-admin` role (a token is
 *   a credential, like a signing key);
 * - a token may carry only roles its creator holds, and only environments within
 *   the creator's own scope, so minting a token never widens anyone's powers;
 * - the secret is returned once, by `createToken`; only its salted hash is kept.
 *
 * The first token is made locally (`custody token create` on the server's
 * workspace), by the identity `custody init` wrote, which holds every role.
 */
import { CustodyError } from '../core/errors.ts';
import { requireRole, validateIdentity, type Role } from '../core/identity.ts';
import type { Store } from '../core/ports.ts';
import { formatInstant, parseDuration } from '../core/time.ts';
import { generateToken, tokenInfo, type ApiTokenRecord, type TokenInfo } from '../core/token.ts';
import { auditRefusal } from './audit.ts';
import type { Context } from './workspace.ts';

export const DEFAULT_TOKEN_LIFETIME = '90d';
const TOKEN_ID_RE = /^[0-9a-f]{16}$/;
const ENV_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface CreateTokenInput {
  identity: string;
  roles: readonly Role[];
  environments?: readonly string[] | undefined;
  /** A duration (`30d`) or `never`; default 90 days. */
  expires?: string | undefined;
  description?: string | undefined;
}

export async function createToken(ctx: Context, input: CreateTokenInput): Promise<{ token: string; info: TokenInfo }> {
  const now = ctx.clock.now();
  try {
    requireRole(ctx.actor, 'key-admin', 'creating an API token');
    const identity = validateIdentity(input.identity);
    const roles = [...new Set(input.roles)];
    const missing = roles.filter((r) => !ctx.actor.roles.includes(r));
    if (missing.length > 0) {
      throw new CustodyError('FORBIDDEN', `${ctx.actor.identity} cannot grant ${missing.join(', ')}: a token carries only roles its creator holds`);
    }
    const environments = input.environments === undefined ? null : [...new Set(input.environments)];
    for (const env of environments ?? []) {
      if (!ENV_RE.test(env)) throw new CustodyError('INPUT_INVALID', `"${env}" is not an environment name`, { hint: 'lowercase letters, digits and -' });
    }
    const scope = ctx.actor.environments;
    if (scope !== undefined && (environments === null || environments.some((e) => !scope.includes(e)))) {
      throw new CustodyError('FORBIDDEN', `${ctx.actor.identity} is limited to ${scope.join(', ') || 'no environment'}; its tokens must be too`, {
        hint: `pass --env for each of: ${scope.join(', ')}`,
      });
    }
    const expires = input.expires ?? DEFAULT_TOKEN_LIFETIME;
    const expiresAt = expires === 'never' ? null : formatInstant(new Date(now.getTime() + parseDuration(expires)));
    const description = input.description?.trim() || null;
    if (description !== null && description.length > 200) throw new CustodyError('INPUT_INVALID', 'a token description is at most 200 characters');

    const fresh = generateToken();
    const record: ApiTokenRecord = {
      id: fresh.id,
      identity,
      roles,
      environments,
      description,
      salt: fresh.salt,
      hash: fresh.hash,
      createdAt: formatInstant(now),
      createdBy: ctx.actor.identity,
      expiresAt,
      revokedAt: null,
      revokedBy: null,
    };
    await ctx.store.transaction(async (tx) => {
      await tx.tokens.insert(record);
      await tx.log.append({
        type: 'token.created',
        actor: ctx.actor.identity,
        time: record.createdAt,
        subject: `token:${record.id}`,
        // Never the secret, nor its hash: the log is shared with auditors.
        payload: { identity, roles, environments, expiresAt, description },
      });
    });
    return { token: fresh.token, info: tokenInfo(record, now) };
  } catch (e) {
    return auditRefusal(ctx, 'token.create', undefined, e);
  }
}

export async function listTokens(ctx: Context): Promise<TokenInfo[]> {
  const now = ctx.clock.now();
  requireRole(ctx.actor, 'key-admin', 'listing API tokens');
  return ctx.store.read(async (tx) => (await tx.tokens.list()).map((t) => tokenInfo(t, now)));
}

/** Idempotent: revoking a revoked token reports `revoked: false` and changes nothing. */
export async function revokeToken(ctx: Context, id: string): Promise<{ revoked: boolean; info: TokenInfo }> {
  const now = ctx.clock.now();
  const time = formatInstant(now);
  try {
    requireRole(ctx.actor, 'key-admin', 'revoking an API token');
    if (!TOKEN_ID_RE.test(id)) throw new CustodyError('TOKEN_NOT_FOUND', `no API token ${id}`, { hint: 'token ids are 16 hex characters; see `custody token list`' });
    const result = await ctx.store.transaction(async (tx) => {
      const existing = await tx.tokens.byId(id);
      if (!existing) throw new CustodyError('TOKEN_NOT_FOUND', `no API token ${id}`, { hint: 'see `custody token list`' });
      const revoked = await tx.tokens.revoke(id, time, ctx.actor.identity);
      if (revoked) {
        await tx.log.append({ type: 'token.revoked', actor: ctx.actor.identity, time, subject: `token:${id}`, payload: { identity: existing.identity } });
      }
      const after = (await tx.tokens.byId(id)) ?? existing;
      return { revoked, info: tokenInfo(after, now) };
    });
    forgetToken(ctx.store, id);
    return result;
  } catch (e) {
    return auditRefusal(ctx, 'token.revoke', `token:${id}`, e);
  }
}

// ---------------------------------------------------------------- verified-token cache

interface CachedToken {
  record: ApiTokenRecord;
  at: number;
}

// One cache per store object: every request context of a server shares its store,
// so a revocation through that server is seen by the next request at once.
const caches = new WeakMap<Store, Map<string, CachedToken>>();
const CACHE_MAX = 10_000;

export function cachedToken(store: Store, id: string, maxAgeMs: number, nowMs: number): ApiTokenRecord | undefined {
  const hit = caches.get(store)?.get(id);
  return hit && nowMs - hit.at < maxAgeMs ? hit.record : undefined;
}

export function rememberToken(store: Store, record: ApiTokenRecord, nowMs: number): void {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = new Map<string, CachedToken>()));
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(record.id, { record, at: nowMs });
}

export function forgetToken(store: Store, id: string): void {
  caches.get(store)?.delete(id);
}
