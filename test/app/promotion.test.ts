import assert from 'node:assert/strict';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { safeSegment } from '../../src/adapters/target-fs.ts';
import { evidenceFor, isOwnReceipt, storedEvidenceFor, verifyArtifact } from '../../src/app/evidence.ts';
import { revokeKeyVersion, trustedKeys } from '../../src/app/keys.ts';
import { approvePromotion, newPromotionId, promote, rejectPromotion, rollback, showPromotion } from '../../src/app/promotion.ts';
import { promotionHistory, promotionStatus } from '../../src/app/promotion-board.ts';
import { tamper } from '../fixtures/tlog.ts';
import { exportReceipts, verifyEnvironment } from '../../src/app/receipts.ts';
import { VSA_PREDICATE_TYPE } from '../../src/core/promotion/index.ts';
import { rejectsWithCode } from '../helpers.ts';
import { audited, BUILDER, CAROL, DAVE, MALLORY, promoWorld } from './promotion-fixture.ts';

describe('promote', () => {
  it('promotes into dev in one transaction: transitions logged, receipt stored as evidence, pointer moved, target written', async () => {
    const w = await promoWorld({ environments: { dev: 'target: { type: fs, dir: channels }' } });
    const a = await w.build('1.0.0');
    const before = await w.ctx.store.read((tx) => tx.log.size());
    const p = await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev' });
    assert.equal(p.state, 'promoted', JSON.stringify(p.reasons));
    assert.equal(p.decision?.outcome, 'pass');
    assert.match(p.receipt ?? '', /^sha256:/);
    const entries = await w.ctx.store.read(async (tx) => tx.log.range(before, 100));
    assert.deepEqual(entries.map((e) => e.type), ['promotion.requested', 'promotion.evaluating', 'promotion.applying', 'evidence.stored', 'promotion.promoted']);
    const promoted = entries.at(-1)!;
    assert.equal(promoted.subject, a.digest);
    assert.equal(promoted.payload['receipt'], p.receipt);
    assert.equal(promoted.payload['environment'], 'dev');
    assert.equal(p.logIndex, promoted.index);
    const channel = join(w.ws.home, 'channels', 'dev', safeSegment('pkg:npm/app'));
    assert.equal(await readlink(join(channel, 'current')), '1.0.0');
    assert.match(await readFile(join(channel, 'current'), 'utf8'), /^app 1\.0\.0/);
    // The receipt is evidence about the artifact, verified like any other (with a receipt key), and listed once.
    const v = await verifyArtifact(w.ctx, { artifact: a.digest });
    assert.equal(v.ok, true, JSON.stringify(v.items.map((i) => i.reasons)));
    assert.deepEqual(v.items.filter((i) => i.predicateType === 'https://slsa.dev/verification_summary/v1').map((i) => [i.digest, i.verified]), [[p.receipt, true]]);
    // Its promotion names it: it is not in the subject index, where every promotion would write two random pages for it.
    const indexed = await w.ctx.store.read((tx) => tx.evidence.digestsForSubjects(Object.entries(a.digests).map(([alg, hex]) => `${alg}:${hex}`)));
    assert.ok(indexed.length > 0 && !indexed.includes(p.receipt ?? ''), indexed.join(' '));
    const deploy = await verifyEnvironment(w.ctx, { artifact: a.digest, environment: 'dev' });
    assert.equal(deploy.ok, true, JSON.stringify(deploy.reasons));
    // The log key signed a checkpoint covering the receipt's entry, and the proof is attached to the promotion.
    assert.equal(p.proof?.index, p.logIndex);
    assert.ok((p.proof?.size ?? 0) > (p.logIndex ?? Infinity));
    assert.match(p.proof?.checkpoint ?? '', /^custody\.local\/[0-9a-f]+\n\d+\n/);
    assert.deepEqual((await w.ctx.store.read((tx) => tx.promotions.byId(p.id)))?.proof, p.proof);
  });

  it('leaves its own receipts out of the policy\'s evidence, unverified, while verify still reports them', async () => {
    const w = await promoWorld();
    const a = await w.build('1.0.0');
    assert.equal((await promote(w.ctx, { artifact: a.digest, to: 'dev' })).state, 'promoted');
    const { all, policy } = await w.ctx.store.read(async (tx) => {
      const trusted = await trustedKeys(tx);
      const now = w.clock.now();
      return { all: await storedEvidenceFor(tx, trusted, a, now), policy: await evidenceFor(tx, trusted, a, now) };
    });
    assert.deepEqual(all.map((e) => e.predicateType).sort(), ['https://slsa.dev/provenance/v1', VSA_PREDICATE_TYPE]);
    assert.deepEqual(policy.map((e) => e.predicateType), ['https://slsa.dev/provenance/v1']);
    assert.equal((await verifyArtifact(w.ctx, { artifact: a.digest })).items.length, 2);
    // The next hop plans without the dev receipt among its evidence, and still passes its chain gate.
    assert.equal((await promote(w.ctx, { artifact: a.digest, to: 'staging' })).state, 'promoted');
    assert.equal(isOwnReceipt({ predicateType: VSA_PREDICATE_TYPE, source: 'attested' }), true);
    assert.equal(isOwnReceipt({ predicateType: VSA_PREDICATE_TYPE, source: 'imported' }), false);
    assert.equal(isOwnReceipt({ predicateType: 'https://slsa.dev/provenance/v1', source: 'attested' }), false);
  });

  it('rejects with the failing gates and changes no pointer', async () => {
    const w = await promoWorld();
    const a = await w.build('1.0.1');
    const p = await promote(w.ctx, { artifact: a.digest, to: 'staging' });
    assert.equal(p.state, 'rejected');
    assert.deepEqual(p.reasons.map((r) => r.code).sort(), ['CHAIN_INCOMPLETE', 'NOT_PROMOTED']);
    assert.equal(p.outcome?.code, 'PROMOTION_REJECTED');
    assert.equal(await w.ctx.store.read((tx) => tx.environments.get('staging')), undefined);
  });

  it('refuses an unknown environment, an unknown artifact and a caller without the deployer role, changing nothing', async () => {
    const w = await promoWorld();
    await w.build('1.0.0');
    await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'qa' }), 'ENVIRONMENT_NOT_FOUND');
    await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@9.9.9', to: 'dev' }), 'ARTIFACT_NOT_FOUND');
    const size = await w.ctx.store.read((tx) => tx.log.size());
    await rejectsWithCode(async () => promote(await w.as(MALLORY), { artifact: 'pkg:npm/app@1.0.0', to: 'dev' }), 'ROLE_REQUIRED');
    const entries = await w.ctx.store.read((tx) => tx.log.range(size, 10));
    assert.deepEqual(entries.map((e) => e.type), ['request.refused']);
    assert.deepEqual(await w.ctx.store.read((tx) => tx.promotions.list()), []);
  });

  it('returns the same promotion for a retry with the same idempotency key, and refuses the key for another artifact', async () => {
    const w = await promoWorld();
    await w.build('1.0.0');
    await w.build('1.0.1');
    const first = await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev', idempotencyKey: 'run-42' });
    const again = await promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev', idempotencyKey: 'run-42' });
    assert.equal(again.id, first.id);
    assert.equal(again.replayed, true);
    assert.equal((await w.ctx.store.read((tx) => tx.promotions.list())).length, 1);
    await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.1', to: 'dev', idempotencyKey: 'run-42' }), 'IDEMPOTENCY_CONFLICT');
    // The key is per requester and environment.
    const other = await promote(await w.as(DAVE), { artifact: 'pkg:npm/app@1.0.0', to: 'dev', idempotencyKey: 'run-42' });
    assert.notEqual(other.id, first.id);
    await rejectsWithCode(() => promote(w.ctx, { artifact: 'pkg:npm/app@1.0.0', to: 'dev', idempotencyKey: 'bad key!' }), 'INPUT_INVALID');
  });
});

describe('approvals', () => {
  async function awaiting(prodApprovals = 1) {
    const w = await promoWorld({ prodApprovals });
    const a = await w.build('1.0.0');
    for (const env of ['dev', 'staging']) assert.equal((await promote(w.ctx, { artifact: a.digest, to: env })).state, 'promoted');
    const p = await promote(w.ctx, { artifact: a.digest, to: 'prod' });
    assert.equal(p.state, 'awaiting-approval');
    assert.deepEqual(p.reasons.map((r) => r.code), ['APPROVALS_NEEDED']);
    return { w, a, p };
  }

  it('continues to applying by itself when the quorum is met', async () => {
    const { w, p } = await awaiting();
    const done = await approvePromotion(await w.as(CAROL), { id: p.id, comment: 'looks good' });
    assert.equal(done.state, 'promoted');
    assert.deepEqual(done.approvals.map((v) => [v.identity, v.vote, v.counted]), [[CAROL, 'approve', true]]);
    const board = await promotionStatus(w.ctx);
    const prod = board.environments.find((e) => e.name === 'prod');
    assert.equal(prod?.current?.artifact.version, '1.0.0');
    assert.deepEqual(prod?.current?.approvedBy, [CAROL]);
  });

  it('refuses every separation-of-duties violation, audited, and counts nothing', async () => {
    const { w, p } = await awaiting();
    const refused = async (identity: string, code: string) => {
      const e = await rejectsWithCode(async () => approvePromotion(await w.as(identity), { id: p.id }), 'APPROVAL_REFUSED');
      assert.ok((e.details?.['reasons'] as { code: string }[]).some((r) => r.code === code), `${identity}: ${e.message}`);
    };
    // The requester holds no approver role here: give it one through another context to hit V2 alone.
    await rejectsWithCode(() => approvePromotion(w.ctx, { id: p.id }), 'ROLE_REQUIRED');
    await refused(BUILDER, 'APPROVER_SIGNED_EVIDENCE');
    const dave = await promote(await w.as(DAVE), { artifact: p.artifact.digest, to: 'prod' });
    const self = await rejectsWithCode(async () => approvePromotion(await w.as(DAVE), { id: dave.id }), 'APPROVAL_REFUSED');
    assert.match(self.message, /requested/);
    await approvePromotion(await w.as(CAROL), { id: dave.id });
    // Once promoted, another approver's vote has nothing to act on.
    const { ROLES } = await import('../../src/core/identity.ts');
    const approver = await w.as('erin@acme.example');
    const twice = await rejectsWithCode(() => approvePromotion({ ...approver, actor: { identity: 'erin@acme.example', roles: [...ROLES] } }, { id: dave.id }), 'PROMOTION_TRANSITION_INVALID');
    assert.match(twice.message, /promoted/);
    const refusals = (await w.ctx.store.read(async (tx) => tx.log.range(0, await tx.log.size()))).filter((e) => e.type === 'request.refused');
    assert.ok(refusals.filter((e) => e.payload['action'] === 'promotion.approve').length >= 3);
  });

  it('keeps one vote per identity: a repeat is answered and not counted twice, a different vote is refused', async () => {
    const { w, p } = await awaiting(2);
    const pending = await approvePromotion(await w.as(CAROL), { id: p.id });
    assert.equal(pending.state, 'awaiting-approval');
    const size = await w.ctx.store.read((tx) => tx.log.size());
    const again = await approvePromotion(await w.as(CAROL), { id: p.id, comment: 'again' });
    assert.equal(again.state, 'awaiting-approval');
    assert.equal(again.replayed, true);
    assert.equal(again.approvals.length, 1);
    assert.equal(await w.ctx.store.read((tx) => tx.log.size()), size, 'a repeated vote writes nothing');
    const e = await rejectsWithCode(async () => rejectPromotion(await w.as(CAROL), { id: p.id, reason: 'changed my mind' }), 'APPROVAL_REFUSED');
    assert.match(e.message, /one vote per identity/);
    assert.equal((await approvePromotion(await w.as(DAVE), { id: p.id })).state, 'promoted');
  });

  it('invalidates an approval when the evidence changed since the vote', async () => {
    const { w, a, p } = await awaiting(2);
    await approvePromotion(await w.as(CAROL), { id: p.id });
    // New evidence arrives after Carol's vote: her approval no longer counts.
    const { attestArtifact } = await import('../../src/app/sign.ts');
    const { writeFile } = await import('node:fs/promises');
    const predicate = join(w.ws.dir, 'tests.json');
    await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://ci.example/run/1' }] }));
    await attestArtifact(w.ctx, { artifact: a.digest, key: 'build-ci', type: 'test-result', predicate });
    const after = await approvePromotion(await w.as(DAVE), { id: p.id });
    assert.equal(after.state, 'awaiting-approval');
    const carol = after.approvals.find((v) => v.identity === CAROL);
    assert.equal(carol?.counted, false);
    assert.match(carol?.invalidated?.reason ?? '', /evidence added since the vote/);
    // Having seen the new evidence, Carol may approve again: her fresh vote replaces the stale one and completes the quorum.
    const fresh = await approvePromotion(await w.as(CAROL), { id: p.id, comment: 'reviewed the test results' });
    assert.equal(fresh.state, 'promoted');
    assert.deepEqual(fresh.approvals.map((v) => [v.identity, v.invalidated]).sort(), [[CAROL, null], [DAVE, null]]);
    const types = (await w.ctx.store.read(async (tx) => tx.log.range(0, await tx.log.size()))).map((e) => e.type);
    assert.ok(types.includes('approval.invalidated'));
    // The audit follows the votes through invalidation and recast: the apply relied on approvals the log holds.
    const audit = await audited(w.ctx);
    assert.equal(audit.ok, true, JSON.stringify(audit.finding));
  });

  it('audit verify finds an apply that counted a vote the log never recorded (an approvals row forged to meet the quorum)', async () => {
    const { w, p } = await awaiting(2);
    await approvePromotion(await w.as(CAROL), { id: p.id });
    // With write access to the database: a third approver's row, a copy of Carol's.
    tamper(join(w.ws.home, 'custody.db'), (db) => {
      db.prepare("INSERT INTO approvals (promotion, identity, vote, comment, roles, member_of, time, fingerprint, seen) SELECT promotion, 'eve@acme.example', vote, comment, roles, member_of, time, fingerprint, seen FROM approvals WHERE promotion = ? AND identity = ?").run(p.id, CAROL);
    });
    const done = await approvePromotion(await w.as(DAVE), { id: p.id });
    assert.equal(done.state, 'promoted');
    assert.ok(done.approvals.some((v) => v.identity === 'eve@acme.example' && v.counted), 'the engine counted the forged row');
    const audit = await audited(w.ctx);
    assert.equal(audit.finding?.kind, 'promotion-row');
    assert.match(audit.finding?.message ?? '', new RegExp(`applies ${p.id} relying on an approval by "eve@acme.example" that the log does not hold`));
    const applying = (await w.ctx.store.read(async (tx) => tx.log.range(0, await tx.log.size()))).find((e) => e.type === 'promotion.applying' && e.payload['promotion'] === p.id);
    assert.equal(audit.finding?.index, applying?.index);
  });

  it('invalidates an approval when a key that signed the evidence was revoked since the vote', async () => {
    const { w, p } = await awaiting(2);
    await approvePromotion(await w.as(CAROL), { id: p.id });
    w.clock.advance(1000);
    // Compromised only from now on: the evidence still verifies, but what Carol judged has changed.
    await revokeKeyVersion(w.ctx, 'build-ci@1', { reason: 'compromised' });
    const after = await approvePromotion(await w.as(DAVE), { id: p.id });
    assert.equal(after.state, 'awaiting-approval');
    assert.match(after.approvals.find((v) => v.identity === CAROL)?.invalidated?.reason ?? '', /revoked/);
  });

  it('rejects at once on a veto, with the reason', async () => {
    const { w, p } = await awaiting();
    const r = await rejectPromotion(await w.as(CAROL), { id: p.id, reason: 'change freeze agreed with ops' });
    assert.equal(r.state, 'rejected');
    assert.equal(r.outcome?.code, 'REJECTED_BY_APPROVER');
    assert.match(r.outcome?.message ?? '', /change freeze agreed with ops/);
    await rejectsWithCode(async () => approvePromotion(await w.as(DAVE), { id: p.id }), 'PROMOTION_TRANSITION_INVALID');
    await rejectsWithCode(async () => approvePromotion(await w.as(DAVE), { id: 'pr_0000000000000000' }), 'PROMOTION_NOT_FOUND');
  });

  it('honours an environment-scoped caller', async () => {
    const { w, p } = await awaiting();
    const carol = await w.as(CAROL);
    await rejectsWithCode(() => approvePromotion({ ...carol, actor: { ...carol.actor, environments: ['staging'] } }, { id: p.id }), 'FORBIDDEN');
  });
});

describe('rollback', () => {
  async function twoVersions() {
    const w = await promoWorld();
    const v1 = await w.build('1.0.0');
    await promote(w.ctx, { artifact: v1.digest, to: 'dev' });
    w.clock.advance(60_000);
    const v2 = await w.build('1.1.0');
    await promote(w.ctx, { artifact: v2.digest, to: 'dev' });
    w.clock.advance(60_000);
    return { w, v1, v2 };
  }

  it('re-verifies the previous version and records a promotion of kind rollback with its own receipt', async () => {
    const { w, v1, v2 } = await twoVersions();
    const r = await rollback(w.ctx, { environment: 'dev' });
    assert.equal(r.state, 'promoted', JSON.stringify(r.reasons));
    assert.equal(r.kind, 'rollback');
    assert.equal(r.artifact.digest, v1.digest);
    assert.match(r.receipt ?? '', /^sha256:/);
    const history = await promotionHistory(w.ctx, { ref: 'dev' });
    assert.deepEqual(history.promotions.map((h) => [h.kind, h.artifact.version, h.state]), [
      ['rollback', '1.0.0', 'promoted'],
      ['promotion', '1.1.0', 'rolled-back'],
      ['promotion', '1.0.0', 'replaced'],
    ]);
    const log = await w.ctx.store.read((tx) => tx.log.bySubject(v2.digest));
    assert.ok(log.some((e) => e.type === 'promotion.rolled-back' && e.payload['environment'] === 'dev'));
    assert.equal((await verifyEnvironment(w.ctx, { artifact: v1.digest, environment: 'dev' })).ok, true);
    const stale = await verifyEnvironment(w.ctx, { artifact: v2.digest, environment: 'dev' });
    assert.deepEqual(stale.reasons.map((x) => x.code), ['RECEIPT_NOT_CURRENT']);
  });

  it('is refused after the version\'s signing key was revoked, and suggests the next candidate that passes', async () => {
    const w = await promoWorld();
    const { rotateKey } = await import('../../src/app/keys.ts');
    const v0 = await w.build('0.9.0');
    await promote(w.ctx, { artifact: v0.digest, to: 'dev' });
    w.clock.advance(60_000);
    await rotateKey(w.ctx, { name: 'build-ci' });
    const v1 = await w.build('1.0.0');
    await promote(w.ctx, { artifact: v1.digest, to: 'dev' });
    w.clock.advance(60_000);
    const v2 = await w.build('1.1.0');
    await promote(w.ctx, { artifact: v2.digest, to: 'dev' });
    w.clock.advance(60_000);
    // build-ci@2 (which signed 1.0.0 and 1.1.0) leaked: everything it signed is distrusted.
    await revokeKeyVersion(w.ctx, 'build-ci@2', { reason: 'compromised', compromisedSince: new Date(Date.parse(w.clock.now().toISOString()) - 10 * 60_000).toISOString() });
    const r = await rollback(w.ctx, { environment: 'dev' });
    assert.equal(r.state, 'rejected');
    assert.equal(r.kind, 'rollback');
    assert.ok(r.reasons.some((x) => /compromised/.test(x.message)), JSON.stringify(r.reasons));
    assert.equal(r.suggestion?.version, '0.9.0');
    assert.equal(r.suggestion?.outcome, 'pass');
    assert.equal((await rollback(w.ctx, { environment: 'dev', to: '0.9.0' })).state, 'promoted');
    assert.equal((await verifyEnvironment(w.ctx, { artifact: v2.digest, environment: 'dev' })).ok, false);
  });

  it('refuses with nothing to roll back to, and a version never promoted there', async () => {
    const w = await promoWorld();
    await rejectsWithCode(() => rollback(w.ctx, { environment: 'dev' }), 'ROLLBACK_REFUSED');
    const v1 = await w.build('1.0.0');
    await promote(w.ctx, { artifact: v1.digest, to: 'dev' });
    await rejectsWithCode(() => rollback(w.ctx, { environment: 'dev' }), 'ROLLBACK_REFUSED');
    await rejectsWithCode(() => rollback(w.ctx, { environment: 'dev', to: '0.1.0' }), 'ROLLBACK_REFUSED');
  });
});

describe('show, status and history', () => {
  it('shows pending promotions with their waiting time, and an artifact\'s history across environments', async () => {
    const w = await promoWorld();
    const a = await w.build('1.0.0');
    for (const env of ['dev', 'staging', 'prod']) await promote(w.ctx, { artifact: a.digest, to: env });
    w.clock.advance(90_000);
    const board = await promotionStatus(w.ctx, { environment: 'prod' });
    assert.equal(board.environments.length, 1);
    const [prod] = board.environments;
    assert.equal(prod?.current, null);
    assert.equal(prod?.pending[0]?.state, 'awaiting-approval');
    assert.ok((prod?.pending[0]?.waitingMs ?? 0) >= 90_000);
    assert.equal(board.generatedAt, w.clock.now().toISOString());
    const h = await promotionHistory(w.ctx, { ref: 'pkg:npm/app@1.0.0' });
    assert.deepEqual(h.promotions.map((x) => [x.environment, x.state]), [['prod', 'awaiting-approval'], ['staging', 'promoted'], ['dev', 'promoted']]);
    assert.equal((await showPromotion(w.ctx, h.promotions[0]!.id)).state, 'awaiting-approval');
    await rejectsWithCode(() => showPromotion(w.ctx, 'pr_nope'), 'PROMOTION_NOT_FOUND');
    await rejectsWithCode(() => promotionStatus(w.ctx, { environment: 'qa' }), 'ENVIRONMENT_NOT_FOUND');
  });
});

describe('receipts stored before they left the subject index', () => {
  it('are listed once, and the deploy gate and the export find each once', async () => {
    const w = await promoWorld();
    const a = await w.build('1.0.0');
    for (const env of ['dev', 'staging']) assert.equal((await promote(w.ctx, { artifact: a.digest, to: env })).state, 'promoted');
    const receipts = (await w.ctx.store.read((tx) => tx.promotions.list({ artifact: a.digest }))).map((p) => p.receipt ?? '').sort();
    // As an older version stored them: indexed under the artifact's digests too.
    tamper(join(w.ws.home, 'custody.db'), (db) => {
      for (const r of receipts) for (const [alg, hex] of Object.entries(a.digests)) db.prepare('INSERT INTO evidence_subjects (subject, evidence, predicate_type) VALUES (?, ?, ?)').run(`${alg}:${hex}`, r, VSA_PREDICATE_TYPE);
    });
    const v = await verifyArtifact(w.ctx, { artifact: a.digest });
    assert.deepEqual(v.items.filter((i) => i.predicateType === VSA_PREDICATE_TYPE).map((i) => i.digest).sort(), receipts);
    assert.equal(v.ok, true);
    const deploy = await verifyEnvironment(w.ctx, { artifact: a.digest, environment: 'staging' });
    assert.equal(deploy.ok, true, JSON.stringify(deploy.reasons));
    assert.deepEqual(deploy.chain.map((c) => c.environment), ['staging', 'dev']);
    const exported = await exportReceipts(w.ctx, { environment: 'staging' });
    assert.deepEqual(exported.files.filter((f) => f.path.startsWith('receipts/')).map((f) => `sha256:${f.path.slice(9, -5)}`).sort(), receipts);
  });
});

describe('one reference time', () => {
  it('a promotion that applies in one transaction is requested, planned, receipted and promoted at one instant, however the clock moves meanwhile', async () => {
    const w = await promoWorld();
    const a = await w.build('1.0.0');
    const base = w.clock.now().getTime();
    let calls = 0;
    // A clock a second further on at every reading: any second reading inside the operation shows.
    w.clock.now = () => new Date(base + 1000 * ++calls);
    const before = await w.ctx.store.read((tx) => tx.log.size());
    const p = await promote(w.ctx, { artifact: a.digest, to: 'dev' });
    assert.equal(p.state, 'promoted', JSON.stringify(p.reasons));
    const entries = (await w.ctx.store.read((tx) => tx.log.range(before, 100))).filter((e) => e.subject === a.digest);
    assert.deepEqual(entries.map((e) => e.type), ['promotion.requested', 'promotion.evaluating', 'promotion.applying', 'evidence.stored', 'promotion.promoted']);
    const times = new Set(entries.map((e) => e.time));
    assert.equal(times.size, 1, [...times].join(', '));
    assert.equal(p.decision?.time, entries[0]?.time);
    assert.equal(p.requestedAt, entries[0]?.time);
  });
});

describe('promotion ids', () => {
  it('are pr_, 12 hex digits of creation time in ms, then 40 random bits; distinct, and in creation order across milliseconds', async () => {
    const before = Date.now();
    const ids = Array.from({ length: 5000 }, () => newPromotionId());
    const after = Date.now();
    for (const id of ids) assert.match(id, /^pr_[0-9a-f]{22}$/);
    assert.equal(new Set(ids).size, ids.length);
    const times = ids.map((id) => parseInt(id.slice(3, 15), 16));
    assert.ok(times.every((t) => t >= before && t <= after));
    // The random part is not a counter: its digits take every value over 5,000 ids.
    const tails = new Set(ids.flatMap((id) => [...id.slice(15)]));
    assert.equal(tails.size, 16);
    await new Promise((r) => setTimeout(r, 2));
    assert.ok(newPromotionId() > (ids.at(-1) ?? ''));
  });
});

describe('targets, concurrency and crashes (in one process)', () => {
  const slow = (ms: number) => `target: { type: command, command: [/bin/sh, -c, 'sleep ${ms / 1000}; echo "deployed $CUSTODY_ARTIFACT_VERSION to $CUSTODY_ENV"'] }`;

  it('records a failed target with its captured output and leaves the environment as it was', async () => {
    const w = await promoWorld({ environments: { dev: `target: { type: command, command: [/bin/sh, -c, 'echo "boom $CUSTODY_ARTIFACT_VERSION" >&2; exit 3'] }` } });
    const a = await w.build('1.0.0');
    const p = await promote(w.ctx, { artifact: a.digest, to: 'dev' });
    assert.equal(p.state, 'failed');
    assert.equal(p.outcome?.code, 'TARGET_FAILED');
    assert.match(p.targetOutput ?? '', /boom 1\.0\.0/);
    const state = await w.ctx.store.read((tx) => tx.environments.get('dev'));
    assert.equal(state?.current, null);
    assert.equal(state?.applying, null);
  });

  it('captures a command target\'s output into the promotion record', async () => {
    const w = await promoWorld({ environments: { dev: slow(0) } });
    const a = await w.build('1.0.0');
    const p = await promote(w.ctx, { artifact: a.digest, to: 'dev' });
    assert.equal(p.state, 'promoted');
    assert.equal(p.targetOutput?.trim(), 'deployed 1.0.0 to dev');
  });

  it('serialises two promotions into one environment: exactly one becomes current, the other is superseded', async () => {
    const w = await promoWorld({ environments: { dev: slow(400) } });
    const a = await w.build('1.0.0');
    const b = await w.build('1.1.0');
    const [pa, pb] = await Promise.all([promote(w.ctx, { artifact: a.digest, to: 'dev' }), promote(w.ctx, { artifact: b.digest, to: 'dev' })]);
    const states = [pa.state, pb.state].sort();
    assert.deepEqual(states, ['promoted', 'rejected']);
    const loser = pa.state === 'rejected' ? pa : pb;
    const winner = pa.state === 'promoted' ? pa : pb;
    assert.equal(loser.outcome?.code, 'PROMOTION_SUPERSEDED');
    const state = await w.ctx.store.read((tx) => tx.environments.get('dev'));
    assert.equal(state?.current, winner.id);
  });

  it('queues the second promotion when the environment says so, then plans it against the new current', async () => {
    const w = await promoWorld({ environments: { dev: `${slow(300)}, concurrency: queue` } });
    const a = await w.build('1.0.0');
    const b = await w.build('1.1.0');
    const first = promote(w.ctx, { artifact: a.digest, to: 'dev' });
    await new Promise((r) => setTimeout(r, 100));
    const second = await promote(w.ctx, { artifact: b.digest, to: 'dev' });
    assert.equal((await first).state, 'promoted');
    assert.equal(second.state, 'promoted');
    assert.equal(second.relied?.environmentSeq, 2, 'planned after the first one finished');
    const state = await w.ctx.store.read((tx) => tx.environments.get('dev'));
    assert.equal(state?.current, second.id);
    assert.equal((await showPromotion(w.ctx, (await first).id)).state, 'replaced');
  });
});

describe('recovery of an interrupted apply (in one process)', () => {
  async function hangAfterApply(w: Awaited<ReturnType<typeof promoWorld>>, digest: string): Promise<void> {
    const { FsTarget } = await import('../../src/adapters/target-fs.ts');
    const { DEFAULT_PROMOTION_DEPS } = await import('../../src/app/promotion.ts');
    let reached: () => void = () => undefined;
    const applied = new Promise<void>((r) => (reached = r));
    const real = new FsTarget(join(w.ws.home, 'channels'));
    // The target moves, then the process "hangs" and is presumed dead: nothing after the target runs.
    const deps = { ...DEFAULT_PROMOTION_DEPS, targetFor: () => ({ type: 'fs', apply: async (...args: Parameters<typeof real.apply>) => (await real.apply(...args), reached(), new Promise<never>(() => undefined)) }) };
    void promote(w.ctx, { artifact: digest, to: 'dev' }, deps);
    await applied;
    const { spawnSync } = await import('node:child_process');
    const { hostname } = await import('node:os');
    const dead = spawnSync('/bin/true').pid;
    await w.ctx.store.transaction(async (tx) => {
      const [p] = await tx.promotions.list({ states: ['applying'] });
      await tx.promotions.update({ ...p!, owner: `${hostname()}:${dead}:gone` });
    });
  }

  it('resumes it when a fresh plan still allows it, and says so in the log', async () => {
    const w = await promoWorld({ environments: { dev: 'target: { type: fs, dir: channels }' } });
    const a = await w.build('1.0.0');
    await hangAfterApply(w, a.digest);
    const { recoverInterrupted } = await import('../../src/app/promotion.ts');
    const done = await recoverInterrupted(w.ctx);
    assert.deepEqual(done.map((r) => [r.action, r.state]), [['resumed', 'promoted']]);
    const log = await w.ctx.store.read((tx) => tx.log.bySubject(a.digest));
    assert.equal(log.find((e) => e.type === 'promotion.promoted')?.payload['recovered'], 'resumed');
    assert.equal(await readlink(join(w.ws.home, 'channels', 'dev', safeSegment('pkg:npm/app'), 'current')), '1.0.0');
    assert.deepEqual(await recoverInterrupted(w.ctx), [], 'nothing left to recover');
  });

  it('rolls the target back to the previous version and records failed when the plan no longer holds', async () => {
    const w = await promoWorld({ environments: { dev: 'target: { type: fs, dir: channels }' } });
    const v1 = await w.build('1.0.0');
    assert.equal((await promote(w.ctx, { artifact: v1.digest, to: 'dev' })).state, 'promoted');
    w.clock.advance(60_000);
    const leakedAt = w.clock.now().toISOString();
    w.clock.advance(60_000);
    const v2 = await w.build('1.1.0');
    await hangAfterApply(w, v2.digest);
    const channel = join(w.ws.home, 'channels', 'dev', safeSegment('pkg:npm/app'), 'current');
    assert.equal(await readlink(channel), '1.1.0', 'the dead process had moved the target');
    await revokeKeyVersion(w.ctx, 'build-ci@1', { reason: 'compromised', compromisedSince: leakedAt });
    const { recoverInterrupted } = await import('../../src/app/promotion.ts');
    const done = await recoverInterrupted(w.ctx);
    assert.deepEqual(done.map((r) => [r.action, r.state]), [['rolled-back', 'failed']]);
    assert.equal(await readlink(channel), '1.0.0', 'the target is back on the version the store calls current');
    const p = (await w.ctx.store.read((tx) => tx.promotions.list({ artifact: v2.digest })))[0];
    assert.equal(p?.outcome?.code, 'INTERRUPTED');
    assert.match(p?.outcome?.message ?? '', /compromised/);
    const log = await w.ctx.store.read((tx) => tx.log.bySubject(v2.digest));
    assert.equal(log.find((e) => e.type === 'promotion.failed')?.payload['recovered'], 'rolled-back');
  });
});

describe('receipts export and offline verification', () => {
  it('verifies an export with no workspace, and refuses tampering, another environment, another digest, an untrusted key and a stale head', async () => {
    const { exportReceipts, verifyOffline, writeExport } = await import('../../src/app/receipts.ts');
    const { tempDir } = await import('../helpers.ts');
    const { cp, readdir, rm, writeFile } = await import('node:fs/promises');
    const w = await promoWorld();
    const a = await w.build('1.0.0');
    for (const env of ['dev', 'staging']) await promote(w.ctx, { artifact: a.digest, to: env });
    const out = await exportReceipts(w.ctx, { environment: 'staging', validFor: '1h' });
    const dir = await tempDir();
    await writeExport(dir, out.files);
    const base = { artifact: a.digest, environment: 'staging', receiptsDir: dir, keysDir: join(dir, 'keys'), now: w.clock.now() };
    const ok = await verifyOffline(base);
    assert.equal(ok.ok, true, JSON.stringify(ok.reasons));
    assert.deepEqual(ok.chain.map((c) => c.environment), ['staging', 'dev']);
    const codes = async (o: Partial<typeof base>) => (await verifyOffline({ ...base, ...o })).reasons.map((r) => r.code);
    assert.deepEqual(await codes({ environment: 'dev' }), ['HEAD_MISSING']);
    assert.deepEqual(await codes({ artifact: `sha256:${'0'.repeat(64)}` }), ['RECEIPT_NOT_CURRENT']);
    assert.deepEqual(await codes({ now: new Date(w.clock.now().getTime() + 2 * 3_600_000) }), ['HEAD_EXPIRED']);
    // Tampered receipt.
    const tampered = await tempDir();
    await cp(dir, tampered, { recursive: true });
    const receiptFile = join(tampered, 'receipts', out.head.receipt.slice(7) + '.json');
    await writeFile(receiptFile, (await readFile(receiptFile, 'utf8')).replace('"payload":"', '"payload":"A'));
    assert.deepEqual(await codes({ receiptsDir: tampered }), ['RECEIPT_TAMPERED']);
    // A keys directory that does not hold the receipt key: nothing it signed is trusted.
    const keys = await tempDir();
    await cp(join(dir, 'keys'), keys, { recursive: true });
    const receiptKey = (await w.ctx.store.read((tx) => tx.keys.versionsOf('receipts')))[0]!;
    await rm(join(keys, `${receiptKey.keyid}.json`));
    assert.deepEqual(await codes({ keysDir: keys }), ['HEAD_SIGNATURE_INVALID']);
    assert.ok((await readdir(keys)).length > 0);
    await rejectsWithCode(() => writeExport(dir, [{ path: '../escape.json', content: '{}' }]), 'SERVER_RESPONSE_INVALID');
    // The receipt must be in the log: its entry proves into a checkpoint signed by the log key.
    const logFile = join(dir, 'log', `${out.head.receipt.slice(7)}.json`);
    const record = JSON.parse(await readFile(logFile, 'utf8')) as { index: number; body: string; inclusion?: { hashes: string[] } };
    assert.ok(record.inclusion, 'the export carries the inclusion proof');
    const noProof = await tempDir();
    await cp(dir, noProof, { recursive: true });
    await writeFile(join(noProof, 'log', `${out.head.receipt.slice(7)}.json`), JSON.stringify({ index: record.index, body: record.body }));
    assert.deepEqual(await codes({ receiptsDir: noProof }), ['NOT_IN_LOG']);
    const forged = await tempDir();
    await cp(dir, forged, { recursive: true });
    await writeFile(join(forged, 'log', `${out.head.receipt.slice(7)}.json`), JSON.stringify({ ...record, body: record.body.replace('"promotion.promoted"', '"promotion.promoted" ') }));
    assert.ok(['INCLUSION_INVALID', 'NOT_IN_LOG'].includes((await codes({ receiptsDir: forged }))[0] ?? ''));
  });
});
