import type { DigestString } from './digest.ts';
import { CustodyError } from './errors.ts';

export const KEY_ALGORITHMS = ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export const KEY_PURPOSES = ['sign-artifact', 'attest', 'promotion-receipt', 'policy', 'log-checkpoint'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];

export const KEY_STATUSES = ['active', 'retired', 'revoked'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];
export const KEY_BACKENDS = ['file', 'pkcs11', 'external'] as const;
export type KeyBackend = (typeof KEY_BACKENDS)[number];

/** Why a key was revoked; the names follow RFC 5280's CRLReason, in Custody's spelling. */
export const REVOCATION_REASONS = ['compromised', 'superseded', 'cessation-of-operation', 'affiliation-changed', 'unspecified'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** Purposes whose keys decide what reaches production: only a key-admin creates, rotates, retires or revokes them. */
export const ADMIN_PURPOSES: readonly KeyPurpose[] = ['promotion-receipt', 'policy'];

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
  // The key's label is formatted only for a refusal: this runs once per signature in bulk verification.
  const t = at.getTime();
  if (!key.purposes.includes(purpose)) {
    return { ok: false, code: 'KEY_PURPOSE', reason: `key ${keyLabel(key)} is not trusted for ${purpose} (purposes: ${key.purposes.join(', ')})` };
  }
  if (t < Date.parse(key.notBefore)) {
    return { ok: false, code: 'KEY_NOT_YET_VALID', reason: `key ${keyLabel(key)} was not valid before ${key.notBefore}` };
  }
  if (key.notAfter !== null && t >= Date.parse(key.notAfter)) {
    return { ok: false, code: 'KEY_EXPIRED', reason: `key ${keyLabel(key)} expired ${key.notAfter}` };
  }
  if (key.status === 'revoked') {
    const since = key.compromisedSince ?? key.revokedAt;
    if (since !== null && t >= Date.parse(since)) {
      const why = key.compromisedSince !== null ? `compromised since ${key.compromisedSince}` : `revoked ${key.revokedAt ?? ''}`;
      return { ok: false, code: 'KEY_COMPROMISED', reason: `key ${keyLabel(key)} ${why} (${key.revocationReason ?? 'no reason given'})` };
    }
    if (key.revokedAt !== null && t >= Date.parse(key.revokedAt)) {
      return { ok: false, code: 'KEY_REVOKED', reason: `key ${keyLabel(key)} revoked ${key.revokedAt}` };
    }
  }
  if (key.retiredAt !== null && t >= Date.parse(key.retiredAt)) {
    return { ok: false, code: 'KEY_RETIRED', reason: `key ${keyLabel(key)} retired ${key.retiredAt}; it only verifies what it signed before` };
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

// ---------------------------------------------------------------- names and input

// No '@' (it separates the version) and no '/' (names never become paths, but keep them boring).
const KEY_NAME_RE = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const KEY_VERSION_RE = /^[1-9]\d{0,8}$/;

export function validateKeyName(name: string): string {
  if (!KEY_NAME_RE.test(name)) {
    throw new CustodyError('NAME_INVALID', `"${name}" is not a valid key name`, {
      hint: 'lowercase letters, digits and . _ - (at most 64), e.g. release or ci-attest',
    });
  }
  return name;
}

/** `release` or `release@2`: how users address a key, or one version of it. */
export interface KeyAddress {
  name: string;
  version: number | undefined;
}

export function parseKeyAddress(input: string): KeyAddress {
  const at = input.indexOf('@');
  if (at < 0) return { name: validateKeyName(input), version: undefined };
  const name = validateKeyName(input.slice(0, at));
  const v = input.slice(at + 1);
  if (!KEY_VERSION_RE.test(v)) {
    throw new CustodyError('INPUT_INVALID', `"${input}": the version after @ must be a positive integer`, { hint: `e.g. ${name}@2` });
  }
  return { name, version: Number(v) };
}

export function parseKeyAlgorithm(input: string): KeyAlgorithm {
  if (!(KEY_ALGORITHMS as readonly string[]).includes(input)) {
    throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `unknown key algorithm "${input}"`, { hint: `use one of ${KEY_ALGORITHMS.join(', ')}` });
  }
  return input as KeyAlgorithm;
}

export function parseKeyPurposes(input: readonly string[]): KeyPurpose[] {
  const out: KeyPurpose[] = [];
  for (const p of input) {
    if (!(KEY_PURPOSES as readonly string[]).includes(p)) {
      throw new CustodyError('INPUT_INVALID', `unknown key purpose "${p}"`, { hint: `purposes: ${KEY_PURPOSES.join(', ')}` });
    }
    if (!out.includes(p as KeyPurpose)) out.push(p as KeyPurpose);
  }
  if (out.length === 0) throw new CustodyError('INPUT_INVALID', 'a key needs at least one purpose', { hint: `purposes: ${KEY_PURPOSES.join(', ')}` });
  return out;
}

export function parseRevocationReason(input: string): RevocationReason {
  if (!(REVOCATION_REASONS as readonly string[]).includes(input)) {
    throw new CustodyError('INPUT_INVALID', `unknown revocation reason "${input}"`, { hint: `reasons: ${REVOCATION_REASONS.join(', ')}` });
  }
  return input as RevocationReason;
}

const KEYID_RE = /^[0-9a-f]{64}$/;

export function validateKeyid(input: string): string {
  const k = input.toLowerCase();
  if (!KEYID_RE.test(k)) throw new CustodyError('INPUT_INVALID', `"${input}" is not a key id (64 hex digits: the SHA-256 of the SPKI)`);
  return k;
}

export function needsKeyAdmin(purposes: readonly KeyPurpose[]): boolean {
  return purposes.some((p) => ADMIN_PURPOSES.includes(p));
}

// ---------------------------------------------------------------- lifecycle (pure)

export interface NewKeyInput {
  keyid: string;
  name: string;
  version: number;
  algorithm: KeyAlgorithm;
  owner: string;
  purposes: KeyPurpose[];
  backend: KeyBackend;
  publicKeyPem: string;
  /** The operation's reference time: the key is valid from here. */
  now: Date;
  /** Validity length in milliseconds; null for no expiry. */
  validForMs: number | null;
  createdBy: string;
}

export function newKeyRecord(i: NewKeyInput): KeyRecord {
  const at = i.now.toISOString();
  return {
    keyid: i.keyid,
    name: i.name,
    version: i.version,
    algorithm: i.algorithm,
    owner: i.owner,
    purposes: [...i.purposes],
    notBefore: at,
    notAfter: i.validForMs === null ? null : new Date(i.now.getTime() + i.validForMs).toISOString(),
    status: 'active',
    retiredAt: null,
    revokedAt: null,
    revocationReason: null,
    compromisedSince: null,
    backend: i.backend,
    publicKeyPem: i.publicKeyPem,
    createdAt: at,
    createdBy: i.createdBy,
  };
}

/** The newest version number of a name, or 0 when the name is new. */
export function latestVersion(versions: readonly KeyRecord[]): number {
  return versions.reduce((m, k) => Math.max(m, k.version), 0);
}

/** The validity length a rotation carries over to the next version. */
export function validityLength(key: KeyRecord): number | null {
  return key.notAfter === null ? null : Date.parse(key.notAfter) - Date.parse(key.notBefore);
}

/**
 * Retires a version: verify-only from `until` on (now, or now plus a rotation
 * overlap). Retiring again only ever brings the end closer; a revoked key stays
 * revoked, so retiring it is refused.
 */
export function retireKey(key: KeyRecord, until: Date, now: Date): KeyRecord {
  const label = keyLabel(key);
  if (key.status === 'revoked') {
    throw new CustodyError('KEY_STATE_INVALID', `key ${label} is revoked; revocation is permanent and cannot become a retirement`);
  }
  if (key.retiredAt !== null && Date.parse(key.retiredAt) <= now.getTime()) {
    throw new CustodyError('KEY_STATE_INVALID', `key ${label} is already retired (since ${key.retiredAt})`);
  }
  const at = key.retiredAt !== null && Date.parse(key.retiredAt) < until.getTime() ? key.retiredAt : until.toISOString();
  return { ...key, status: 'retired', retiredAt: at };
}

export interface Revocation {
  reason: RevocationReason;
  /** Signatures made at or after this instant stop verifying; defaults to now. */
  compromisedSince?: Date;
  now: Date;
}

/**
 * Revokes a version, permanently. `compromisedSince` may not lie in the future
 * (a future instant would leave a compromised key verifying until then). A
 * second revocation may only move `compromisedSince` earlier, never later:
 * widening the blast radius is safe, narrowing it would re-trust signatures.
 */
export function revokeKey(key: KeyRecord, r: Revocation): KeyRecord {
  const label = keyLabel(key);
  const since = r.compromisedSince ?? r.now;
  if (since.getTime() > r.now.getTime()) {
    throw new CustodyError('INPUT_INVALID', `compromisedSince ${since.toISOString()} is in the future`, {
      hint: 'give the earliest instant the key may have been in someone else\'s hands, at or before now',
    });
  }
  if (key.status === 'revoked') {
    const previous = key.compromisedSince ?? key.revokedAt;
    if (previous !== null && since.getTime() >= Date.parse(previous)) {
      throw new CustodyError('KEY_STATE_INVALID', `key ${label} is already revoked (compromised since ${previous}); revocation is permanent`, {
        hint: 'revoking again is only allowed to move --compromised-since earlier',
      });
    }
    return { ...key, compromisedSince: since.toISOString(), revocationReason: r.reason };
  }
  return { ...key, status: 'revoked', revokedAt: r.now.toISOString(), revocationReason: r.reason, compromisedSince: since.toISOString() };
}

/** Resolves `name` or `name@version` among the versions of one name. */
export function selectVersion(versions: readonly KeyRecord[], address: KeyAddress): KeyRecord | undefined {
  if (address.version !== undefined) return versions.find((k) => k.version === address.version);
  return versions.reduce<KeyRecord | undefined>((best, k) => (best === undefined || k.version > best.version ? k : best), undefined);
}

/**
 * The key `loadSigner` uses: the newest version that may sign for `purpose` at
 * `now` (an active version, or a retired one still inside its rotation overlap).
 * When none may, the newest version's reason says why.
 */
export function chooseSigningKey(versions: readonly KeyRecord[], purpose: KeyPurpose, now: Date): { key: KeyRecord } | { refusal: KeyValidity & { key: KeyRecord } } | undefined {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  let firstRefusal: (KeyValidity & { key: KeyRecord }) | undefined;
  for (const k of newestFirst) {
    const v = keyMaySign(k, purpose, now);
    if (v.ok) return { key: k };
    firstRefusal ??= { ...v, key: k };
  }
  return firstRefusal === undefined ? undefined : { refusal: firstRefusal };
}

/** What a key can do at `now`, in one word for listings. */
export type KeyState = 'active' | 'overlap' | 'retired' | 'revoked' | 'expired' | 'not-yet-valid';

export function keyStateAt(key: KeyRecord, now: Date): KeyState {
  const t = now.getTime();
  if (key.status === 'revoked') return 'revoked';
  if (key.retiredAt !== null) return t < Date.parse(key.retiredAt) ? 'overlap' : 'retired';
  if (t < Date.parse(key.notBefore)) return 'not-yet-valid';
  if (key.notAfter !== null && t >= Date.parse(key.notAfter)) return 'expired';
  return 'active';
}
