/**
 * Signatures over a SHA-256 digest taken as the algorithm's own hash of the
 * message ("prehashed"): for ECDSA P-256 and RSA-PSS, a signature made from
 * the artifact's digest alone is the very signature a signer over the whole
 * file makes, so `cosign verify-blob` and `@sigstore/verify` accept it for the
 * file, and Custody verifies a cosign blob signature from the digest alone,
 * without reading the artifact.
 *
 * `node:crypto` only signs and verifies whole messages (it hashes them
 * itself), so ECDSA goes through `@noble/curves` (audited, RFC 6979
 * deterministic nonces), and RSA-PSS is EMSA-PSS (RFC 8017 §9.1) around the raw
 * RSA operation of `node:crypto`. Tests hold both to `node:crypto` signing and
 * verifying the whole message. Ed25519 (pure EdDSA) has no such form: it signs
 * whole messages only.
 */
import { constants, createHash, privateEncrypt, publicDecrypt, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { CustodyError } from './errors.ts';
import type { KeyAlgorithm } from './key.ts';

const HASH_LEN = 32;
/** The salt length Custody's RSA-PSS signatures use everywhere (crypto.ts): the hash length, as RFC 8017 recommends. */
const PSS_SALT = 32;
const P256_RAW = 64;

/** Whether `algorithm` signs a prehashed SHA-256 digest (all but Ed25519). */
export function signsDigests(algorithm: KeyAlgorithm): boolean {
  return algorithm !== 'ed25519';
}

/** Signs `sha256`, the SHA-256 of the message, as the signature of the message itself. */
export function signPrehashed(algorithm: KeyAlgorithm, privateKey: KeyObject, sha256: Uint8Array): Uint8Array {
  if (sha256.length !== HASH_LEN) throw new CustodyError('INPUT_INVALID', `a SHA-256 digest is 32 bytes, not ${sha256.length}`);
  switch (algorithm) {
    case 'ecdsa-p256-sha256':
      return p256.sign(sha256, ecdsaSecret(privateKey), { prehash: false, format: 'der' });
    case 'rsa-pss-3072-sha256': {
      const modBits = Number(privateKey.asymmetricKeyDetails?.modulusLength ?? 0);
      const em = pssEncode(sha256, modBits - 1, randomBytes(PSS_SALT));
      return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, leftPad(em, Math.ceil(modBits / 8)));
    }
    case 'ed25519':
      throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', 'Ed25519 signs whole messages, not digests');
  }
}

/** Verifies a signature of the message whose SHA-256 is `sha256`. False on any malformed input, never a throw. */
export function verifyPrehashed(algorithm: KeyAlgorithm, publicKey: KeyObject, sha256: Uint8Array, signature: Uint8Array): boolean {
  if (sha256.length !== HASH_LEN) return false;
  try {
    switch (algorithm) {
      case 'ecdsa-p256-sha256': {
        const point = ecdsaPoint(publicKey);
        // High-S signatures are valid ECDSA (OpenSSL and Go make them); raw r||s is what the DSSE reference emits.
        if (p256.verify(signature, sha256, point, { prehash: false, lowS: false, format: 'der' })) return true;
        return signature.length === P256_RAW && p256.verify(signature, sha256, point, { prehash: false, lowS: false, format: 'compact' });
      }
      case 'rsa-pss-3072-sha256': {
        const modBits = Number(publicKey.asymmetricKeyDetails?.modulusLength ?? 0);
        const k = Math.ceil(modBits / 8);
        if (signature.length !== k) return false;
        const m = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
        return pssVerify(sha256, m, modBits - 1);
      }
      case 'ed25519':
        return false;
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- ECDSA keys as @noble/curves wants them

const secrets = new WeakMap<KeyObject, Uint8Array>();
const points = new WeakMap<KeyObject, Uint8Array>();

function ecdsaSecret(privateKey: KeyObject): Uint8Array {
  let d = secrets.get(privateKey);
  if (!d) {
    const jwk = privateKey.export({ format: 'jwk' });
    if (jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new CustodyError('KEY_INVALID', 'not a P-256 private key');
    d = Buffer.from(jwk.d, 'base64url');
    secrets.set(privateKey, d);
  }
  return d;
}

function ecdsaPoint(publicKey: KeyObject): Uint8Array {
  let q = points.get(publicKey);
  if (!q) {
    const jwk = publicKey.export({ format: 'jwk' });
    if (jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new CustodyError('KEY_INVALID', 'not a P-256 public key');
    q = Buffer.concat([Buffer.of(0x04), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    points.set(publicKey, q);
  }
  return q;
}

// ---------------------------------------------------------------- EMSA-PSS, RFC 8017 §9.1, SHA-256 and MGF1-SHA-256

function sha256Of(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MGF1 (RFC 8017 §B.2.1) with SHA-256. */
function mgf1(seed: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let c = 0, at = 0; at < length; c++, at += HASH_LEN) {
    counter.writeUInt32BE(c, 0);
    sha256Of(seed, counter).copy(out, at, 0, Math.min(HASH_LEN, length - at));
  }
  return out;
}

/** The bits of the first octet above emBits, which must be zero. */
function topMask(emBits: number, emLen: number): number {
  return 0xff >>> (8 * emLen - emBits);
}

/** EMSA-PSS-ENCODE (§9.1.1). */
function pssEncode(mHash: Uint8Array, emBits: number, salt: Uint8Array): Buffer {
  const emLen = Math.ceil(emBits / 8);
  if (emLen < HASH_LEN + salt.length + 2) throw new CustodyError('KEY_INVALID', 'the RSA key is too small for PSS with SHA-256');
  const h = sha256Of(Buffer.alloc(8), mHash, salt);
  const db = Buffer.alloc(emLen - HASH_LEN - 1);
  db[db.length - salt.length - 1] = 0x01;
  db.set(salt, db.length - salt.length);
  const mask = mgf1(h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & topMask(emBits, emLen);
  return Buffer.concat([db, h, Buffer.of(0xbc)]);
}

/** EMSA-PSS-VERIFY (§9.1.2) of `m`, the k-octet result of RSAVP1, with the salt length Custody uses. */
function pssVerify(mHash: Uint8Array, m: Buffer, emBits: number): boolean {
  const emLen = Math.ceil(emBits / 8);
  // I2OSP(m, emLen): when k is one octet longer, that octet must be zero.
  if (m.length < emLen || m.subarray(0, m.length - emLen).some((b) => b !== 0)) return false;
  const em = m.subarray(m.length - emLen);
  if (emLen < HASH_LEN + PSS_SALT + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - HASH_LEN - 1);
  const h = em.subarray(emLen - HASH_LEN - 1, emLen - 1);
  if (((maskedDb[0] as number) & ~topMask(emBits, emLen) & 0xff) !== 0) return false;
  const db = mgf1(h, maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (maskedDb[i] as number);
  db[0] = (db[0] as number) & topMask(emBits, emLen);
  const psEnd = emLen - HASH_LEN - PSS_SALT - 2;
  for (let i = 0; i < psEnd; i++) if (db[i] !== 0) return false;
  if (db[psEnd] !== 0x01) return false;
  const salt = db.subarray(db.length - PSS_SALT);
  return timingSafeEqual(h, sha256Of(Buffer.alloc(8), mHash, salt));
}

function leftPad(b: Buffer, length: number): Buffer {
  return b.length >= length ? b : Buffer.concat([Buffer.alloc(length - b.length), b]);
}
