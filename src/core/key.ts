import type { DigestString } from './digest.ts';

export const KEY_ALGORITHMS = ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export const KEY_PURPOSES = ['sign-artifact', 'attest', 'promotion-receipt', 'policy', 'log-checkpoint'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];

export type KeyStatus = 'active' | 'retired' | 'revoked';
export type KeyBackend = 'file' | 'pkcs11' | 'external';

/** Public facts about one version of a named key. Never holds private material. */
export interface KeyRecord {
  /** Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
  keyid: string;
  name: string;
  version: number;
  algorithm: KeyAlgorithm;
  owner: string;
  purposes: KeyPurpose[];
  notBefore: string;
  notAfter: string | null;
  status: KeyStatus;
  /** When a retired version stops signing: rotation time plus overlap, or the retire time. */
  retiredAt: string | null;
  revokedAt: string | null;
  revocationReason: string | null;
  /** Signatures made at or after this instant do not verify. */
  compromisedSince: string | null;
  backend: KeyBackend;
  publicKeyPem: string;
  createdAt: string;
  createdBy: string;
}

export function keyLabel(k: Pick<KeyRecord, 'name' | 'version'>): string {
  return `${k.name}@${k.version}`;
}

export interface KeyValidity {
  ok: boolean;
  code?: 'KEY_PURPOSE' | 'KEY_NOT_YET_VALID' | 'KEY_EXPIRED' | 'KEY_RETIRED' | 'KEY_REVOKED' | 'KEY_COMPROMISED';
  reason?: string;
}

/**
 * Was this key valid for this purpose at time `at`? The one rule every verifier uses.
 *
 * - the window is [notBefore, notAfter): start inclusive, end exclusive;
 * - a retired key verifies what was signed before `retiredAt`;
 * - a revoked key verifies nothing signed at or after `compromisedSince`
 *   (defaulting to `revokedAt`), and nothing signed after it was revoked.
 *
 * `at` is the signing time for verification and the reference time for signing.
 */
export function keyValidAt(key: KeyRecord, purpose: KeyPurpose, at: Date): KeyValidity {
  const t = at.getTime();
  const label = keyLabel(key);
  if (!key.purposes.includes(purpose)) {
    return { ok: false, code: 'KEY_PURPOSE', reason: `key ${label} is not trusted for ${purpose} (purposes: ${key.purposes.join(', ')})` };
  }
  if (t < Date.parse(key.notBefore)) {
    return { ok: false, code: 'KEY_NOT_YET_VALID', reason: `key ${label} was not valid before ${key.notBefore}` };
  }
  if (key.notAfter !== null && t >= Date.parse(key.notAfter)) {
    return { ok: false, code: 'KEY_EXPIRED', reason: `key ${label} expired ${key.notAfter}` };
  }
  if (key.status === 'revoked') {
    const since = key.compromisedSince ?? key.revokedAt;
    if (since !== null && t >= Date.parse(since)) {
      const why = key.compromisedSince !== null ? `compromised since ${key.compromisedSince}` : `revoked ${key.revokedAt ?? ''}`;
      return { ok: false, code: 'KEY_COMPROMISED', reason: `key ${label} ${why} (${key.revocationReason ?? 'no reason given'})` };
    }
    if (key.revokedAt !== null && t >= Date.parse(key.revokedAt)) {
      return { ok: false, code: 'KEY_REVOKED', reason: `key ${label} revoked ${key.revokedAt}` };
    }
  }
  if (key.retiredAt !== null && t >= Date.parse(key.retiredAt)) {
    return { ok: false, code: 'KEY_RETIRED', reason: `key ${label} retired ${key.retiredAt}; it only verifies what it signed before` };
  }
  return { ok: true };
}

/**
 * May this key make a new signature now? Stricter than `keyValidAt`: a revoked
 * key never signs again, even for instants before its compromise.
 */
export function keyMaySign(key: KeyRecord, purpose: KeyPurpose, now: Date): KeyValidity {
  if (key.status === 'revoked') {
    return { ok: false, code: 'KEY_REVOKED', reason: `key ${keyLabel(key)} is revoked and can never sign again` };
  }
  if (key.backend === 'external') {
    return { ok: false, code: 'KEY_PURPOSE', reason: `key ${keyLabel(key)} is external: Custody holds only its public half` };
  }
  return keyValidAt(key, purpose, now);
}

/** Trust material handed to verifiers as a value: the keys, indexed by keyid. */
export interface TrustedKeys {
  byKeyid: ReadonlyMap<string, KeyRecord>;
}

export function toTrustedKeys(keys: Iterable<KeyRecord>): TrustedKeys {
  const byKeyid = new Map<string, KeyRecord>();
  for (const k of keys) byKeyid.set(k.keyid, k);
  return { byKeyid };
}

/** A content-addressed reference to a key's public half, as recorded in log entries. */
export interface KeyRef {
  keyid: string;
  name: string;
  version: number;
  spki: DigestString;
}
