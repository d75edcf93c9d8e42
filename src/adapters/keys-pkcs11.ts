/**
 * PKCS#11 backend: the key pair is generated inside the token (CKA_TOKEN,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE) and every signature is made there; the
 * private key never exists in this process. ECDSA P-256 is required of a token,
 * Ed25519 is used where the token offers CKM_EC_EDWARDS_KEY_PAIR_GEN.
 *
 * Every failure of the module, the slot, the PIN or the token becomes an
 * HSM_ERROR that names the problem; nothing native escapes as a crash.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { PKCS11, Template } from 'pkcs11js';
import { ecdsaRawToDer, keyidOf, publicKeyFromTokenPoint } from '../core/crypto.ts';
import { CustodyError } from '../core/errors.ts';
import type { KeyAlgorithm } from '../core/key.ts';
import type { PrivateKeyRef, Signer } from '../core/ports.ts';

// PKCS#11 v3.0 Edwards-curve values; pkcs11js 2.x does not export them.
const CKK_EC_EDWARDS = 0x40;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const CKF_TOKEN_INITIALIZED = 0x400;
// DER OIDs for CKA_EC_PARAMS: prime256v1 (1.2.840.10045.3.1.7) and id-Ed25519 (1.3.101.112, RFC 8410).
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');

export type Pkcs11Algorithm = 'ecdsa-p256-sha256' | 'ed25519';
export type Pkcs11Ref = Extract<PrivateKeyRef, { backend: 'pkcs11' }>;

/** Where a key lives in a token, and the PIN to use it (read from the named environment variable by the caller). */
export interface TokenTarget {
  module: string;
  slot: number;
  pin: string;
  pinEnv: string;
}

// ---------------------------------------------------------------- errors

const PIN_ERRORS = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

function ckr(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]?.trim() ?? 'unknown' : String(e);
}

/** A coded error naming what went wrong and where; the PIN itself never appears. */
function hsmError(e: unknown, where: string, target?: Pick<TokenTarget, 'slot' | 'pinEnv'>): CustodyError {
  if (e instanceof CustodyError) return e;
  const code = ckr(e);
  if (PIN_ERRORS.has(code)) {
    return new CustodyError('HSM_ERROR', `wrong PIN for the token in slot ${target?.slot ?? '?'} (${code})`, {
      hint: `check the PIN in $${target?.pinEnv ?? 'the --pin-env variable'}; tokens lock after repeated failures`,
      details: { problem: 'pin', ckr: code },
    });
  }
  if (code === 'CKR_PIN_LOCKED') {
    return new CustodyError('HSM_ERROR', `the user PIN of the token in slot ${target?.slot ?? '?'} is locked`, {
      hint: 'unlock it with the security officer PIN',
      details: { problem: 'pin-locked', ckr: code },
    });
  }
  if (code === 'CKR_SLOT_ID_INVALID' || code === 'CKR_TOKEN_NOT_PRESENT' || code === 'CKR_TOKEN_NOT_RECOGNIZED') {
    return new CustodyError('HSM_ERROR', `no usable token in slot ${target?.slot ?? '?'} (${code})`, { details: { problem: 'slot', ckr: code } });
  }
  return new CustodyError('HSM_ERROR', `PKCS#11 ${where} failed: ${code}`, { details: { problem: 'token', ckr: code } });
}

// ---------------------------------------------------------------- modules and sessions

/** One loaded, initialised module per library path for the life of the process (C_Initialize is per process). */
const modules = new Map<string, PKCS11>();

function loadModule(path: string): PKCS11 {
  const loaded = modules.get(path);
  if (loaded) return loaded;
  if (!path.startsWith('/')) {
    throw new CustodyError('HSM_ERROR', `PKCS#11 module path "${path}" is not absolute`, { hint: 'pass the full path, e.g. /usr/lib/softhsm/libsofthsm2.so', details: { problem: 'module' } });
  }
  const m = new pkcs11js.PKCS11();
  try {
    m.load(path);
  } catch (e) {
    throw new CustodyError('HSM_ERROR', `cannot load the PKCS#11 module ${path}: ${ckr(e)}`, {
      hint: 'check --module: the path of the vendor\'s PKCS#11 library (for SoftHSM2 on Debian, /usr/lib/softhsm/libsofthsm2.so)',
      details: { problem: 'module' },
    });
  }
  try {
    m.C_Initialize();
  } catch (e) {
    if (ckr(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      try {
        m.close();
      } catch {
        // The library is unusable either way; report the initialisation failure.
      }
      throw new CustodyError('HSM_ERROR', `the PKCS#11 module ${path} failed to initialise: ${ckr(e)}`, { details: { problem: 'module' } });
    }
  }
  modules.set(path, m);
  return m;
}

/** Finalises every module this process loaded (tests; a CLI process simply exits). */
export function closeModules(): void {
  for (const m of modules.values()) {
    try {
      m.C_Finalize();
      m.close();
    } catch {
      // Already finalised.
    }
  }
  modules.clear();
  sessions.clear();
}

function slotHandle(m: PKCS11, target: Pick<TokenTarget, 'module' | 'slot'>): { handle: Buffer; label: string } {
  let slots: Buffer[];
  try {
    slots = m.C_GetSlotList(true);
  } catch (e) {
    throw hsmError(e, 'C_GetSlotList');
  }
  const described: string[] = [];
  for (const h of slots) {
    const id = h.length >= 8 ? h.readBigUInt64LE(0) : BigInt(h.readUInt32LE(0));
    let info;
    try {
      info = m.C_GetTokenInfo(h);
    } catch {
      continue;
    }
    const label = info.label.trim();
    if (id === BigInt(target.slot)) {
      if ((info.flags & CKF_TOKEN_INITIALIZED) === 0) {
        throw new CustodyError('HSM_ERROR', `the token in slot ${target.slot} is not initialised`, { hint: 'initialise it first, e.g. softhsm2-util --init-token', details: { problem: 'slot' } });
      }
      return { handle: h, label };
    }
    if ((info.flags & CKF_TOKEN_INITIALIZED) !== 0) described.push(`${id} (${label})`);
  }
  throw new CustodyError('HSM_ERROR', `no token in slot ${target.slot} of ${target.module}`, {
    hint: described.length > 0 ? `slots with an initialised token: ${described.join(', ')}` : 'the module reports no initialised token',
    details: { problem: 'slot' },
  });
}

interface Session {
  m: PKCS11;
  session: Buffer;
  tokenLabel: string;
}

function openSession(target: TokenTarget): Session {
  const m = loadModule(target.module);
  const { handle, label } = slotHandle(m, target);
  let session: Buffer;
  try {
    session = m.C_OpenSession(handle, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
  } catch (e) {
    throw hsmError(e, 'C_OpenSession', target);
  }
  try {
    m.C_Login(session, pkcs11js.CKU_USER, target.pin);
  } catch (e) {
    // Login state is per application: another session of this process already logged in.
    if (ckr(e) !== 'CKR_USER_ALREADY_LOGGED_IN') {
      closeSession(m, session);
      throw hsmError(e, 'C_Login', target);
    }
  }
  return { m, session, tokenLabel: label };
}

function closeSession(m: PKCS11, session: Buffer): void {
  try {
    m.C_CloseSession(session);
  } catch {
    // The session is gone already.
  }
}

function findObject(s: Session, cls: number, id: Buffer): Buffer | undefined {
  const { m, session } = s;
  m.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: cls },
    { type: pkcs11js.CKA_ID, value: id },
  ]);
  try {
    const found = m.C_FindObjects(session, 2);
    if (found.length > 1) throw new CustodyError('HSM_ERROR', `the token holds more than one object with id ${id.toString('hex')}`, { details: { problem: 'token' } });
    return found[0];
  } finally {
    m.C_FindObjectsFinal(session);
  }
}

function publicKeyOf(s: Session, handle: Buffer, algorithm: Pkcs11Algorithm): KeyObject {
  const attrs = s.m.C_GetAttributeValue(s.session, handle, [{ type: pkcs11js.CKA_EC_POINT }]);
  const point = attrs[0]?.value;
  if (!point) throw new CustodyError('HSM_ERROR', 'the token returned no public point', { details: { problem: 'token' } });
  return publicKeyFromTokenPoint(algorithm, point);
}

function mechanisms(algorithm: KeyAlgorithm): { gen: number; sign: number; keyType: number; params: Buffer } {
  switch (algorithm) {
    case 'ecdsa-p256-sha256':
      return { gen: pkcs11js.CKM_EC_KEY_PAIR_GEN, sign: pkcs11js.CKM_ECDSA, keyType: pkcs11js.CKK_EC, params: P256_PARAMS };
    case 'ed25519':
      return { gen: CKM_EC_EDWARDS_KEY_PAIR_GEN, sign: CKM_EDDSA, keyType: CKK_EC_EDWARDS, params: ED25519_PARAMS };
    case 'rsa-pss-3072-sha256':
      throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', 'the pkcs11 backend makes ecdsa-p256-sha256 and ed25519 keys', {
        hint: 'use --alg ecdsa-p256-sha256 (every token has it), or the file backend for RSA',
      });
  }
}

// ---------------------------------------------------------------- generation

export interface TokenKey {
  keyid: string;
  publicKey: KeyObject;
  ref: Pkcs11Ref;
  /** Removes both halves from the token: the undo of a create whose transaction failed. */
  destroy: () => Promise<void>;
}

/** Generates a key pair inside the token; the private half is sensitive and never extractable. */
export function generateInToken(target: TokenTarget, algorithm: KeyAlgorithm, label: string): Promise<TokenKey> {
  const mech = mechanisms(algorithm);
  const alg = algorithm as Pkcs11Algorithm;
  const s = openSession(target);
  try {
    const slot = slotHandle(s.m, target).handle;
    let supported: number[];
    try {
      supported = s.m.C_GetMechanismList(slot);
    } catch (e) {
      throw hsmError(e, 'C_GetMechanismList', target);
    }
    if (!supported.includes(mech.gen) || !supported.includes(mech.sign)) {
      throw new CustodyError('HSM_ERROR', `the token in slot ${target.slot} cannot make ${algorithm} keys`, {
        hint: algorithm === 'ed25519' ? 'the token lacks CKM_EC_EDWARDS_KEY_PAIR_GEN / CKM_EDDSA; use --alg ecdsa-p256-sha256' : 'the token lacks CKM_EC_KEY_PAIR_GEN / CKM_ECDSA',
        details: { problem: 'mechanism' },
      });
    }
    const id = randomBytes(16);
    const common: Template = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_KEY_TYPE, value: mech.keyType },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_LABEL, value: label },
    ];
    let pair;
    try {
      pair = s.m.C_GenerateKeyPair(
        s.session,
        { mechanism: mech.gen },
        [...common, { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, { type: pkcs11js.CKA_VERIFY, value: true }, { type: pkcs11js.CKA_EC_PARAMS, value: mech.params }],
        [
          ...common,
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_SIGN, value: true },
        ],
      );
    } catch (e) {
      throw hsmError(e, 'C_GenerateKeyPair', target);
    }
    const destroyNow = () => {
      for (const h of [pair.privateKey, pair.publicKey]) {
        try {
          s.m.C_DestroyObject(s.session, h);
        } catch {
          // Best effort: the object may already be gone.
        }
      }
    };
    try {
      // Trust, but check: a token that ignored the template must not hold a Custody key.
      const got = s.m.C_GetAttributeValue(s.session, pair.privateKey, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_TOKEN },
      ]);
      const flag = (i: number) => (got[i]?.value[0] ?? 0) !== 0;
      if (!flag(0) || flag(1) || !flag(2)) {
        throw new CustodyError('HSM_ERROR', 'the token made a private key that is extractable, not sensitive or not persistent; refusing it', { details: { problem: 'token' } });
      }
      const publicKey = publicKeyOf(s, pair.publicKey, alg);
      const keyid = keyidOf(publicKey);
      const ref: Pkcs11Ref = { backend: 'pkcs11', module: target.module, slot: target.slot, tokenLabel: s.tokenLabel, objectId: id.toString('hex'), pinEnv: target.pinEnv };
      return Promise.resolve({
        keyid,
        publicKey,
        ref,
        destroy: () => {
          const d = openSession(target);
          try {
            for (const cls of [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) {
              const h = findObject(d, cls, id);
              if (h) d.m.C_DestroyObject(d.session, h);
            }
          } catch (e) {
            return Promise.reject(hsmError(e, 'C_DestroyObject', target));
          } finally {
            closeSession(d.m, d.session);
          }
          return Promise.resolve();
        },
      });
    } catch (e) {
      destroyNow();
      throw hsmError(e, 'reading the new key', target);
    }
  } catch (e) {
    return Promise.reject(hsmError(e, 'key generation', target));
  } finally {
    closeSession(s.m, s.session);
  }
}

// ---------------------------------------------------------------- signing

/** A Signer whose every signature is made inside the token. */
class TokenSigner implements Signer {
  readonly keyid: string;
  readonly algorithm: Pkcs11Algorithm;
  readonly #s: Session;
  readonly #key: Buffer;
  readonly #mechanism: number;
  readonly #target: Pick<TokenTarget, 'slot' | 'pinEnv'>;

  constructor(keyid: string, algorithm: Pkcs11Algorithm, s: Session, key: Buffer, target: Pick<TokenTarget, 'slot' | 'pinEnv'>) {
    this.keyid = keyid;
    this.algorithm = algorithm;
    this.#s = s;
    this.#key = key;
    this.#mechanism = mechanisms(algorithm).sign;
    this.#target = target;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    const { m, session } = this.#s;
    try {
      // C_SignInit and C_Sign are synchronous, so two signatures never interleave on the one session.
      m.C_SignInit(session, { mechanism: this.#mechanism }, this.#key);
      if (this.algorithm === 'ed25519') return Promise.resolve(new Uint8Array(m.C_Sign(session, Buffer.from(data), Buffer.alloc(64))));
      // CKM_ECDSA signs a digest we compute, and returns r||s; verifiers expect DER.
      const digest = createHash('sha256').update(data).digest();
      return Promise.resolve(ecdsaRawToDer(m.C_Sign(session, digest, Buffer.alloc(132))));
    } catch (e) {
      return Promise.reject(hsmError(e, 'C_Sign', this.#target));
    }
  }

  /** CKM_ECDSA signs the digest it is given: a digest of the artifact signs the artifact itself. */
  signDigest(sha256: Uint8Array): Promise<Uint8Array> {
    if (this.algorithm === 'ed25519' || sha256.length !== 32) {
      return Promise.reject(new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `${this.algorithm} keys sign whole messages, not digests`));
    }
    const { m, session } = this.#s;
    try {
      m.C_SignInit(session, { mechanism: this.#mechanism }, this.#key);
      return Promise.resolve(ecdsaRawToDer(m.C_Sign(session, Buffer.from(sha256), Buffer.alloc(132))));
    } catch (e) {
      return Promise.reject(hsmError(e, 'C_Sign', this.#target));
    }
  }

  toJSON(): { keyid: string; algorithm: Pkcs11Algorithm } {
    return { keyid: this.keyid, algorithm: this.algorithm };
  }
}

const sessions = new Map<string, Signer>();

/**
 * A Signer for a recorded token key. The session stays open for the process, so
 * the PIN is presented once; the token's public key must derive `keyid`.
 */
export function tokenSigner(ref: Pkcs11Ref, pin: string, keyid: string, algorithm: KeyAlgorithm, label: string): Promise<Signer> {
  const cacheKey = `${ref.module}\0${ref.slot}\0${ref.objectId}`;
  const cached = sessions.get(cacheKey);
  if (cached) return Promise.resolve(cached);
  if (algorithm === 'rsa-pss-3072-sha256') return Promise.reject(new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `${label}: the pkcs11 backend holds no RSA keys`));
  if (!/^[0-9a-f]{2,128}$/.test(ref.objectId)) return Promise.reject(new CustodyError('KEY_INVALID', `${label}: the recorded token object id is malformed`));
  const target: TokenTarget = { module: ref.module, slot: ref.slot, pin, pinEnv: ref.pinEnv };
  let s: Session;
  try {
    s = openSession(target);
  } catch (e) {
    return Promise.reject(hsmError(e, 'opening a session', target));
  }
  try {
    if (ref.tokenLabel !== undefined && s.tokenLabel !== ref.tokenLabel) {
      throw new CustodyError('HSM_ERROR', `slot ${ref.slot} now holds token "${s.tokenLabel}", not "${ref.tokenLabel}" where ${label} was created`, { details: { problem: 'slot' } });
    }
    const id = Buffer.from(ref.objectId, 'hex');
    const priv = findObject(s, pkcs11js.CKO_PRIVATE_KEY, id);
    const pub = findObject(s, pkcs11js.CKO_PUBLIC_KEY, id);
    if (!priv || !pub) {
      throw new CustodyError('HSM_ERROR', `the token in slot ${ref.slot} no longer holds the key pair of ${label} (object ${ref.objectId})`, { details: { problem: 'object' } });
    }
    if (keyidOf(publicKeyOf(s, pub, algorithm)) !== keyid) {
      throw new CustodyError('KEY_ID_MISMATCH', `the token object ${ref.objectId} holds a different key than ${label}`);
    }
    const signer = new TokenSigner(keyid, algorithm, s, priv, { slot: ref.slot, pinEnv: ref.pinEnv });
    sessions.set(cacheKey, signer);
    return Promise.resolve(signer);
  } catch (e) {
    closeSession(s.m, s.session);
    return Promise.reject(hsmError(e, 'finding the key', target));
  }
}
