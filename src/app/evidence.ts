/**
 * Evidence use cases. CONTRACT (the policy engine and promotion code against
 * this signature; the signatures work replaces the body):
 *
 * - `evidenceFor(tx, trusted, artifact, now)`: every stored attestation whose
 *   subject is the artifact, each run through the verification pipeline against
 *   `trusted` with the one reference time `now`, as `EvidenceItem`s.
 */
import type { Artifact } from '../core/artifact.ts';
import type { EvidenceItem } from '../core/evidence.ts';
import type { TrustedKeys } from '../core/key.ts';
import type { Tx } from '../core/ports.ts';

// STUB: replaced by the signatures work (branch `sigs`).
export function evidenceFor(_tx: Tx, _trusted: TrustedKeys, _artifact: Artifact, _now: Date): Promise<EvidenceItem[]> {
  return Promise.resolve([]);
}
