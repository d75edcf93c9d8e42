/**
 * Inclusion proofs of promotion receipts: the `promotion.promoted` entry that
 * names a receipt, proven into a signed checkpoint of the log. A promotion
 * that reaches `promoted` gets its proof attached at once when the workspace
 * has a log key (a checkpoint is signed for it); otherwise a proof is computed
 * against the newest checkpoint whenever one is needed (verify, export).
 */
import { parseKeyAddress } from '../core/key.ts';
import type { Tx } from '../core/ports.ts';
import type { InclusionRecord, Promotion } from '../core/promotion/index.ts';
import { checkpointKeyName, signWorkspaceCheckpoint } from './log.ts';
import type { Context } from './workspace.ts';

/** The proof of entry `index` in the newest checkpoint's tree, or null when no checkpoint covers it yet. */
export async function proofFor(tx: Tx, index: number): Promise<InclusionRecord | null> {
  const latest = await tx.log.latestCheckpoint();
  if (!latest || latest.size <= index) return null;
  const hashes = await tx.log.inclusionProof(index, latest.size);
  return { index, size: latest.size, hashes: hashes.map((h) => Buffer.from(h).toString('hex')), checkpoint: latest.note };
}

/**
 * Signs a checkpoint covering the promotion's entry (when a log key can sign
 * here) and attaches the proof. Best effort: the promotion is committed
 * already, and verification computes a proof later if this one is missing.
 */
export async function attachProof(ctx: Context, p: Promotion): Promise<Promotion> {
  if (p.state !== 'promoted' || p.logIndex === null || p.proof !== null) return p;
  const index = p.logIndex;
  try {
    // No log key in this workspace (a CI runner's, say): nothing can be signed, and a proof is computed when one is needed.
    if ((await ctx.store.read((tx) => tx.keys.versionsOf(parseKeyAddress(checkpointKeyName(ctx)).name))).length === 0) return p;
    const outcome = await signWorkspaceCheckpoint(ctx);
    if (outcome.status === 'no-key') return p;
    const proof = await ctx.store.transaction(async (tx) => {
      const found = await proofFor(tx, index);
      if (found) await tx.promotions.setProof(p.id, found);
      return found;
    });
    return proof ? { ...p, proof } : p;
  } catch {
    return p;
  }
}
