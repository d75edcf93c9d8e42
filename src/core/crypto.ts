import { createHash, createPublicKey, sign as nodeSign, verify as nodeVerify, constants, type KeyObject } from 'node:crypto';
import { CustodyError } from './errors.ts';
import type { KeyAlgorithm } from './key.ts';

/**
 * The algorithm of a signature always comes from the key record, never from the
 * envelope or bundle being verified: an attacker who could pick the algorithm
 * could pick a weak one.
 */

const RSA_PSS_SALT = 32; // = SHA-256 output length, as RFC 8017 recommends and Sigstore uses.

/** Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
export function keyidOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Which Custody algorithm a public key supports, refusing weak or unknown keys. */
export function algorithmOf(publicKey: KeyObject): KeyAlgorithm {
  const type = publicKey.asymmetricKeyType;
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (type) {
    case 'ed25519':
      return 'ed25519';
    case 'ec':
      if (details.namedCurve !== 'prime256v1' && details.namedCurve !== 'P-256') {
        throw new CustodyError('KEY_WEAK', `EC curve ${details.namedCurve ?? 'unknown'} is not accepted; only P-256 is`);
      }
      return 'ecdsa-p256-sha256';
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (bits < 3072) throw new CustodyError('KEY_WEAK', `RSA key of ${bits} bits is too weak; at least 3072 bits are required`);
      return 'rsa-pss-3072-sha256';
    }
    default:
      throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `key type ${type ?? 'unknown'} is not supported`, {
        hint: 'use ed25519, ecdsa-p256-sha256 or rsa-pss-3072-sha256',
      });
  }
}

function nodeParams(algorithm: KeyAlgorithm): { digest: string | null; options: { padding?: number; saltLength?: number; dsaEncoding?: 'der' } } {
  switch (algorithm) {
    case 'ed25519':
      return { digest: null, options: {} };
    case 'ecdsa-p256-sha256':
      // DER-encoded (r, s), as DSSE, Sigstore and securesystemslib expect.
      return { digest: 'sha256', options: { dsaEncoding: 'der' } };
    case 'rsa-pss-3072-sha256':
      return { digest: 'sha256', options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT } };
  }
}

/** Signs `data` with a private key held in this process (file backend, tests). */
export function signBytes(algorithm: KeyAlgorithm, privateKey: KeyObject, data: Uint8Array): Uint8Array {
  if (algorithm === 'ed25519') {
    // The KeyObject itself, not `{ key }`: Node parses an options object on every call, a third of an Ed25519 signature's cost.
    return nodeSign(null, data, privateKey);
  }
  const { digest, options } = nodeParams(algorithm);
  return nodeSign(digest, data, { key: privateKey, ...options });
}

/** Verifies; returns false on any malformed input rather than throwing. */
export function verifyBytes(algorithm: KeyAlgorithm, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    // As in signBytes: the bare KeyObject spares Node an options object per call (bench/verify).
    if (algorithm === 'ed25519') return nodeVerify(null, data, publicKey, signature);
    const { digest, options } = nodeParams(algorithm);
    return nodeVerify(digest, data, { key: publicKey, ...options }, signature);
  } catch {
    return false;
  }
}

/** Parses exactly one PEM public key; trailing garbage or a second block is refused. */
export function parsePublicKeyPem(pem: string): KeyObject {
  const trimmed = pem.trim();
  const m = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END PUBLIC KEY-----$/.exec(trimmed);
  if (!m) {
    throw new CustodyError('KEY_INVALID', 'expected exactly one PEM "PUBLIC KEY" block and nothing else', {
      hint: 'export the SubjectPublicKeyInfo, e.g. `openssl pkey -pubout`',
    });
  }
  try {
    return createPublicKey({ key: `${trimmed}\n`, format: 'pem', type: 'spki' });
  } catch (e) {
    throw new CustodyError('KEY_INVALID', 'the PEM block is not a valid public key', { cause: e });
  }
}

export function publicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * PKCS#11 (CKM_ECDSA) returns r||s, each left-padded to the curve size; DSSE,
 * Sigstore and `verifyBytes` expect the DER form, SEQUENCE { INTEGER r, INTEGER s }.
 */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) {
    throw new CustodyError('INPUT_INVALID', `an ECDSA r||s signature has an even length, got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

function derInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = Buffer.from(bytes.subarray(i));
  // A set top bit would read as negative: prefix a zero byte.
  const content = (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
  return Buffer.concat([Buffer.from([0x02]), derLength(content.length), content]);
}

function derLength(n: number): Buffer {
  return n < 0x80 ? Buffer.from([n]) : Buffer.from([0x81, n]);
}

// DER prefixes of the SubjectPublicKeyInfo for the two curves a token may hold.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * A public key from the point a PKCS#11 token reports (CKA_EC_POINT), which is
 * the raw point or, per PKCS#11 v2.40, a DER OCTET STRING wrapping it.
 */
export function publicKeyFromTokenPoint(algorithm: 'ecdsa-p256-sha256' | 'ed25519', ecPoint: Uint8Array): KeyObject {
  const size = algorithm === 'ed25519' ? 32 : 65;
  let point = Buffer.from(ecPoint);
  if (point.length === size + 2 && point[0] === 0x04 && point[1] === size) point = point.subarray(2);
  if (point.length !== size || (algorithm === 'ecdsa-p256-sha256' && point[0] !== 0x04)) {
    throw new CustodyError('KEY_INVALID', `the token returned a ${point.length}-byte public point; expected ${size} bytes for ${algorithm}`);
  }
  const der = Buffer.concat([algorithm === 'ed25519' ? ED25519_SPKI_PREFIX : P256_SPKI_PREFIX, point]);
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (e) {
    throw new CustodyError('KEY_INVALID', 'the token returned a public point that is not on the curve', { cause: e });
  }
}
