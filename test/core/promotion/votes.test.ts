import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { revokeKey } from '../../../src/core/key.ts';
import { countedApprovals, fingerprintOf, seenState, staleVotes, voteRefusals, type Plan, type Vote } from '../../../src/core/promotion/index.ts';
import { attest, verified, world } from './world.ts';

function vote(identity: string, seen: Vote['seen'], over: Partial<Vote> = {}): Vote {
  return { promotion: 'pr_1', identity, vote: 'approve', comment: null, roles: ['approver'], groups: [], time: '2026-03-11T10:00:00.000Z', fingerprint: fingerprintOf(seen), seen, invalidatedAt: null, invalidatedReason: null, ...over };
}

describe('votes: separation of duties', async () => {
  const w = await world();
  const { plan } = await w.promote('dev', { approvals: [] });
  const promotion = { id: plan.promotion, requestedBy: 'ci:deployer' };
  const codes = (voter: string, roles: string[], kind: 'approve' | 'reject' = 'approve', votes: Vote[] = [], p: Pick<Plan, 'relied'> | null = plan) =>
    voteRefusals({ promotion, plan: p, voter: { identity: voter, roles }, vote: kind, votes }).map((r) => r.code);

  it('lets an approver who is neither the requester nor a signer approve', () => {
    assert.deepEqual(codes('carol@acme', ['approver']), []);
  });

  it('V1: refuses an identity without the approver role', () => {
    assert.deepEqual(codes('dave@acme', ['deployer']), ['APPROVER_ROLE_MISSING']);
    assert.deepEqual(codes('dave@acme', ['deployer'], 'reject'), ['APPROVER_ROLE_MISSING']);
  });

  it('V2: refuses the requester', () => {
    assert.deepEqual(codes('ci:deployer', ['approver', 'deployer']), ['APPROVER_IS_REQUESTER']);
  });

  it('V3: refuses the owner of a key that signed evidence the plan relies on', () => {
    const refusal = voteRefusals({ promotion, plan, voter: { identity: 'ci:acme', roles: ['approver'] }, vote: 'approve', votes: [] });
    assert.deepEqual(refusal.map((r) => r.code), ['APPROVER_SIGNED_EVIDENCE']);
    assert.match(refusal[0]?.message ?? '', /build-ci@1/);
  });

  it('V3: refuses the certificate identity of keyless evidence the plan relies on', () => {
    const keyless: Pick<Plan, 'relied'> = {
      relied: { ...plan.relied, evidence: [{ ...plan.relied.evidence[0]!, signers: [{ keyid: 'x', certificateIdentity: 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main' }] }] },
    };
    assert.deepEqual(codes('https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main', ['approver'], 'approve', [], keyless), ['APPROVER_SIGNED_EVIDENCE']);
  });

  it('V4: one vote per identity, approve or reject', () => {
    const seen = plan.seen;
    assert.deepEqual(codes('carol@acme', ['approver'], 'approve', [vote('carol@acme', seen)]), ['ALREADY_VOTED']);
    assert.deepEqual(codes('carol@acme', ['approver'], 'reject', [vote('carol@acme', seen)]), ['ALREADY_VOTED']);
    assert.deepEqual(codes('carol@acme', ['approver'], 'approve', [vote('carol@acme', seen, { vote: 'reject' })]), ['ALREADY_VOTED']);
    // A vote invalidated as stale no longer stands: its voter may judge what is true now.
    assert.deepEqual(codes('carol@acme', ['approver'], 'approve', [vote('carol@acme', seen, { invalidatedAt: 'x', invalidatedReason: 'stale' })]), []);
  });

  it('V6: a veto needs only the role and a first vote (the requester and signers may stop a promotion)', () => {
    assert.deepEqual(codes('ci:deployer', ['approver'], 'reject'), []);
    assert.deepEqual(codes('ci:acme', ['approver'], 'reject'), []);
  });

  it('reports every refusal at once', () => {
    assert.deepEqual(codes('ci:deployer', ['deployer'], 'approve', [vote('ci:deployer', plan.seen)]).sort(), ['ALREADY_VOTED', 'APPROVER_IS_REQUESTER', 'APPROVER_ROLE_MISSING']);
  });
});

describe('votes: staleness (V5)', async () => {
  const w = await world();
  const items = verified(w.evidence, w.artifact, w.trusted());
  const seen = seenState(items, w.keys());

  it('counts a vote cast on what is still true', () => {
    const v = vote('carol@acme', seen);
    assert.deepEqual(staleVotes([v], seen), []);
    assert.deepEqual(countedApprovals([v, vote('erin@acme', seen, { vote: 'reject' })], seen).map((x) => x.identity), ['carol@acme']);
  });

  it('invalidates a vote when evidence was added since', async () => {
    const extra = await attest(w.buildCi, w.artifact, 'https://in-toto.io/attestation/vulns/v0.1', { scanner: { uri: 'x', result: [] } });
    const now = seenState(verified([...w.evidence, extra], w.artifact, w.trusted()), w.keys());
    const [stale] = staleVotes([vote('carol@acme', seen)], now);
    assert.equal(stale?.identity, 'carol@acme');
    assert.match(stale?.reason ?? '', /evidence added since the vote/);
    assert.deepEqual(countedApprovals([vote('carol@acme', seen)], now), []);
  });

  it('invalidates a vote when a key that signed the evidence was revoked since', () => {
    const revoked = revokeKey(w.buildCi.record, { reason: 'compromised', compromisedSince: new Date('2026-03-01T00:00:00Z'), now: new Date('2026-03-11T12:00:00Z') });
    const now = seenState(items, [revoked, w.receiptKey.record]);
    const [stale] = staleVotes([vote('carol@acme', seen)], now);
    assert.match(stale?.reason ?? '', /revoked 2026-03-11T12:00:00.000Z \(compromised since 2026-03-01/);
  });

  it('ignores a rotation (retirement re-judges nothing) and receipts for other environments', () => {
    const retired = { ...w.buildCi.record, status: 'retired' as const, retiredAt: '2026-03-11T00:00:00.000Z' };
    assert.deepEqual(staleVotes([vote('carol@acme', seen)], seenState(items, [retired, w.receiptKey.record])), []);
    const receipt = { ...items[0]!, digest: `sha256:${'d'.repeat(64)}` as const, predicateType: 'https://slsa.dev/verification_summary/v1' };
    assert.deepEqual(staleVotes([vote('carol@acme', seen)], seenState([...items, receipt], w.keys())), []);
  });

  it('does not report a vote already invalidated', () => {
    const now = seenState([], w.keys());
    assert.deepEqual(staleVotes([vote('carol@acme', seen, { invalidatedAt: '2026-03-11T00:00:00Z', invalidatedReason: 'x' })], now), []);
  });
});
