import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { revokeKey } from '../../../src/core/key.ts';
import { planPromotion } from '../../../src/core/promotion/index.ts';
import { artifactOf, attest, input, policy, PROVENANCE, provenancePredicate, verified, world } from './world.ts';

describe('planPromotion', () => {
  it('applies when every gate passes, recording the evidence, policy and environment it relied on', async () => {
    const w = await world();
    const { plan } = await w.promote('dev');
    assert.equal(plan.action, 'apply');
    assert.deepEqual(plan.reasons, []);
    assert.equal(plan.decision.outcome, 'pass');
    assert.deepEqual(plan.relied.evidence.map((e) => e.digest), [w.evidence[0]!.digest]);
    const [e] = plan.relied.evidence;
    assert.deepEqual(e?.gates, ['provenance']);
    assert.equal(e?.signers[0]?.key, 'build-ci@1');
    assert.equal(e?.signers[0]?.owner, 'ci:acme');
    assert.match(plan.relied.policy.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(plan.relied.environment.seq, 1);
    assert.deepEqual(plan.relied.approvals, ['carol@acme']);
    assert.match(plan.fingerprint, /^sha256:/);
  });

  it('waits for approval when the approvals gate is pending', async () => {
    const w = await world();
    const { plan } = await w.promote('dev', { approvals: [] });
    assert.equal(plan.action, 'await-approval');
    assert.deepEqual(plan.reasons.map((r) => r.code), ['APPROVALS_NEEDED']);
    assert.match(plan.reasons[0]?.message ?? '', /^approvals: /);
  });

  it('rejects with every failing gate and its reason', async () => {
    const w = await world();
    const { plan } = await w.promote('dev', { evidence: [] });
    assert.equal(plan.action, 'reject');
    assert.ok(plan.reasons.some((r) => r.code === 'EVIDENCE_MISSING' && r.message.startsWith('provenance: ')));
  });

  it('rejects a promotion that does not continue a receipt in a source environment (P4)', async () => {
    const w = await world();
    const skipped = await w.promote('staging');
    assert.equal(skipped.plan.action, 'reject');
    assert.deepEqual(skipped.plan.reasons.map((r) => r.code), ['CHAIN_INCOMPLETE']);
    const dev = await w.promote('dev');
    const staging = await w.promote('staging');
    assert.equal(staging.plan.action, 'apply');
    assert.deepEqual(staging.plan.relied.sources, [{ environment: 'dev', promotion: dev.plan.promotion, receipt: dev.receipt.digest }]);
  });

  it('never counts evidence about another artifact (mix-and-match)', async () => {
    const w = await world();
    const other = artifactOf('pkg:npm/other', '9.9.9');
    const foreign = await attest(w.buildCi, other, PROVENANCE, provenancePredicate);
    // Through the pipeline the foreign statement fails its subject check and no gate counts it.
    const { plan } = await w.promote('dev', { evidence: [foreign] });
    assert.equal(plan.action, 'reject');
    assert.ok(plan.reasons.some((r) => /no statement subject has the artifact's digest/.test(r.message)), JSON.stringify(plan.reasons));
    // Even if something upstream marked it verified, the plan checks the subject itself (P3).
    const [item] = verified([foreign], other, w.trusted());
    const forged = { ...item!, digest: item!.digest };
    const p2 = planPromotion({
      promotion: { id: 'pr_mix', kind: 'promotion' },
      policy: policy(`  provenance:\n    require:\n      predicateType: ${PROVENANCE}\n      signers: [{ key: build-ci }]`),
      input: input(w.artifact, [forged], w.keys(), { environment: { name: 'dev', from: [] } }),
      environment: { name: 'dev', from: [], seq: 0, current: null },
      sources: [],
    });
    assert.equal(p2.action, 'reject');
    assert.deepEqual(p2.reasons.map((r) => r.code), ['EVIDENCE_MISMATCH']);
  });

  it('exempts a rollback from versioning, and nothing else', async () => {
    const w = await world();
    const gates = `  provenance:\n    require:\n      predicateType: ${PROVENANCE}\n      signers: [{ key: build-ci }]\n  versioning:\n    versioning:\n      noDowngrade: true`;
    const current = { version: '2.0.0', digest: `sha256:${'c'.repeat(64)}` };
    const items = verified(w.evidence, w.artifact, w.trusted());
    const plan = (kind: 'promotion' | 'rollback', ev = items) =>
      planPromotion({
        promotion: { id: `pr_${kind}`, kind },
        policy: policy(gates),
        input: input(w.artifact, ev, w.keys(), { current }),
        environment: { name: 'dev', from: [], seq: 3, current: null },
        sources: [],
      });
    assert.equal(plan('promotion').action, 'reject');
    assert.ok(plan('promotion').reasons.some((r) => r.code === 'DOWNGRADE'));
    assert.equal(plan('rollback').action, 'apply');
    assert.equal(plan('rollback').decision.gates.find((g) => g.name === 'versioning')?.outcome, 'pass', 'no downgrade check for a rollback');
    assert.equal(plan('rollback', []).action, 'reject', 'a rollback still needs valid evidence');
  });

  it('fingerprints what a voter sees: the evidence set and key revocations', async () => {
    const w = await world();
    const items = verified(w.evidence, w.artifact, w.trusted());
    const base = { promotion: { id: 'pr_fp', kind: 'promotion' as const }, policy: policy(), environment: { name: 'dev', from: [], seq: 0, current: null }, sources: [] };
    const a = planPromotion({ ...base, input: input(w.artifact, items, w.keys()) });
    assert.equal(planPromotion({ ...base, input: input(w.artifact, items, w.keys()) }).fingerprint, a.fingerprint, 'deterministic');
    const more = verified([...w.evidence, await attest(w.buildCi, w.artifact, 'https://in-toto.io/attestation/test-result/v0.1', { result: 'PASSED', configuration: [] })], w.artifact, w.trusted());
    assert.notEqual(planPromotion({ ...base, input: input(w.artifact, more, w.keys()) }).fingerprint, a.fingerprint);
    const revoked = revokeKey(w.buildCi.record, { reason: 'compromised', now: new Date('2026-03-11T00:00:00Z') });
    assert.notEqual(planPromotion({ ...base, input: input(w.artifact, items, [revoked, w.receiptKey.record]) }).fingerprint, a.fingerprint);
  });
});
