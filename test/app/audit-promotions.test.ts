/**
 * `audit verify` holds the promotions' rows to their log entries: the history
 * gates (soak, `from`) and the status board read the rows, so a row edited
 * behind Custody's back must not pass for the truth while the log stays intact.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auditVerify, signWorkspaceCheckpoint } from '../../src/app/log.ts';
import { promote } from '../../src/app/promotion.ts';
import { cli } from '../helpers.ts';
import { tamper } from '../fixtures/tlog.ts';
import { promoWorld, type PromoWorld } from './promotion-fixture.ts';

/** dev holds 1.1.0 (1.0.0 replaced), staging 1.0.0, prod awaits an approval for 1.0.0. */
async function promoted(): Promise<{ w: PromoWorld; db: string; replaced: string; awaiting: string }> {
  const w = await promoWorld();
  const v1 = await w.build('1.0.0');
  const first = await promote(w.ctx, { artifact: v1.digest, to: 'dev' });
  w.clock.advance(60_000);
  assert.equal((await promote(w.ctx, { artifact: v1.digest, to: 'staging' })).state, 'promoted');
  const awaiting = await promote(w.ctx, { artifact: v1.digest, to: 'prod' });
  assert.equal(awaiting.state, 'awaiting-approval');
  const v2 = await w.build('1.1.0');
  assert.equal((await promote(w.ctx, { artifact: v2.digest, to: 'dev' })).state, 'promoted');
  await signWorkspaceCheckpoint(w.ctx, { force: true });
  return { w, db: join(w.ws.home, 'custody.db'), replaced: first.id, awaiting: awaiting.id };
}

describe('audit verify: promotion rows against the log', () => {
  it('passes when every row says what its entries say, and counts the rows it compared', async () => {
    const { w } = await promoted();
    const report = await auditVerify(w.ctx);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
    assert.equal(report.promotions, 4);
  });

  it('finds a back-dated finish time (a soak shortened by hand), at the promotion\'s last entry', async () => {
    const { w, db, replaced } = await promoted();
    tamper(db, (d) => d.prepare("UPDATE promotions SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(replaced));
    const report = await auditVerify(w.ctx);
    assert.equal(report.ok, false);
    assert.equal(report.finding?.kind, 'promotion-row');
    assert.match(report.finding?.message ?? '', new RegExp(`the row of ${replaced} says finished at "2020-01-01T00:00:00.000Z" \\(the log: "[^"]+"\\)`));
    const last = await w.ctx.store.read(async (tx) => (await tx.log.range(0, 1000)).filter((e) => e.payload['promotion'] === replaced).at(-1));
    assert.equal(report.finding?.index, last?.index);
    assert.equal(last?.type, 'promotion.replaced');
  });

  it('finds a replaced promotion made current again, and an awaiting one marked promoted', async () => {
    const a = await promoted();
    tamper(a.db, (d) => d.prepare("UPDATE promotions SET state = 'promoted' WHERE id = ?").run(a.replaced));
    assert.match((await auditVerify(a.w.ctx)).finding?.message ?? '', /state "promoted" \(the log: "replaced"\)/);
    const b = await promoted();
    tamper(b.db, (d) => d.prepare("UPDATE promotions SET state = 'promoted', finished_at = updated_at WHERE id = ?").run(b.awaiting));
    const f = (await auditVerify(b.w.ctx)).finding;
    assert.equal(f?.kind, 'promotion-row');
    assert.match(f?.message ?? '', new RegExp(`the row of ${b.awaiting} says state "promoted" \\(the log: "awaiting-approval"\\), finished at "[^"]+" \\(the log: none\\)`));
  });

  it('finds a row deleted, and a row added for a promotion the log never requested', async () => {
    const a = await promoted();
    tamper(a.db, (d) => d.prepare('DELETE FROM promotions WHERE id = ?').run(a.replaced));
    assert.match((await auditVerify(a.w.ctx)).finding?.message ?? '', new RegExp(`${a.replaced} is in the log \\(last at entry \\d+\\) and has no row`));
    const b = await promoted();
    tamper(b.db, (d) => {
      // A forged history: the same row under a new id, as if 1.0.0 had also been promoted earlier.
      const cols = (d.prepare('PRAGMA table_info(promotions)').all() as { name: string }[]).map((c) => c.name);
      const select = cols.map((c) => (c === 'id' ? "'pr_000000000000forged0000'" : c === 'seq' ? '-1' : c === 'idempotency_key' ? 'NULL' : c)).join(', ');
      d.prepare(`INSERT INTO promotions (${cols.join(', ')}) SELECT ${select} FROM promotions WHERE id = ?`).run(b.replaced);
    });
    const report = await auditVerify(b.w.ctx);
    assert.equal(report.finding?.kind, 'promotion-row');
    assert.equal(report.finding?.message, 'the promotions table holds 5 rows and the log requested 4 promotions: rows were added or removed outside Custody');
    assert.equal(report.finding?.index, report.entries);
  });

  it('custody audit verify: exit 1, and says the rows were edited while the log itself verified', async () => {
    const { w, db, replaced } = await promoted();
    // The deployer audits too here (`audit verify` asks for the auditor role).
    const config = join(w.ws.home, 'custody.yaml');
    await writeFile(config, (await readFile(config, 'utf8')).replace('[builder, signer, deployer,', '[auditor, builder, signer, deployer,'));
    assert.equal((await cli(['audit', 'verify', '--home', w.ws.home])).stdout, `log intact: ${(await auditVerify(w.ctx)).entries} entries, 5 checkpoints verified, 4 promotion rows agree with it; consistent with the workspace's copy (latest-checkpoint)\n`);
    tamper(db, (d) => d.prepare("UPDATE promotions SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(replaced));
    const human = await cli(['audit', 'verify', '--home', w.ws.home]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, new RegExp(`^promotion rows TAMPERED \\(the log itself verified\\): first difference at entry \\d+: promotion-row: the row of ${replaced} says finished at`));
    const json = await cli(['audit', 'verify', '--home', w.ws.home, '--json']);
    assert.equal(json.code, 1);
    assert.equal(json.json<{ finding: { kind: string } }>().finding.kind, 'promotion-row');
  });

  it('ignores what is not the log\'s to say: the proof attached later, the owner and lease of an apply', async () => {
    const { w, db, replaced } = await promoted();
    tamper(db, (d) => d.prepare("UPDATE promotions SET proof = NULL, owner = 'elsewhere:1:abc', lease_expires_at = '2030-01-01T00:00:00.000Z' WHERE id = ?").run(replaced));
    const report = await auditVerify(w.ctx);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
  });
});
