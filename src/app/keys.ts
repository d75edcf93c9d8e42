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
import { algorithmOf, publicKeyPem } from '../core/crypto.ts';
import { CustodyError } from '../core/errors.ts';
import { requireRole, validateIdentity } from '../core/identity.ts';
import {
  chooseSigningKey,
  keyLabel,
  keyMaySign,
  keyStateAt,
  needsKeyAdmin,
  newKeyRecord,
  parseKeyAddress,
  parseKeyAlgorithm,
  parseKeyPurposes,
  selectVersion,
  toTrustedKeys,
  validateKeyName,
  type KeyAlgorithm,
  type KeyBackend,
  type KeyPurpose,
  type KeyRecord,
  type KeyState,
  type TrustedKeys,
} from '../core/key.ts';
import type { PrivateKeyRef, Signer, Tx } from '../core/ports.ts';
import { parseDuration } from '../core/time.ts';
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
  ref: PrivateKeyRef;
  publish: () => Promise<void>;
  finish: () => Promise<void>;
  discard: () => Promise<void>;
}

export interface BackendSpec {
  backend: Exclude<KeyBackend, 'external'>;
}

async function provision(ctx: Context, spec: BackendSpec, algorithm: KeyAlgorithm): Promise<Provisioned> {
  switch (spec.backend) {
    case 'file': {
      const store = fileKeys(ctx);
      await store.checkKek();
      await store.recover(async (keyid) => (await ctx.store.read((tx) => tx.keys.byKeyid(keyid))) !== undefined);
      const { privateKey, publicKey } = generateKeyPair(algorithm);
      const staged = await store.stage(privateKey, algorithm);
      return { keyid: staged.keyid, publicKey, ref: staged.ref, publish: staged.publish, finish: staged.finish, discard: staged.discard };
    }
    case 'pkcs11':
      throw new CustodyError('HSM_ERROR', 'the PKCS#11 backend is not available in this build yet');
  }
}

async function signerFor(ctx: Context, key: KeyRecord, ref: PrivateKeyRef | null): Promise<Signer> {
  const label = keyLabel(key);
  if (ref === null) throw new CustodyError('KEY_NOT_USABLE', `key ${label} has no private half in Custody (backend ${key.backend})`);
  switch (ref.backend) {
    case 'file':
      return fileKeys(ctx).signer(key.keyid, key.algorithm, ref, label);
    case 'pkcs11':
      throw new CustodyError('HSM_ERROR', 'the PKCS#11 backend is not available in this build yet');
  }
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
}

function parseValidity(expires: string | undefined): number | null {
  if (expires === undefined) return null;
  const ms = parseDuration(expires);
  if (ms <= 0) throw new CustodyError('INPUT_INVALID', `--expires ${expires} would make a key that is never valid`);
  return ms;
}

function parseBackendSpec(input: CreateKeyInput): BackendSpec {
  const backend = input.backend ?? 'file';
  if (backend === 'file') return { backend };
  if (backend === 'pkcs11') return { backend };
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
  const algorithm = parseKeyAlgorithm(input.algorithm ?? 'ed25519');
  const purposes = parseKeyPurposes(input.purposes && input.purposes.length > 0 ? input.purposes : DEFAULT_PURPOSES);
  const validForMs = parseValidity(input.expires);
  const spec = parseBackendSpec(input);
  const owner = validateIdentity(input.owner ?? ctx.actor.identity);
  const now = ctx.clock.now();
  try {
    requireKeyAdminFor(ctx, purposes, 'creating');
    await ctx.store.read((tx) => refuseExistingName(tx, name));
    const p = await provision(ctx, spec, algorithm);
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

export async function trustedKeys(tx: Tx): Promise<TrustedKeys> {
  return toTrustedKeys(await tx.keys.list());
}
