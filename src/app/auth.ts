/**
 * Authentication: an `Authorization: Bearer …` value to an Actor, or a coded
 * refusal. Two kinds of credential:
 *
 * - Custody API tokens (`cst_<id>_<secret>`): looked up by id, the secret
 *   checked against the stored salted hash in constant time, then expiry and
 *   revocation checked against the request time.
 * - OIDC JWTs from a configured CI issuer: the issuer is looked up by the exact
 *   `iss`, then jose verifies the signature with that issuer's keys and ONLY the
 *   algorithm pinned for it in custody.yaml (the header's `alg` never chooses),
 *   plus iss, aud, exp, nbf and iat within the configured skew; the claims then
 *   map to an identity and roles (src/core/oidc.ts).
 *
 * Messages say what was wrong with the credential, never what was expected
 * of a secret.
 */
import { isAbsolute, join } from 'node:path';
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { fileJwks, urlJwks, type Jwks, type JwksSource } from '../adapters/jwks.ts';
import type { OidcIssuerConfig, ServerConfig } from '../core/config.ts';
import { CustodyError } from '../core/errors.ts';
import type { Actor } from '../core/identity.ts';
import { mapWorkload } from '../core/oidc.ts';
import type { Clock, Store } from '../core/ports.ts';
import { DUMMY_TOKEN, looksLikeApiToken, parseToken, secretMatches, tokenStatus } from '../core/token.ts';
import { cachedToken, rememberToken } from './tokens.ts';

export type AuthMethod = 'token' | 'oidc';

export interface Authenticated {
  actor: Actor;
  method: AuthMethod;
  /** The API token id, for the request log (never the secret). */
  tokenId?: string;
}

export interface AuthenticatorOptions {
  store: Store;
  clock: Clock;
  /** The workspace directory: relative JWKS files are read from here. */
  home: string;
  server: Pick<ServerConfig, 'tokenCacheSeconds' | 'maxBearerBytes' | 'oidc'>;
  /** Tests inject key sources; otherwise they come from the issuer config. */
  jwks?: (issuer: OidcIssuerConfig) => JwksSource;
}

interface Issuer {
  config: OidcIssuerConfig;
  source: JwksSource;
  resolver?: { set: Jwks; get: JWTVerifyGetKey };
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class Authenticator {
  private readonly options: AuthenticatorOptions;
  private readonly issuers = new Map<string, Issuer>();

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    for (const config of options.server.oidc.issuers) {
      const source = options.jwks
        ? options.jwks(config)
        : config.jwksFile !== undefined
          ? fileJwks(isAbsolute(config.jwksFile) ? config.jwksFile : join(options.home, config.jwksFile), config.jwksMaxBytes)
          : urlJwks(config.jwksUri ?? '', { maxBytes: config.jwksMaxBytes, cacheSeconds: config.jwksCacheSeconds });
      this.issuers.set(config.issuer, { config, source });
    }
  }

  /** `header` is the raw Authorization header value, if any. */
  async authenticate(header: string | undefined): Promise<Authenticated> {
    if (header === undefined || header === '') {
      throw new CustodyError('AUTH_REQUIRED', 'this request needs a bearer token', {
        hint: 'send Authorization: Bearer <token> (the CLI reads it from CUSTODY_TOKEN)',
      });
    }
    if (header.length > this.options.server.maxBearerBytes + 16) {
      throw new CustodyError('AUTH_INVALID', `the Authorization header is longer than ${this.options.server.maxBearerBytes} bytes`);
    }
    const m = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
    if (!m) throw new CustodyError('AUTH_INVALID', 'the Authorization header is not "Bearer <token>"');
    const bearer = m[1] ?? '';
    if (looksLikeApiToken(bearer)) return this.apiToken(bearer);
    if (JWT_RE.test(bearer)) return this.jwt(bearer);
    throw new CustodyError('AUTH_INVALID', 'the bearer token is neither a Custody API token nor a JWT');
  }

  private async apiToken(bearer: string): Promise<Authenticated> {
    const parsed = parseToken(bearer);
    if (!parsed) throw new CustodyError('AUTH_INVALID', 'malformed API token');
    const { store, clock, server } = this.options;
    const now = clock.now();
    const maxAge = server.tokenCacheSeconds * 1000;
    let record = maxAge > 0 ? cachedToken(store, parsed.id, maxAge, now.getTime()) : undefined;
    if (!record) {
      record = await store.read((tx) => tx.tokens.byId(parsed.id));
      if (record && maxAge > 0) rememberToken(store, record, now.getTime());
    }
    // Compare even when the id is unknown, so a miss and a wrong secret cost the same.
    const ok = secretMatches(record ?? DUMMY_TOKEN, parsed.secret);
    if (!record || !ok) throw new CustodyError('AUTH_INVALID', 'unknown API token');
    const status = tokenStatus(record, now);
    if (status === 'revoked') throw new CustodyError('AUTH_INVALID', `API token ${record.id} was revoked`, { hint: 'ask a key-admin for a new token' });
    if (status === 'expired') throw new CustodyError('AUTH_INVALID', `API token ${record.id} expired at ${record.expiresAt ?? ''}`, { hint: 'ask a key-admin for a new token' });
    const actor: Actor = { identity: record.identity, roles: record.roles, ...(record.environments === null ? {} : { environments: record.environments }) };
    return { actor, method: 'token', tokenId: record.id };
  }

  private async jwt(bearer: string): Promise<Authenticated> {
    let iss: unknown;
    try {
      iss = decodeJwt(bearer).iss;
    } catch (e) {
      throw new CustodyError('AUTH_INVALID', 'malformed JWT', { cause: e });
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) throw new CustodyError('AUTH_INVALID', 'the JWT comes from an issuer this server does not trust');
    const { config } = issuer;
    let payload: Record<string, unknown>;
    try {
      const verified = await jwtVerify(bearer, (header, token) => this.key(issuer, header, token), {
        issuer: config.issuer,
        audience: config.audience,
        // Pinned per issuer: `alg: none`, HS256-with-the-public-key and any other swap fail here.
        algorithms: [config.algorithm],
        clockTolerance: config.clockSkewSeconds,
        maxTokenAge: config.maxTokenAgeSeconds,
        requiredClaims: ['exp', 'iat'],
        currentDate: this.options.clock.now(),
      });
      payload = verified.payload;
    } catch (e) {
      if (e instanceof CustodyError) throw e;
      throw new CustodyError('AUTH_INVALID', `the JWT was refused: ${joseReason(e)}`, { cause: e });
    }
    return { actor: mapWorkload(config, payload), method: 'oidc' };
  }

  /** The issuer's key for this token; one fresh fetch of the set when the kid is unknown (rotation). */
  private async key(issuer: Issuer, header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) {
    const resolve = async () => {
      const set = await issuer.source.get();
      if (issuer.resolver?.set !== set) issuer.resolver = { set, get: createLocalJWKSet(set) };
      return issuer.resolver.get(header, token);
    };
    try {
      return await resolve();
    } catch (e) {
      if (e instanceof joseErrors.JWKSNoMatchingKey && (await issuer.source.refresh().catch(() => false))) return resolve();
      throw e;
    }
  }
}

function joseReason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'it has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim "${e.claim}" failed (${e.reason})`;
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not the one configured for this issuer';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return "no key in the issuer's JWKS matches it";
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return 'several keys in the JWKS match it';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (e instanceof joseErrors.JOSEError) return e.code;
  return 'it could not be verified';
}
