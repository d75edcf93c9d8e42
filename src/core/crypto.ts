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
  const { digest, options } = nodeParams(algorithm);
  return nodeSign(digest, data, { key: privateKey, ...options });
}

/** Verifies; returns false on any malformed input rather than throwing. */
export function verifyBytes(algorithm: KeyAlgorithm, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const { digest, options } = nodeParams(algorithm);
  try {
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
