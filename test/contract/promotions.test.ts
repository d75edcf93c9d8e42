/** The promotion, approval and environment-state repositories' contract, on every store. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isUniqueViolation } from '../../src/core/errors.ts';
import type { Promotion, Vote } from '../../src/core/promotion/index.ts';
import { forEachStore } from './stores.ts';

function promotion(id: string, seq: number, over: Partial<Promotion> = {}): Promotion {
  return {
    id,
    seq,
    environment: 'prod',
    artifact: { digest: `sha256:${String(seq).repeat(64).slice(0, 64)}`, name: 'pkg:npm/app', version: `1.0.${seq}` },
    kind: 'promotion',
    state: 'requested',
    requestedBy: 'ci:deployer',
    requestedAt: `2026-03-10T10:00:0${seq % 10}.000Z`,
    updatedAt: '2026-03-10T10:00:00.000Z',
    finishedAt: null,
    idempotencyKey: null,
    plan: null,
    outcome: null,
    targetOutput: null,
    receipt: null,
    logIndex: null,
    proof: null,
    owner: null,
    leaseExpiresAt: null,
    ...over,
  };
}

function vote(identity: string, over: Partial<Vote> = {}): Vote {
  return { promotion: 'pr_1', identity, vote: 'approve', comment: 'lgtm', roles: ['approver'], groups: ['release-managers'], time: '2026-03-10T11:00:00.000Z', fingerprint: 'sha256:ab', seen: { evidence: ['sha256:1'], keys: [] }, invalidatedAt: null, invalidatedReason: null, ...over };
}

forEachStore((h) => {
  it('round-trips a promotion with its plan, outcome and proof, and updates it', async () => {
    const { store } = await h.fresh();
    const p = promotion('pr_1', 1, { idempotencyKey: 'build-42', outcome: { code: 'X', message: 'why' } });
    await store.transaction((tx) => tx.promotions.insert(p));
    assert.deepEqual(await store.read((tx) => tx.promotions.byId('pr_1')), p);
    const done = { ...p, state: 'promoted' as const, receipt: `sha256:${'f'.repeat(64)}` as const, logIndex: 12345678901, proof: { index: 1, size: 2, hashes: ['aa'], checkpoint: 'note' }, targetOutput: 'ok\n' };
    await store.transaction((tx) => tx.promotions.update(done));
    assert.deepEqual(await store.read((tx) => tx.promotions.byId('pr_1')), done);
    assert.equal(await store.read((tx) => tx.promotions.byId('pr_nope')), undefined);
  });

  it('finds a promotion by idempotency key, unique per requester and environment', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      await tx.promotions.insert(promotion('pr_1', 1, { idempotencyKey: 'k' }));
      // Same key, another environment or another requester: different promotions. No key: never unique.
      await tx.promotions.insert(promotion('pr_2', 2, { idempotencyKey: 'k', environment: 'dev' }));
      await tx.promotions.insert(promotion('pr_3', 3, { idempotencyKey: 'k', requestedBy: 'someone' }));
      await tx.promotions.insert(promotion('pr_4', 4));
      await tx.promotions.insert(promotion('pr_5', 5));
    });
    assert.equal((await store.read((tx) => tx.promotions.byIdempotencyKey('ci:deployer', 'prod', 'k')))?.id, 'pr_1');
    assert.equal(await store.read((tx) => tx.promotions.byIdempotencyKey('ci:deployer', 'prod', 'other')), undefined);
    await assert.rejects(
      store.transaction((tx) => tx.promotions.insert(promotion('pr_6', 6, { idempotencyKey: 'k' }))),
      (e) => isUniqueViolation(e, 'promotions'),
    );
  });

  it('lists newest first, filtered by environment, artifact, state and kind, counts seq up, and counts every row', async () => {
    const { store } = await h.fresh();
    assert.equal(await store.read((tx) => tx.promotions.nextSeq()), 1);
    assert.equal(await store.read((tx) => tx.promotions.count()), 0);
    await store.transaction(async (tx) => {
      await tx.promotions.insert(promotion('pr_1', 1, { state: 'promoted' }));
      await tx.promotions.insert(promotion('pr_2', 2, { environment: 'dev', state: 'rejected' }));
      await tx.promotions.insert(promotion('pr_3', 3, { state: 'awaiting-approval', kind: 'rollback' }));
      await tx.promotions.insert(promotion('pr_10', 10, { artifact: promotion('x', 1).artifact }));
    });
    await store.read(async (tx) => {
      assert.equal(await tx.promotions.nextSeq(), 11);
      assert.equal(await tx.promotions.count(), 4);
      assert.deepEqual((await tx.promotions.byIds(['pr_3', 'pr_nope', 'pr_1'])).map((p) => p.id).sort(), ['pr_1', 'pr_3']);
      assert.deepEqual(await tx.promotions.byIds([]), []);
      // More ids than one statement binds: read in batches, each found once.
      const many = [...Array.from({ length: 1200 }, (_, i) => `pr_missing_${i}`), 'pr_10', 'pr_2'];
      assert.deepEqual((await tx.promotions.byIds(many)).map((p) => [p.id, p.state]).sort(), [['pr_10', 'requested'], ['pr_2', 'rejected']]);
      assert.deepEqual((await tx.promotions.list()).map((p) => p.id), ['pr_10', 'pr_3', 'pr_2', 'pr_1']);
      assert.deepEqual((await tx.promotions.list({ environment: 'prod' })).map((p) => p.id), ['pr_10', 'pr_3', 'pr_1']);
      assert.deepEqual((await tx.promotions.list({ artifact: promotion('x', 1).artifact.digest })).map((p) => p.id), ['pr_10', 'pr_1']);
      assert.deepEqual((await tx.promotions.list({ states: ['promoted', 'awaiting-approval'] })).map((p) => p.id), ['pr_3', 'pr_1']);
      assert.deepEqual((await tx.promotions.list({ states: [] })).map((p) => p.id), []);
      assert.deepEqual((await tx.promotions.list({ kind: 'rollback' })).map((p) => p.id), ['pr_3']);
      assert.deepEqual((await tx.promotions.list({ limit: 1 })).map((p) => p.id), ['pr_10']);
    });
  });

  it('gives an artifact\'s settled promotions, oldest first: promoted, replaced and rolled back, never one that did not get there', async () => {
    const { store } = await h.fresh();
    const artifact = promotion('x', 1).artifact;
    const at = (s: string) => `2026-03-10T1${s}:00:00.000Z`;
    await store.transaction(async (tx) => {
      await tx.promotions.insert(promotion('pr_1', 1, { environment: 'dev', state: 'replaced', finishedAt: at('0'), updatedAt: at('2') }));
      await tx.promotions.insert(promotion('pr_2', 2, { environment: 'staging', state: 'promoted', finishedAt: at('1'), updatedAt: at('1') }));
      await tx.promotions.insert(promotion('pr_3', 3, { artifact, environment: 'dev', state: 'promoted', finishedAt: at('2'), updatedAt: at('2') }));
      await tx.promotions.insert(promotion('pr_4', 4, { environment: 'prod', state: 'rolled-back', finishedAt: at('3'), updatedAt: at('4') }));
      // Never promoted: none of these is history, whatever their times say.
      await tx.promotions.insert(promotion('pr_5', 5, { state: 'rejected', finishedAt: at('5') }));
      await tx.promotions.insert(promotion('pr_6', 6, { state: 'failed', finishedAt: at('5') }));
      await tx.promotions.insert(promotion('pr_7', 7, { state: 'applying' }));
      await tx.promotions.insert(promotion('pr_8', 8, { state: 'awaiting-approval' }));
    });
    // pr_3 promotes pr_1's artifact again (the same digest); the others each have their own.
    assert.deepEqual(await store.read((tx) => tx.promotions.settled(artifact.digest)), [
      { environment: 'dev', version: '1.0.1', state: 'replaced', finishedAt: at('0'), updatedAt: at('2') },
      { environment: 'dev', version: '1.0.1', state: 'promoted', finishedAt: at('2'), updatedAt: at('2') },
    ]);
    assert.deepEqual((await store.read((tx) => tx.promotions.settled(promotion('pr_4', 4).artifact.digest))).map((s) => s.state), ['rolled-back']);
    for (const seq of [5, 6, 7, 8]) assert.deepEqual(await store.read((tx) => tx.promotions.settled(promotion('p', seq).artifact.digest)), []);
  });

  it('keeps one vote per identity, oldest first, and invalidates a vote once', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      await tx.promotions.insert(promotion('pr_1', 1));
      await tx.approvals.insert(vote('carol', { time: '2026-03-10T12:00:00.000Z' }));
      await tx.approvals.insert(vote('bob', { vote: 'reject', comment: null }));
    });
    assert.deepEqual((await store.read((tx) => tx.approvals.forPromotion('pr_1'))).map((v) => [v.identity, v.vote]), [['bob', 'reject'], ['carol', 'approve']]);
    await assert.rejects(store.transaction((tx) => tx.approvals.insert(vote('carol'))), (e) => isUniqueViolation(e, 'approvals'));
    await store.transaction((tx) => tx.approvals.invalidate('pr_1', 'carol', '2026-03-10T13:00:00.000Z', 'key revoked'));
    await store.transaction((tx) => tx.approvals.invalidate('pr_1', 'carol', '2026-03-10T14:00:00.000Z', 'again'));
    const carol = (await store.read((tx) => tx.approvals.forPromotion('pr_1'))).find((v) => v.identity === 'carol');
    assert.deepEqual([carol?.invalidatedAt, carol?.invalidatedReason, carol?.groups, carol?.seen], ['2026-03-10T13:00:00.000Z', 'key revoked', ['release-managers'], { evidence: ['sha256:1'], keys: [] }]);
    // Only an invalidated vote may be cast again, replacing it.
    assert.equal(await store.transaction((tx) => tx.approvals.recast(vote('bob', { comment: 'again' }))), false);
    assert.equal(await store.transaction((tx) => tx.approvals.recast(vote('carol', { comment: 'after the new evidence', fingerprint: 'sha256:cd' }))), true);
    const recast = (await store.read((tx) => tx.approvals.forPromotion('pr_1'))).find((v) => v.identity === 'carol');
    assert.deepEqual([recast?.comment, recast?.fingerprint, recast?.invalidatedAt], ['after the new evidence', 'sha256:cd', null]);
  });

  it('moves an environment pointer compare-and-set on its sequence number', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      await tx.promotions.insert(promotion('pr_1', 1));
      await tx.promotions.insert(promotion('pr_2', 2));
    });
    const first = { environment: 'prod', current: null, applying: 'pr_1', seq: 1, updatedAt: '2026-03-10T10:00:00.000Z' };
    assert.equal(await store.transaction((tx) => tx.environments.save(first, null)), true);
    assert.equal(await store.transaction((tx) => tx.environments.save({ ...first, applying: 'pr_2' }, null)), false, 'a second creator loses');
    assert.equal(await store.transaction((tx) => tx.environments.save({ ...first, current: 'pr_1', applying: null, seq: 2 }, 1)), true);
    assert.equal(await store.transaction((tx) => tx.environments.save({ ...first, current: 'pr_2', applying: null, seq: 2 }, 1)), false, 'a stale writer loses');
    assert.deepEqual(await store.read((tx) => tx.environments.get('prod')), { ...first, current: 'pr_1', applying: null, seq: 2 });
    assert.deepEqual((await store.read((tx) => tx.environments.list())).map((e) => e.environment), ['prod']);
    assert.equal(await store.read((tx) => tx.environments.get('dev')), undefined);
  });
});
