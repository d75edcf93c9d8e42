/**
 * Key use cases. CONTRACT (other modules code against these signatures):
 *
 * - `loadSigner(ctx, name, purpose)`: the newest version of the named key that may
 *   sign for `purpose` at `ctx.clock.now()` (active, or retired but within its
 *   rotation overlap), with a Signer whose private half is decrypted once per
 *   process (file backend) or stays in the HSM (pkcs11). `name@version` picks one
 *   version. Throws KEY_NOT_FOUND, KEY_NOT_USABLE (with the validity reason),
 *   KEK_MISSING, KEY_DECRYPT_FAILED, HSM_ERROR.
 * - `trustedKeys(tx)`: every key version the workspace knows, as trust material
 *   for verifiers (revoked and retired ones included: validity decides).
 */
import type { KeyObject } from 'node:crypto';
import { FileKeyStore, generateKeyPair, type KekSource } from '../adapters/keys-file.ts';
import { failpoint } from '../adapters/failpoints.ts';
import { readLimited } from '../adapters/read-limited.ts';
import { algorithmOf, keyidOf, parsePublicKeyPem, publicKeyPem, verifyBytes } from '../core/crypto.ts';
import { bytesEqual } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import { requireRole, validateIdentity } from '../core/identity.ts';
import {
  chooseSigningKey,
  keyLabel,
  keyMaySign,
  keyStateAt,
  latestVersion,
  needsKeyAdmin,
  newKeyRecord,
  parseKeyAddress,
  parseKeyAlgorithm,
  parseKeyPurposes,
  parseRevocationReason,
  retireKey,
  revokeKey,
  selectVersion,
  toTrustedKeys,
  validateKeyName,
  validateKeyid,
  validityLength,
  type KeyAlgorithm,
  type KeyPurpose,
  type KeyRecord,
  type KeyState,
  type TrustedKeys,
} from '../core/key.ts';
import type { PrivateKeyRef, Signer, Tx } from '../core/ports.ts';
import { parseDuration, parseInstant } from '../core/time.ts';
import { auditRefusal } from './audit.ts';
import type { Context } from './workspace.ts';

/** Purposes of a key created without `--purpose`: the everyday CI signing key. */
export const DEFAULT_PURPOSES: readonly KeyPurpose[] = ['sign-artifact', 'attest'];

/** The KEK comes from the environment only: never from a flag, a file in the workspace or the database. */
export function kekFromEnv(env: NodeJS.ProcessEnv = process.env): KekSource {
  return { passphrase: env['CUSTODY_KEY_PASSPHRASE'], kekFile: env['CUSTODY_KEK_FILE'] };
}

function fileKeys(ctx: Context): FileKeyStore {
  return new FileKeyStore(ctx.home, kekFromEnv());
}

// ---------------------------------------------------------------- provisioning

/** A private key that exists in its backend but is not yet recorded: publish inside the transaction, discard on failure. */
interface Provisioned {
  keyid: string;
  publicKey: KeyObject;
  /** Null for an external key: Custody holds no private half. */
  ref: PrivateKeyRef | null;
  publish: () => Promise<void>;
  finish: () => Promise<void>;
  discard: () => Promise<void>;
}

/** Where a new key's private half is made. */
export type BackendSpec = { backend: 'file' } | { backend: 'pkcs11'; module: string; slot: number; pinEnv: string };

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** The PIN is only ever read from the environment variable the key names, never from a flag or the database. */
function pinFrom(pinEnv: string, label: string): string {
  const pin = process.env[pinEnv];
  if (pin === undefined || pin === '') {
    throw new CustodyError('HSM_ERROR', `the PIN for ${label} is read from $${pinEnv}, which is not set`, {
      hint: `export ${pinEnv}=<user PIN of the token>`,
      details: { problem: 'pin' },
    });
  }
  return pin;
}

async function provision(ctx: Context, spec: BackendSpec, algorithm: KeyAlgorithm, label: string): Promise<Provisioned> {
  switch (spec.backend) {
    case 'file': {
      const store = fileKeys(ctx);
      await store.checkKek();
      await store.recover(async (keyid) => (await ctx.store.read((tx) => tx.keys.byKeyid(keyid))) !== undefined);
      const { privateKey, publicKey } = generateKeyPair(algorithm);
      const staged = await store.stage(privateKey, algorithm);
      return { keyid: staged.keyid, publicKey, ref: staged.ref, publish: staged.publish, finish: staged.finish, discard: staged.discard };
    }
    case 'pkcs11': {
      const pin = pinFrom(spec.pinEnv, label);
      // Loaded on use: a native addon that only HSM users need.
      const { generateInToken } = await import('../adapters/keys-pkcs11.ts');
      const made = await generateInToken({ module: spec.module, slot: spec.slot, pin, pinEnv: spec.pinEnv }, algorithm, `custody:${label}`);
      const done = () => Promise.resolve();
      return { keyid: made.keyid, publicKey: made.publicKey, ref: made.ref, publish: done, finish: done, discard: made.destroy };
    }
  }
}

async function signerFor(ctx: Context, key: KeyRecord, ref: PrivateKeyRef | null): Promise<Signer> {
  const label = keyLabel(key);
  if (ref === null) throw new CustodyError('KEY_NOT_USABLE', `key ${label} has no private half in Custody (backend ${key.backend})`);
  switch (ref.backend) {
    case 'file':
      return fileKeys(ctx).signer(key.keyid, key.algorithm, ref, label);
    case 'pkcs11': {
      const pin = pinFrom(ref.pinEnv, label);
      const { tokenSigner } = await import('../adapters/keys-pkcs11.ts');
      return tokenSigner(ref, pin, key.keyid, key.algorithm, label);
    }
  }
}

/** The backend a rotation uses: the same one, in the same place, as the version it replaces. */
function specOf(ref: PrivateKeyRef | null): BackendSpec | undefined {
  if (ref === null) return undefined;
  if (ref.backend === 'file') return { backend: 'file' };
  return { backend: 'pkcs11', module: ref.module, slot: ref.slot, pinEnv: ref.pinEnv };
}

// ---------------------------------------------------------------- create

export interface CreateKeyInput {
  name: string;
  algorithm?: string;
  purposes?: readonly string[];
  /** Validity length, e.g. 90d; none means no expiry. */
  expires?: string;
  backend?: string;
  owner?: string;
  /** PKCS#11 only: the module path, the slot id and the environment variable that holds the user PIN. */
  module?: string;
  slot?: string | number;
  pinEnv?: string;
}

function parseValidity(expires: string | undefined): number | null {
  if (expires === undefined) return null;
  const ms = parseDuration(expires);
  if (ms <= 0) throw new CustodyError('INPUT_INVALID', `--expires ${expires} would make a key that is never valid`);
  return ms;
}

function parseBackendSpec(input: CreateKeyInput): BackendSpec {
  const backend = input.backend ?? 'file';
  const hsmFlags = [input.module, input.slot, input.pinEnv].some((v) => v !== undefined);
  if (backend === 'file') {
    if (hsmFlags) throw new CustodyError('USAGE', '--module, --slot and --pin-env go with --backend pkcs11');
    return { backend };
  }
  if (backend === 'pkcs11') {
    if (input.module === undefined || input.slot === undefined || input.pinEnv === undefined) {
      throw new CustodyError('USAGE', '--backend pkcs11 needs --module PATH, --slot N and --pin-env VAR', {
        hint: 'e.g. --module /usr/lib/softhsm/libsofthsm2.so --slot 1234 --pin-env HSM_PIN (the PIN is read from $HSM_PIN)',
      });
    }
    const slot = typeof input.slot === 'number' ? input.slot : /^\d{1,15}$/.test(input.slot) ? Number(input.slot) : Number.NaN;
    if (!Number.isSafeInteger(slot) || slot < 0) throw new CustodyError('INPUT_INVALID', `--slot ${String(input.slot)} is not a slot id (a non-negative integer)`);
    if (!ENV_NAME_RE.test(input.pinEnv)) throw new CustodyError('INPUT_INVALID', `--pin-env ${input.pinEnv} is not an environment variable name`, { hint: 'pass the NAME of the variable holding the PIN, never the PIN' });
    if (input.module.length > 4096 || !input.module.startsWith('/')) throw new CustodyError('INPUT_INVALID', `--module ${input.module} must be an absolute path`);
    return { backend, module: input.module, slot, pinEnv: input.pinEnv };
  }
  if (backend === 'external') {
    throw new CustodyError('INPUT_INVALID', 'an external key is registered from its public key, not created', { hint: 'custody key import-public <name> <pem-file>' });
  }
  throw new CustodyError('INPUT_INVALID', `unknown key backend "${backend}"`, { hint: 'use file or pkcs11' });
}

function requireKeyAdminFor(ctx: Context, purposes: readonly KeyPurpose[], action: string): void {
  if (needsKeyAdmin(purposes)) requireRole(ctx.actor, 'key-admin', `${action} a key for ${purposes.join(', ')}`);
}

export async function createKey(ctx: Context, input: CreateKeyInput): Promise<KeyRecord> {
  const name = validateKeyName(input.name);
  const spec = parseBackendSpec(input);
  // Every PKCS#11 token has ECDSA P-256; Ed25519 is optional there.
  const algorithm = parseKeyAlgorithm(input.algorithm ?? (spec.backend === 'pkcs11' ? 'ecdsa-p256-sha256' : 'ed25519'));
  const purposes = parseKeyPurposes(input.purposes && input.purposes.length > 0 ? input.purposes : DEFAULT_PURPOSES);
  const validForMs = parseValidity(input.expires);
  const owner = validateIdentity(input.owner ?? ctx.actor.identity);
  const now = ctx.clock.now();
  try {
    requireKeyAdminFor(ctx, purposes, 'creating');
    await ctx.store.read((tx) => refuseExistingName(tx, name));
    const p = await provision(ctx, spec, algorithm, `${name}@1`);
    try {
      const record = newKeyRecord({
        keyid: p.keyid,
        name,
        version: 1,
        algorithm: algorithmOf(p.publicKey),
        owner,
        purposes,
        backend: spec.backend,
        publicKeyPem: publicKeyPem(p.publicKey),
        now,
        validForMs,
        createdBy: ctx.actor.identity,
      });
      await ctx.store.transaction(async (tx) => {
        await refuseExistingName(tx, name);
        await tx.keys.insert(record, p.ref);
        await tx.log.append({ type: 'key.created', actor: ctx.actor.identity, time: record.createdAt, subject: record.keyid, payload: createdPayload(record) });
        await p.publish();
        failpoint('key.create.before-commit');
      });
      await p.finish();
      return record;
    } catch (e) {
      await p.discard();
      throw e;
    }
  } catch (e) {
    return auditRefusal(ctx, 'key.create', name, e);
  }
}

async function refuseExistingName(tx: Tx, name: string): Promise<void> {
  const versions = await tx.keys.versionsOf(name);
  if (versions.length > 0) {
    throw new CustodyError('KEY_EXISTS', `a key named ${name} already exists (${versions.length} version${versions.length === 1 ? '' : 's'})`, {
      hint: `rotate it with \`custody key rotate ${name}\`, or pick another name`,
    });
  }
}

function createdPayload(k: KeyRecord): Record<string, unknown> {
  return {
    name: k.name,
    version: k.version,
    keyid: k.keyid,
    algorithm: k.algorithm,
    owner: k.owner,
    purposes: k.purposes,
    backend: k.backend,
    notBefore: k.notBefore,
    notAfter: k.notAfter,
  };
}

// ---------------------------------------------------------------- rotate, retire, revoke

export interface RotateKeyInput {
  name: string;
  /** How long the replaced version may keep signing, e.g. 7d; default none. */
  overlap?: string;
  /** Defaults to the replaced version's algorithm. */
  algorithm?: string;
  /** Defaults to the replaced version's validity length. */
  expires?: string;
  /** External keys only: the new public key, which Custody cannot generate: a PEM file here, or */
  publicKeyFile?: string;
  /** the PEM text itself (what a client sends: the server never opens a path it is given). */
  publicKeyPem?: string;
}

export interface RotateResult {
  key: KeyRecord;
  retired: KeyRecord[];
}

/**
 * Makes version n+1 of a name in the same backend, and retires every earlier
 * version that could still sign: from now, or from now + overlap. Retired
 * versions keep verifying what they signed before their retirement.
 */
export async function rotateKey(ctx: Context, input: RotateKeyInput): Promise<RotateResult> {
  const name = validateKeyName(input.name);
  const overlapMs = input.overlap === undefined ? 0 : parseDuration(input.overlap);
  const now = ctx.clock.now();
  const until = new Date(now.getTime() + overlapMs);
  try {
    const { latest, ref } = await ctx.store.read(async (tx) => {
      const versions = await tx.keys.versionsOf(name);
      const newest = selectVersion(versions, { name, version: undefined });
      if (!newest) throw new CustodyError('KEY_NOT_FOUND', `no key named ${name}`, { hint: `create it with \`custody key create ${name}\`` });
      return { latest: newest, ref: await tx.keys.privateRef(newest.keyid) };
    });
    const algorithm = input.algorithm === undefined ? latest.algorithm : parseKeyAlgorithm(input.algorithm);
    const validForMs = input.expires === undefined ? validityLength(latest) : parseValidity(input.expires);
    requireKeyAdminFor(ctx, latest.purposes, 'rotating');
    const label = `${name}@${latest.version + 1}`;

    let p: Provisioned;
    const successor = input.publicKeyPem !== undefined ? { pem: input.publicKeyPem } : input.publicKeyFile !== undefined ? { file: input.publicKeyFile } : undefined;
    if (latest.backend === 'external') {
      if (successor === undefined) {
        throw new CustodyError('USAGE', `${name} is an external key: Custody cannot generate its successor`, {
          hint: `pass the new public key: custody key rotate ${name} --public-key new.pem`,
        });
      }
      const publicKey = await readPublicKey(ctx, successor);
      const done = () => Promise.resolve();
      p = { keyid: keyidOf(publicKey), publicKey, ref: null, publish: done, finish: done, discard: done };
    } else {
      if (successor !== undefined) throw new CustodyError('USAGE', `--public-key is for external keys; ${name} is held by the ${latest.backend} backend`);
      const spec = specOf(ref);
      if (spec === undefined) throw new CustodyError('KEY_STATE_INVALID', `${keyLabel(latest)} has no recorded private key location`);
      p = await provision(ctx, spec, algorithm, label);
    }
    try {
      const result = await ctx.store.transaction(async (tx) => {
        const versions = await tx.keys.versionsOf(name);
        const record = newKeyRecord({
          keyid: p.keyid,
          name,
          version: latestVersion(versions) + 1,
          algorithm: algorithmOf(p.publicKey),
          owner: latest.owner,
          purposes: latest.purposes,
          backend: latest.backend,
          publicKeyPem: publicKeyPem(p.publicKey),
          now,
          validForMs,
          createdBy: ctx.actor.identity,
        });
        await tx.keys.insert(record, p.ref);
        const time = now.toISOString();
        await tx.log.append({
          type: 'key.rotated',
          actor: ctx.actor.identity,
          time,
          subject: record.keyid,
          payload: { ...createdPayload(record), from: { version: latest.version, keyid: latest.keyid }, overlap: overlapMs === 0 ? null : input.overlap ?? null },
        });
        const retired: KeyRecord[] = [];
        for (const old of versions) {
          // Versions that can no longer sign (revoked, or already past their retirement) stay as they are.
          if (old.status === 'revoked' || (old.retiredAt !== null && Date.parse(old.retiredAt) <= now.getTime())) continue;
          const r = retireKey(old, until, now);
          if (r.retiredAt === old.retiredAt) continue;
          await tx.keys.update(r);
          await tx.log.append({
            type: 'key.retired',
            actor: ctx.actor.identity,
            time,
            subject: r.keyid,
            payload: { name, version: r.version, keyid: r.keyid, retiredAt: r.retiredAt, cause: 'rotation', successor: { version: record.version, keyid: record.keyid } },
          });
          retired.push(r);
        }
        await p.publish();
        failpoint('key.rotate.before-commit');
        return { key: record, retired };
      });
      await p.finish();
      return result;
    } catch (e) {
      await p.discard();
      throw e;
    }
  } catch (e) {
    return auditRefusal(ctx, 'key.rotate', name, e);
  }
}

/** `retire` and `revoke` act on one version, named explicitly: a bare name is too easy to get wrong. */
async function findExactVersion(tx: Tx, ref: string, verb: string): Promise<KeyRecord> {
  const address = parseKeyAddress(ref);
  if (address.version === undefined) {
    throw new CustodyError('USAGE', `say which version to ${verb}: ${address.name}@<version>`, { hint: `see the versions with \`custody key show ${address.name}\`` });
  }
  return (await findKey(tx, ref)).key;
}

/** Retires one version now: it stops signing and keeps verifying what it signed before. */
export async function retireKeyVersion(ctx: Context, ref: string): Promise<KeyRecord> {
  const now = ctx.clock.now();
  try {
    return await ctx.store.transaction(async (tx) => {
      const key = await findExactVersion(tx, ref, 'retire');
      requireKeyAdminFor(ctx, key.purposes, 'retiring');
      const retired = retireKey(key, now, now);
      await tx.keys.update(retired);
      await tx.log.append({
        type: 'key.retired',
        actor: ctx.actor.identity,
        time: now.toISOString(),
        subject: key.keyid,
        payload: { name: key.name, version: key.version, keyid: key.keyid, retiredAt: retired.retiredAt, cause: 'retire' },
      });
      return retired;
    });
  } catch (e) {
    return auditRefusal(ctx, 'key.retire', ref, e);
  }
}

export interface RevokeKeyInput {
  reason: string;
  /** RFC 3339; signatures made at or after it stop verifying. Defaults to now. */
  compromisedSince?: string;
}

/** Revokes one version, permanently: it never signs again, and nothing it signed at or after compromisedSince verifies. */
export async function revokeKeyVersion(ctx: Context, ref: string, input: RevokeKeyInput): Promise<KeyRecord> {
  const reason = parseRevocationReason(input.reason);
  const since = input.compromisedSince === undefined ? undefined : parseInstant(input.compromisedSince);
  const now = ctx.clock.now();
  try {
    return await ctx.store.transaction(async (tx) => {
      const key = await findExactVersion(tx, ref, 'revoke');
      requireKeyAdminFor(ctx, key.purposes, 'revoking');
      const revoked = revokeKey(key, { reason, now, ...(since === undefined ? {} : { compromisedSince: since }) });
      await tx.keys.update(revoked);
      await tx.log.append({
        type: 'key.revoked',
        actor: ctx.actor.identity,
        time: now.toISOString(),
        subject: key.keyid,
        payload: {
          name: key.name,
          version: key.version,
          keyid: key.keyid,
          reason,
          revokedAt: revoked.revokedAt,
          compromisedSince: revoked.compromisedSince,
          ...(key.status === 'revoked' ? { previousCompromisedSince: key.compromisedSince } : {}),
        },
      });
      return revoked;
    });
  } catch (e) {
    return auditRefusal(ctx, 'key.revoke', ref, e);
  }
}

// ---------------------------------------------------------------- external keys

/** A PEM public key is well under 2 KiB (RSA 4096: ~800 bytes); anything larger is not one. */
export const PUBLIC_KEY_MAX_BYTES = 16 * 1024;

/** A PEM public key from a file on this machine, or as text a client sent. */
async function readPublicKey(ctx: Context, from: { file: string } | { pem: string }): Promise<KeyObject> {
  const max = Math.min(PUBLIC_KEY_MAX_BYTES, ctx.config.limits.configBytes);
  let text: string;
  if ('file' in from) text = (await readLimited(from.file, max, 'PEM public key')).toString('utf8');
  else {
    if (Buffer.byteLength(from.pem, 'utf8') > max) throw new CustodyError('INPUT_TOO_LARGE', `the PEM public key is over ${max} bytes`);
    text = from.pem;
  }
  const publicKey = parsePublicKeyPem(text);
  algorithmOf(publicKey);
  return publicKey;
}

export interface ImportKeyInput {
  name: string;
  /** The PEM public key: a file here, or */
  pemFile?: string;
  /** its text, as a client sends it, with */
  pem?: string;
  /** what to call it in messages (a client's file name; never opened). */
  source?: string;
  purposes?: readonly string[];
  owner?: string;
  expires?: string;
  /** When given, the PEM must hash to exactly this keyid. */
  keyid?: string;
}

/** Registers a public key whose private half lives elsewhere (a CI's signer, a KMS): it verifies, it never signs here. */
export async function importPublicKey(ctx: Context, input: ImportKeyInput): Promise<KeyRecord> {
  const name = validateKeyName(input.name);
  const purposes = parseKeyPurposes(input.purposes && input.purposes.length > 0 ? input.purposes : DEFAULT_PURPOSES);
  const owner = validateIdentity(input.owner ?? ctx.actor.identity);
  const validForMs = parseValidity(input.expires);
  const expected = input.keyid === undefined ? undefined : validateKeyid(input.keyid);
  if ((input.pem === undefined) === (input.pemFile === undefined)) throw new CustodyError('USAGE', 'give the public key as a PEM file or as PEM text, not both and not neither');
  const publicKey = await readPublicKey(ctx, input.pem !== undefined ? { pem: input.pem } : { file: input.pemFile ?? '' });
  const keyid = keyidOf(publicKey);
  if (expected !== undefined && !bytesEqual(Buffer.from(expected, 'hex'), Buffer.from(keyid, 'hex'))) {
    throw new CustodyError('KEY_ID_MISMATCH', `the PEM in ${input.pemFile ?? input.source ?? 'the request'} has key id ${keyid}, not ${expected}`, {
      hint: 'the file is not the key you expected: check where it came from',
      details: { expected, actual: keyid },
    });
  }
  const now = ctx.clock.now();
  const record = newKeyRecord({
    keyid,
    name,
    version: 1,
    algorithm: algorithmOf(publicKey),
    owner,
    purposes,
    backend: 'external',
    publicKeyPem: publicKeyPem(publicKey),
    now,
    validForMs,
    createdBy: ctx.actor.identity,
  });
  try {
    requireKeyAdminFor(ctx, purposes, 'importing');
    await ctx.store.transaction(async (tx) => {
      await refuseExistingName(tx, name);
      await tx.keys.insert(record, null);
      await tx.log.append({ type: 'key.created', actor: ctx.actor.identity, time: record.createdAt, subject: keyid, payload: { ...createdPayload(record), imported: true } });
    });
    return record;
  } catch (e) {
    return auditRefusal(ctx, 'key.import-public', name, e);
  }
}

export type PublicKeyFormat = 'pem' | 'jwk';

/** JOSE algorithm names (RFC 7518, RFC 8037) for the key's one algorithm. */
const JWK_ALG: Record<KeyAlgorithm, string> = { ed25519: 'EdDSA', 'ecdsa-p256-sha256': 'ES256', 'rsa-pss-3072-sha256': 'PS256' };

export async function exportPublicKey(ctx: Context, ref: string, format: string = 'pem'): Promise<{ key: KeyRecord; pem?: string; jwk?: Record<string, unknown> }> {
  if (format !== 'pem' && format !== 'jwk') throw new CustodyError('INPUT_INVALID', `unknown format "${format}"`, { hint: 'use pem or jwk' });
  const { key } = await ctx.store.read((tx) => findKey(tx, ref));
  if (format === 'pem') return { key, pem: key.publicKeyPem };
  const jwk = parsePublicKeyPem(key.publicKeyPem).export({ format: 'jwk' }) as Record<string, unknown>;
  return { key, jwk: { ...jwk, kid: key.keyid, alg: JWK_ALG[key.algorithm], use: 'sig' } };
}

// ---------------------------------------------------------------- read

export interface KeyView extends KeyRecord {
  /** What the key can do at the time of the listing. */
  state: KeyState;
}

function view(k: KeyRecord, now: Date): KeyView {
  return { ...k, state: keyStateAt(k, now) };
}

export async function listKeys(ctx: Context): Promise<KeyView[]> {
  const now = ctx.clock.now();
  const keys = await ctx.store.read((tx) => tx.keys.list());
  return keys.map((k) => view(k, now));
}

/** Where a key's private half lives, described without anything secret. */
export type PrivateLocation = { backend: 'file'; path: string } | { backend: 'pkcs11'; module: string; slot: number; tokenLabel?: string; objectId: string; pinEnv: string } | { backend: 'external' };

export interface KeyDetails {
  key: KeyView;
  versions: KeyView[];
  privateKey: PrivateLocation;
  history: { index: number; type: string; actor: string; time: string }[];
}

export async function findKey(tx: Tx, ref: string): Promise<{ key: KeyRecord; versions: KeyRecord[] }> {
  const address = parseKeyAddress(ref);
  const versions = await tx.keys.versionsOf(address.name);
  const key = selectVersion(versions, address);
  if (!key) {
    throw new CustodyError('KEY_NOT_FOUND', versions.length === 0 ? `no key named ${address.name}` : `key ${address.name} has no version ${address.version ?? ''}`, {
      hint: 'list keys with `custody key list`',
    });
  }
  return { key, versions };
}

export async function showKey(ctx: Context, ref: string): Promise<KeyDetails> {
  const now = ctx.clock.now();
  return ctx.store.read(async (tx) => {
    const { key, versions } = await findKey(tx, ref);
    const privateRef = await tx.keys.privateRef(key.keyid);
    const entries = await tx.log.bySubject(key.keyid);
    return {
      key: view(key, now),
      versions: versions.map((v) => view(v, now)),
      privateKey: privateRef ?? { backend: 'external' },
      history: entries.map((e) => ({ index: e.index, type: e.type, actor: e.actor, time: e.time })),
    };
  });
}

// ---------------------------------------------------------------- signing and trust

export async function loadSigner(ctx: Context, name: string, purpose: KeyPurpose): Promise<{ key: KeyRecord; signer: Signer }> {
  const address = parseKeyAddress(name);
  const now = ctx.clock.now();
  const { key, ref } = await ctx.store.read(async (tx) => {
    const versions = await tx.keys.versionsOf(address.name);
    if (versions.length === 0) throw new CustodyError('KEY_NOT_FOUND', `no key named ${address.name}`, { hint: `create one with \`custody key create ${address.name}\`` });
    let chosen: KeyRecord;
    if (address.version !== undefined) {
      const k = selectVersion(versions, address);
      if (!k) throw new CustodyError('KEY_NOT_FOUND', `key ${address.name} has no version ${address.version}`);
      const v = keyMaySign(k, purpose, now);
      if (!v.ok) throw notUsable(k, v.code, v.reason);
      chosen = k;
    } else {
      const choice = chooseSigningKey(versions, purpose, now);
      if (choice === undefined) throw new CustodyError('KEY_NOT_FOUND', `no key named ${address.name}`);
      if ('refusal' in choice) throw notUsable(choice.refusal.key, choice.refusal.code, choice.refusal.reason);
      chosen = choice.key;
    }
    return { key: chosen, ref: await tx.keys.privateRef(chosen.keyid) };
  });
  const signer = await signerFor(ctx, key, ref);
  if (signer.keyid !== key.keyid) throw new CustodyError('KEY_ID_MISMATCH', `the backend of ${keyLabel(key)} holds a different key than recorded`);
  return { key, signer };
}

function notUsable(k: KeyRecord, code: string | undefined, reason: string | undefined): CustodyError {
  return new CustodyError('KEY_NOT_USABLE', reason ?? `key ${keyLabel(k)} may not sign now`, {
    details: { key: keyLabel(k), keyid: k.keyid, validity: code },
    hint: 'see `custody key show` for its window and status; rotate or create a key to sign again',
  });
}

export interface KeyCheck {
  key: KeyRecord;
  purpose: KeyPurpose;
  backend: KeyRecord['backend'];
  /** A fresh signature by the backend verified against the recorded public key. */
  verified: true;
}

/**
 * Proves a key can sign here and now: loads its signer exactly as signing
 * commands do (KEK, decryption, HSM session), signs a challenge and verifies it
 * against the recorded public key. For operators after a restore or a PIN change.
 */
export async function checkKey(ctx: Context, ref: string, purpose?: string): Promise<KeyCheck> {
  const { key: addressed } = await ctx.store.read((tx) => findKey(tx, ref));
  const p = purpose === undefined ? addressed.purposes[0] : parseKeyPurposes([purpose])[0];
  if (p === undefined) throw new CustodyError('INPUT_INVALID', `key ${keyLabel(addressed)} has no purpose`);
  const { key, signer } = await loadSigner(ctx, ref, p);
  const challenge = Buffer.from(`custody key check ${key.keyid} ${ctx.clock.now().toISOString()}`, 'utf8');
  const signature = await signer.sign(challenge);
  if (!verifyBytes(key.algorithm, parsePublicKeyPem(key.publicKeyPem), challenge, signature)) {
    throw new CustodyError('VERIFY_FAILED', `key ${keyLabel(key)} signed, but the signature does not verify against its recorded public key`);
  }
  return { key, purpose: p, backend: key.backend, verified: true };
}

export async function trustedKeys(tx: Tx): Promise<TrustedKeys> {
  const list = await tx.keys.list();
  let trusted = trustedByList.get(list);
  if (!trusted) {
    // Equal records are the same trust material, whichever connection read them: one object for them (its public
    // keys parsed once, recognised by identity where results made ahead are matched, sent to the pool once).
    const fingerprint = JSON.stringify(list);
    trusted = interned.get(fingerprint);
    if (trusted) {
      interned.delete(fingerprint);
    } else {
      trusted = toTrustedKeys(list);
      listOfTrusted.set(trusted, list);
    }
    interned.set(fingerprint, trusted);
    if (interned.size > INTERNED_MAX) interned.delete(interned.keys().next().value as string);
    trustedByList.set(list, trusted);
  }
  return trusted;
}

// A store that caches key records hands out the same frozen list while the keys are unchanged (ports.ts:
// KeyRepository.list), and so the same trust material: results computed against it can be recognised as current.
const trustedByList = new WeakMap<readonly KeyRecord[], TrustedKeys>();
const listOfTrusted = new WeakMap<TrustedKeys, readonly KeyRecord[]>();
/** The latest few key sets by content, least recently used first: a key change makes a new one, the old ones age out. */
const interned = new Map<string, TrustedKeys>();
const INTERNED_MAX = 8;

/** The key list `trusted` was made from by `trustedKeys`, to hand to the verification pool as the same array each time. */
export function keyListOf(trusted: TrustedKeys): readonly KeyRecord[] {
  return listOfTrusted.get(trusted) ?? [...trusted.byKeyid.values()];
}
