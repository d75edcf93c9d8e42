/**
 * Evidence verified on the pool ahead of a promotion's transaction (used while
 * other promotions are in flight) is taken only while it provably still holds:
 * the transaction reads the very same key records. A key revoked in between
 * must be seen, never hidden by the earlier verdict.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { evidenceFor, preverifyEvidence, type Preverified } from '../../src/app/evidence.ts';
import { revokeKeyVersion, trustedKeys } from '../../src/app/keys.ts';
import { attestArtifact } from '../../src/app/sign.ts';
import { promoWorld } from './promotion-fixture.ts';

describe('evidence verified ahead of a transaction', () => {
  const closing: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of closing) await c();
  });

  /** A world with 1.0.0 attested once, and its evidence read and verified ahead at `now`. */
  async function readAhead() {
    const w = await promoWorld();
    closing.push(() => w.ctx.close());
    const a = await w.build('1.0.0');
    const now = w.clock.now();
    const pre = (await preverifyEvidence(w.ctx, a.digest, now)) as Preverified;
    return { w, a, now, pre };
  }

  it('is taken as is while the keys are unchanged, and verified again once a key was revoked in between', async () => {
    const { w, a, now, pre } = await readAhead();
    assert.ok(pre, 'the artifact has keyed evidence to verify ahead');
    assert.equal(pre.results.size, 1);
    const [ahead] = [...pre.results.values()];
    assert.equal(ahead?.result.ok, true);

    // Nothing changed: the transaction (on the writer's connection; the read ahead was on the reader's) gets
    // equal trust material, and the verdict made ahead.
    const before = await w.ctx.store.transaction(async (tx) => {
      const trusted = await trustedKeys(tx);
      assert.equal(trusted, pre.keys, 'equal key records are one trust object, whichever connection read them');
      return evidenceFor(tx, trusted, a, now, { preverified: pre });
    });
    assert.equal(before.length, 1);
    assert.equal(before[0]?.verified, true);
    assert.equal(before[0]?.signatures, ahead?.result.signatures, 'the result made ahead was used, not recomputed');

    // The signing key is revoked as compromised since before the attestation, between the two.
    await revokeKeyVersion(w.ctx, 'build-ci@1', { reason: 'compromised', compromisedSince: '2020-01-01T00:00:00Z' });
    const afterRevoke = await w.ctx.store.transaction(async (tx) => {
      const trusted = await trustedKeys(tx);
      assert.notEqual(trusted, pre.keys, 'a key change hands out new trust material');
      return evidenceFor(tx, trusted, a, now, { preverified: pre });
    });
    assert.equal(afterRevoke.length, 1);
    assert.equal(afterRevoke[0]?.verified, false);
    assert.deepEqual(afterRevoke[0]?.reasons.map((r) => r.code), ['KEY_COMPROMISED']);
  });

  it('sees evidence stored after the read ahead: its rows are taken only while the subject index names the same pieces', async () => {
    const { w, a, now, pre } = await readAhead();
    assert.deepEqual(pre.rows.map((r) => r.predicateType), ['https://slsa.dev/provenance/v1']);
    const same = await w.ctx.store.read(async (tx) => evidenceFor(tx, await trustedKeys(tx), a, now, { preverified: pre }));
    assert.deepEqual(same.map((e) => e.digest), pre.rows.map((r) => r.digest));

    // A second attestation lands between the read ahead and the transaction: the transaction reads the rows itself.
    const predicate = join(w.ws.dir, 'tests.json');
    await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [], url: 'https://ci.example/run/1', passedTests: ['t'], warnedTests: [], failedTests: [] }));
    await attestArtifact(w.ctx, { artifact: a.digest, key: 'build-ci', type: 'test-result', predicate });
    const later = await w.ctx.store.read(async (tx) => evidenceFor(tx, await trustedKeys(tx), a, now, { preverified: pre }));
    assert.equal(later.length, 2);
    assert.ok(later.every((e) => e.verified));
    assert.deepEqual(later.map((e) => e.predicateType).sort(), ['https://in-toto.io/attestation/test-result/v0.1', 'https://slsa.dev/provenance/v1']);
  });

  it('is not taken for another reference time, even with the same keys', async () => {
    const w = await promoWorld();
    closing.push(() => w.ctx.close());
    const a = await w.build('1.0.0');
    // Ahead of time, the reference time is before the evidence was stored: its signing time is capped to it.
    const early = new Date(w.clock.now().getTime() - 60_000);
    const pre = (await preverifyEvidence(w.ctx, a.digest, early)) as Preverified;
    const [ahead] = [...pre.results.values()];
    const now = w.clock.now();
    const items = await w.ctx.store.read(async (tx) => evidenceFor(tx, await trustedKeys(tx), a, now, { preverified: pre }));
    assert.equal(items[0]?.verified, true);
    assert.notEqual(items[0]?.signatures, ahead?.result.signatures, 'a request that differs is verified again');
  });
});
