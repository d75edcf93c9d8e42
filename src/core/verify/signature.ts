/** Step: the signature, with the algorithm taken from the key record, never from the input. */
import { verify as nodeVerify } from 'node:crypto';
import { verifyBytes } from '../crypto.ts';
import type { KeyRecord } from '../key.ts';
import { signsDigests, verifyPrehashed } from '../prehash.ts';
import { publicKeyOf } from './keys.ts';

const P256_RAW_SIGNATURE = 64;

/**
 * ECDSA signatures are DER (Sigstore, securesystemslib, PKCS#11 after Custody's
 * conversion). The DSSE reference implementation emits raw r||s instead, so a
 * 64-byte signature that is not DER is read as r||s: both encode the same (r, s),
 * and a DER P-256 signature is never 64 bytes with a valid r||s reading too.
 */
export function signatureVerifies(key: KeyRecord, data: Uint8Array, signature: Uint8Array, digestOf?: string): boolean {
  let publicKey;
  try {
    publicKey = publicKeyOf(key);
  } catch {
    return false;
  }
  if (digestOf !== undefined && signsDigests(key.algorithm)) {
    // `data` is a digest of the signed artifact. The key's algorithm fixes the hash
    // (P-256 and PSS keys here are SHA-256 keys): a digest of another algorithm never verifies.
    return digestOf === 'sha256' && verifyPrehashed(key.algorithm, publicKey, data, signature);
  }
  if (verifyBytes(key.algorithm, publicKey, data, signature)) return true;
  if (key.algorithm === 'ecdsa-p256-sha256' && signature.length === P256_RAW_SIGNATURE) {
    try {
      return nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  }
  return false;
}
