/**
 * Key use cases. CONTRACT (other modules code against these signatures; the
 * signing-keys work replaces the bodies):
 *
 * - `loadSigner(ctx, name, purpose)`: the newest version of the named key that may
 *   sign for `purpose` at `ctx.clock.now()` (active, or retired but within its
 *   rotation overlap), with a Signer whose private half is decrypted once per
 *   process (file backend) or stays in the HSM (pkcs11). Throws KEY_NOT_FOUND,
 *   KEY_NOT_USABLE (with the validity reason), KEK_MISSING, HSM_ERROR.
 * - `trustedKeys(tx)`: every key version the workspace knows, as trust material
 *   for verifiers (revoked and retired ones included: validity decides).
 */
import { CustodyError } from '../core/errors.ts';
import { toTrustedKeys, type KeyPurpose, type KeyRecord, type TrustedKeys } from '../core/key.ts';
import type { Signer, Tx } from '../core/ports.ts';
import type { Context } from './workspace.ts';

// STUB: replaced by the signing-keys work (branch `keys`).
export function loadSigner(_ctx: Context, name: string, purpose: KeyPurpose): Promise<{ key: KeyRecord; signer: Signer }> {
  return Promise.reject(new CustodyError('KEY_NOT_FOUND', `no key named ${name} that may sign for ${purpose}`));
}

export async function trustedKeys(tx: Tx): Promise<TrustedKeys> {
  return toTrustedKeys(await tx.keys.list());
}
