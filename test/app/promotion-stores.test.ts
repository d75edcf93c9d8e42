/**
 * The promotion use cases on every store: the same pipeline (promote through
 * the graph, approve, verify, roll back) against the embedded SQLite store and
 * against PostgreSQL.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { approvePromotion, promote, rollback } from '../../src/app/promotion.ts';
import { verifyEnvironment } from '../../src/app/receipts.ts';
import { forEachStore } from '../contract/stores.ts';
import { audited, CAROL, promoWorld } from './promotion-fixture.ts';

forEachStore((h) => {
  it('promotes through dev, staging and prod with an approval, verifies, and rolls back', async () => {
    const where = await h.location();
    const w = await promoWorld(where.driver === 'postgres' ? { postgresUrl: where.url } : {});
    assert.equal(w.ctx.store.dialect, h.name);
    const v1 = await w.build('1.0.0');
    const v2 = await w.build('1.1.0');
    for (const a of [v1, v2]) {
      for (const env of ['dev', 'staging']) assert.equal((await promote(w.ctx, { artifact: a.digest, to: env })).state, 'promoted');
      const p = await promote(w.ctx, { artifact: a.digest, to: 'prod', idempotencyKey: `prod-${a.version}` });
      assert.equal(p.state, 'awaiting-approval');
      assert.equal((await promote(w.ctx, { artifact: a.digest, to: 'prod', idempotencyKey: `prod-${a.version}` })).id, p.id);
      assert.equal((await approvePromotion(await w.as(CAROL), { id: p.id })).state, 'promoted');
      w.clock.advance(60_000);
    }
    assert.equal((await verifyEnvironment(w.ctx, { artifact: v2.digest, environment: 'prod' })).ok, true);
    const r = await rollback(w.ctx, { environment: 'prod' });
    assert.equal(r.state, 'awaiting-approval', 'a rollback into prod still needs its approval');
    const done = await approvePromotion(await w.as(CAROL), { id: r.id });
    assert.equal(done.state, 'promoted');
    assert.equal(done.kind, 'rollback');
    const v = await verifyEnvironment(w.ctx, { artifact: v1.digest, environment: 'prod' });
    assert.equal(v.ok, true, JSON.stringify(v.reasons));
    assert.deepEqual(v.chain.map((c) => [c.environment, c.kind]), [['prod', 'rollback'], ['staging', 'promotion'], ['dev', 'promotion']]);
    // Every row reads back exactly as the log's promotion.* entries tell it (times, states, receipts), on this store too.
    const audit = await audited(w.ctx);
    assert.equal(audit.ok, true, JSON.stringify(audit.finding));
    assert.equal(audit.promotions, 7);
  });
});
