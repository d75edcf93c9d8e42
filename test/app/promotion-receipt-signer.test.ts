import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyArtifact } from '../../src/app/evidence.ts';
import { loadSigner } from '../../src/app/keys.ts';
import { DEFAULT_PROMOTION_DEPS, promote, type PromotionDeps } from '../../src/app/promotion.ts';
import type { Signer } from '../../src/core/ports.ts';
import { VSA_PREDICATE_TYPE } from '../../src/core/promotion/index.ts';
import { rejectsWithCode } from '../helpers.ts';
import { tamper } from '../fixtures/tlog.ts';
import { audited, promoWorld, type PromoWorld } from './promotion-fixture.ts';

/** The receipt key as loaded, with its signer and record changed by `change`. */
function depsWith(change: (loaded: Awaited<ReturnType<typeof loadSigner>>) => Awaited<ReturnType<typeof loadSigner>>): PromotionDeps {
  return {
    ...DEFAULT_PROMOTION_DEPS,
    loadSigner: async (ctx, name, purpose) => {
      const loaded = await loadSigner(ctx, name, purpose);
      return purpose === 'promotion-receipt' ? change(loaded) : loaded;
    },
  };
}

/** Signs with `signer`, then flips a bit of every signature once `broken()` says so. */
function breakable(signer: Signer, broken: () => boolean, inProcess: boolean): Signer {
  return {
    keyid: signer.keyid,
    algorithm: signer.algorithm,
    inProcess,
    async sign(data) {
      const sig = Buffer.from(await signer.sign(data));
      if (broken()) sig[0] = (sig[0] as number) ^ 1;
      return sig;
    },
  };
}

describe('the receipt signer is checked before a receipt is stored', () => {
  it('checks a signer that is not in this process (a token) on every receipt, and stores nothing it refuses', async () => {
    const w = await promoWorld();
    let broken = false;
    const deps = depsWith((l) => ({ key: l.key, signer: breakable(l.signer, () => broken, false) }));
    await w.build('1.0.0');
    assert.equal((await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev' }, deps)).state, 'promoted');
    await w.build('1.0.1');
    broken = true;
    const e = await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.1', to: 'dev' }, deps), 'INTERNAL');
    assert.match(e.message, /receipt just signed by receipts@1 does not verify: SIGNATURE_INVALID/);
    // The refusal rolled its transaction back: 1.0.0 is still current, and the log and rows agree.
    const state = await w.ctx.store.read((tx) => tx.environments.get('dev'));
    const current = await w.ctx.store.read((tx) => tx.promotions.byId(state?.current ?? ''));
    assert.equal(current?.artifact.version, '1.0.0');
    assert.equal(await w.ctx.store.read((tx) => tx.promotions.count()), 1, 'the refused promotion left no row');
    const report = await audited(w.ctx);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
  });

  it('checks an in-process signer against its record on first use: a key row whose public key is not the signing key fails', async () => {
    const w = await promoWorld();
    await w.build('1.0.0');
    swapPublicKey(w, await receiptKeyid(w));
    const e = await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev' }), 'INTERNAL');
    assert.match(e.message, /receipt just signed by receipts@1 does not verify: SIGNATURE_INVALID/);
  });

  it('trusts an in-process signer after its first checked receipt for one key row, and checks again when the row changes', async () => {
    const w = await promoWorld();
    let broken = false;
    const deps = depsWith((l) => ({ key: l.key, signer: breakable(l.signer, () => broken, true) }));
    await w.build('1.0.0');
    const first = await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev' }, deps);
    assert.equal(first.state, 'promoted');
    // Not checked again, and stored alike: the same signers, and it verifies as any reader verifies it.
    const a = await w.build('1.0.1');
    const second = await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.1', to: 'dev' }, deps);
    assert.equal(second.state, 'promoted');
    const rows = await w.ctx.store.read(async (tx) => Promise.all([first, second].map((p) => tx.evidence.byDigest(p.receipt as `sha256:${string}`))));
    assert.deepEqual(rows[1]?.signers, rows[0]?.signers);
    assert.deepEqual(rows[1]?.signers, [await receiptKeyid(w)]);
    const v = await verifyArtifact(w.ctx, { artifact: a.digest });
    assert.deepEqual(v.items.filter((i) => i.predicateType === VSA_PREDICATE_TYPE).map((i) => [i.digest, i.verified]), [[second.receipt, true]]);
    // The trade-off, stated as behaviour: once node:crypto's output for this row has verified, a
    // later signature is not verified again (only a fault in OpenSSL could make it differ).
    broken = true;
    await w.build('1.0.2');
    assert.equal((await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.2', to: 'dev' }, deps)).state, 'promoted');
    // Another public key under the same keyid (a tampered row) is a record not checked yet.
    broken = false;
    swapPublicKey(w, await receiptKeyid(w));
    await w.build('1.0.3');
    const e = await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.3', to: 'dev' }, deps), 'INTERNAL');
    assert.match(e.message, /does not verify/);
  });
});

async function receiptKeyid(w: PromoWorld): Promise<string> {
  const versions = await w.ctx.store.read((tx) => tx.keys.versionsOf('receipts'));
  return versions[0]!.keyid;
}

/** Edits the key row behind Custody's back: the same keyid, another key's public half. */
function swapPublicKey(w: PromoWorld, keyid: string): void {
  const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  tamper(join(w.ws.home, 'custody.db'), (d) => d.prepare("UPDATE keys SET record = json_set(record, '$.publicKeyPem', ?) WHERE keyid = ?").run(other, keyid));
}
