import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PromotionLedger, rowDifference, type LedgerEntry, type LoggedPromotion, type Promotion } from '../../../src/core/promotion/index.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}` as const;
let index = 0;
const at = (minute: number) => new Date(Date.UTC(2026, 10, 26, 10, minute)).toISOString();
const entry = (type: string, id: string, minute: number, payload: Record<string, unknown> = {}, actor = 'ci:deployer'): LedgerEntry => ({
  index: index++,
  type,
  actor,
  time: at(minute),
  subject: DIGEST,
  payload: { promotion: id, environment: 'dev', kind: 'promotion', name: 'pkg:npm/app', version: '1.0.0', ...payload },
});

/** pr_a as the log tells it: promoted at minute 2, replaced at 9. */
const LOGGED: LoggedPromotion = {
  id: 'pr_a',
  environment: 'dev',
  digest: DIGEST,
  version: '1.0.0',
  kind: 'promotion',
  state: 'replaced',
  requestedBy: 'ci:deployer',
  requestedAt: at(0),
  updatedAt: at(9),
  finishedAt: at(2),
  receipt: `sha256:${'cd'.repeat(32)}`,
  logIndex: 4,
  index: 5,
};

/** Feeds entries; returns the promotions that became final, and fails on a problem. */
function feed(ledger: PromotionLedger, entries: LedgerEntry[]): LoggedPromotion[] {
  const out: LoggedPromotion[] = [];
  for (const e of entries) {
    const step = ledger.entry(e);
    assert.notEqual(step.kind, 'problem', step.kind === 'problem' ? step.message : '');
    if (step.kind === 'final') out.push(step.promotion);
  }
  return out;
}

describe('PromotionLedger', () => {
  it('replays a promotion from requested to replaced: the finish time is the promotion\'s, the update time the last entry\'s', () => {
    index = 100;
    const l = new PromotionLedger();
    const final = feed(l, [
      entry('promotion.requested', 'pr_a', 0),
      entry('artifact.added', 'pr_a', 0),
      entry('promotion.evaluating', 'pr_a', 0),
      entry('promotion.applying', 'pr_a', 1),
      entry('promotion.promoted', 'pr_a', 2, { receipt: `sha256:${'cd'.repeat(32)}` }),
    ]);
    assert.deepEqual(final, []);
    assert.equal(l.unsettled().length, 1);
    const [replaced] = feed(l, [entry('promotion.replaced', 'pr_a', 9)]);
    assert.deepEqual(replaced, { ...LOGGED, logIndex: 104, index: 105 });
    assert.deepEqual(l.unsettled(), []);
    assert.equal(l.requested, 1);
  });

  it('hands back rejected, failed and cancelled promotions as final, each with its own finish time', () => {
    const l = new PromotionLedger();
    const final = feed(l, [
      entry('promotion.requested', 'pr_r', 0),
      entry('promotion.requested', 'pr_f', 0),
      entry('promotion.requested', 'pr_c', 0),
      entry('promotion.evaluating', 'pr_r', 1),
      entry('promotion.awaiting-approval', 'pr_r', 1),
      entry('promotion.evaluating', 'pr_r', 3),
      entry('promotion.rejected', 'pr_r', 3),
      entry('promotion.evaluating', 'pr_f', 1),
      entry('promotion.applying', 'pr_f', 1),
      entry('promotion.failed', 'pr_f', 4),
      entry('promotion.cancelled', 'pr_c', 5),
    ]);
    assert.deepEqual(final.map((p) => [p.id, p.state, p.finishedAt, p.receipt]), [['pr_r', 'rejected', at(3), null], ['pr_f', 'failed', at(4), null], ['pr_c', 'cancelled', at(5), null]]);
    assert.equal(l.requested, 3);
  });

  it('reports an entry the state machine does not allow, one for an unknown or final promotion, a second request, and an entry naming no promotion', () => {
    const problem = (entries: LedgerEntry[]) => {
      const l = new PromotionLedger();
      for (const e of entries) {
        const s = l.entry(e);
        if (s.kind === 'problem') return s.message;
      }
      return undefined;
    };
    assert.match(problem([entry('promotion.requested', 'pr_x', 0), entry('promotion.promoted', 'pr_x', 1)]) ?? '', /moves pr_x from requested to promoted, which the state machine does not allow/);
    assert.match(problem([entry('promotion.evaluating', 'pr_y', 0)]) ?? '', /moves pr_y to evaluating, but the log never requested it or it was already final/);
    assert.match(problem([entry('promotion.requested', 'pr_z', 0), entry('promotion.cancelled', 'pr_z', 1), entry('promotion.evaluating', 'pr_z', 2)]) ?? '', /already final/);
    assert.match(problem([entry('promotion.requested', 'pr_w', 0), entry('promotion.requested', 'pr_w', 1)]) ?? '', /requests pr_w a second time/);
    assert.match(problem([{ ...entry('promotion.requested', 'pr_v', 0), payload: { environment: 'dev' } }]) ?? '', /names no promotion/);
    assert.match(problem([entry('promotion.teleported', 'pr_u', 0)]) ?? '', /no state a promotion has/);
  });
});

describe('PromotionLedger: the votes an apply relied on', () => {
  const flow = (votes: LedgerEntry[], relied: string[]) => {
    const l = new PromotionLedger();
    const entries = [
      entry('promotion.requested', 'pr_v', 0),
      entry('promotion.evaluating', 'pr_v', 0),
      entry('promotion.awaiting-approval', 'pr_v', 0),
      ...votes,
      entry('promotion.evaluating', 'pr_v', 5),
      entry('promotion.applying', 'pr_v', 5, { approvals: relied }),
    ];
    for (const e of entries) {
      const s = l.entry(e);
      if (s.kind === 'problem') return s.message;
    }
    return undefined;
  };
  const given = (who: string, minute: number) => entry('approval.given', 'pr_v', minute, { vote: 'approve' }, who);
  const invalidated = (who: string, minute: number) => entry('approval.invalidated', 'pr_v', minute, { identity: who, reason: 'evidence added since the vote' });

  it('accepts an apply whose every counted vote was given and still stands, a recast one included', () => {
    assert.equal(flow([given('carol', 1), given('dave', 2)], ['carol', 'dave']), undefined);
    assert.equal(flow([given('carol', 1), invalidated('carol', 2), given('carol', 3), given('dave', 4)], ['carol', 'dave']), undefined);
    // Votes on another promotion, or on none the log has, change nothing here.
    assert.equal(flow([given('carol', 1), entry('approval.given', 'pr_other', 1, {}, 'dave')], ['carol']), undefined);
  });

  it('reports an apply that counted a vote never given, or one invalidated since', () => {
    assert.match(flow([given('carol', 1)], ['carol', 'eve']) ?? '', /applies pr_v relying on an approval by "eve" that the log does not hold/);
    assert.match(flow([given('carol', 1), given('dave', 2), invalidated('dave', 3)], ['carol', 'dave']) ?? '', /approval by "dave"/);
    assert.match(flow([entry('approval.given', 'pr_other', 1, {}, 'carol')], ['carol']) ?? '', /approval by "carol"/);
  });
});

describe('rowDifference', () => {
  // The row Custody writes for LOGGED: the same facts, plus what the log does not carry.
  const { digest: _digest, version, index: _index, ...same } = LOGGED;
  const row = (over: Partial<Promotion> = {}): Promotion => ({
    ...same,
    kind: 'promotion',
    artifact: { digest: DIGEST, name: 'pkg:npm/app', version },
    receipt: `sha256:${'cd'.repeat(32)}` as const,
    idempotencyKey: null,
    plan: null,
    outcome: null,
    targetOutput: null,
    proof: null,
    owner: null,
    leaseExpiresAt: null,
    seq: 1,
    ...over,
  });

  it('agrees with an equal row, whatever it holds beyond the log (plan, proof, owner, lease)', () => {
    assert.equal(rowDifference(LOGGED, row({ owner: 'h:1:x', leaseExpiresAt: at(30), outcome: { code: 'X', message: 'y' } })), undefined);
  });

  it('names every field that differs, with both values, and a missing row', () => {
    assert.equal(rowDifference(LOGGED, row({ finishedAt: at(1) })), `the row of pr_a says finished at "${at(1)}" (the log: "${at(2)}")`);
    assert.equal(
      rowDifference(LOGGED, row({ state: 'promoted', environment: 'prod', artifact: { digest: `sha256:${'ef'.repeat(32)}` as const, name: 'pkg:npm/app', version: '9.9.9' }, receipt: null, logIndex: null })),
      `the row of pr_a says environment "prod" (the log: "dev"), artifact "sha256:${'ef'.repeat(32)}" (the log: "${DIGEST}"), version "9.9.9" (the log: "1.0.0"), state "promoted" (the log: "replaced"), receipt none (the log: "sha256:${'cd'.repeat(32)}"), log index none (the log: 4)`,
    );
    assert.equal(rowDifference(LOGGED, row({ requestedBy: 'mallory', requestedAt: at(1), updatedAt: at(8), kind: 'rollback' })), `the row of pr_a says kind "rollback" (the log: "promotion"), requested by "mallory" (the log: "ci:deployer"), requested at "${at(1)}" (the log: "${at(0)}"), updated at "${at(8)}" (the log: "${at(9)}")`);
    assert.equal(rowDifference(LOGGED, undefined), 'pr_a is in the log (last at entry 5) and has no row');
  });
});
