/**
 * Steps: find the key by hint in the trust material that was passed in, and
 * check it was valid for the purpose at the signing time.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyValidAt, type KeyPurpose, type KeyRecord, type TrustedKeys } from '../key.ts';
import { reason, type VerifyReason } from './reasons.ts';

// A KeyObject per key record: parsing the PEM costs more than an Ed25519
// verification, and trust material is reused across a whole batch.
const keyObjects = new WeakMap<KeyRecord, KeyObject>();

export function publicKeyOf(key: KeyRecord): KeyObject {
  let k = keyObjects.get(key);
  if (!k) {
    k = createPublicKey({ key: key.publicKeyPem, format: 'pem', type: 'spki' });
    keyObjects.set(key, k);
  }
  return k;
}

/**
 * The candidate keys for one signature. The hint is unauthenticated (DSSE
 * protocol.md: it "may only be used to narrow the selection of possible keys"),
 * so a matching hint narrows to one key and an empty one leaves every trusted
 * key; the signature itself decides. `ignoreHints` is for a key the user named
 * explicitly (`verify-bundle --key`), whose hint format is unknown.
 */
export function candidateKeys(trust: TrustedKeys, hint: string, ignoreHints: boolean): KeyRecord[] {
  if (ignoreHints || hint === '') return [...trust.byKeyid.values()];
  const k = trust.byKeyid.get(hint);
  return k ? [k] : [];
}

export function checkValidity(key: KeyRecord, purpose: KeyPurpose, signedAt: Date): VerifyReason | undefined {
  const v = keyValidAt(key, purpose, signedAt);
  if (v.ok) return undefined;
  return reason(v.code ?? 'KEY_REVOKED', v.reason ?? `key ${key.name}@${key.version} was not valid at ${signedAt.toISOString()}`);
}
