import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertTransition, canTransition, isTerminal, PROMOTION_STATES, transitionTable, type PromotionState } from '../../../src/core/promotion/index.ts';
import { throwsWithCode } from '../../helpers.ts';

const LEGAL: [PromotionState, PromotionState][] = [
  ['requested', 'evaluating'],
  ['requested', 'cancelled'],
  ['evaluating', 'awaiting-approval'],
  ['evaluating', 'applying'],
  ['evaluating', 'rejected'],
  ['evaluating', 'cancelled'],
  ['awaiting-approval', 'evaluating'],
  ['awaiting-approval', 'rejected'],
  ['awaiting-approval', 'cancelled'],
  ['applying', 'promoted'],
  ['applying', 'failed'],
  ['promoted', 'replaced'],
  ['promoted', 'rolled-back'],
];

describe('promotion state machine', () => {
  it('has exactly the documented edges', () => {
    assert.deepEqual(new Set(transitionTable().map(([a, b]) => `${a}→${b}`)), new Set(LEGAL.map(([a, b]) => `${a}→${b}`)));
  });

  // Every ordered pair of states, legal and illegal, so a new edge cannot slip in unnoticed.
  for (const from of PROMOTION_STATES) {
    for (const to of PROMOTION_STATES) {
      const legal = LEGAL.some(([a, b]) => a === from && b === to);
      it(`${from} → ${to}: ${legal ? 'allowed' : 'PROMOTION_TRANSITION_INVALID'}`, () => {
        assert.equal(canTransition(from, to), legal);
        if (legal) assertTransition('pr_x', from, to);
        else {
          const e = throwsWithCode(() => assertTransition('pr_x', from, to), 'PROMOTION_TRANSITION_INVALID');
          assert.equal(e.exitCode, 4);
          assert.deepEqual(e.details?.['from'], from);
          assert.match(e.hint ?? '', isTerminal(from) ? /final/ : /may only go to/);
        }
      });
    }
  }

  it('never leaves a final state, and never cancels once applying', () => {
    for (const s of ['rejected', 'failed', 'cancelled', 'replaced', 'rolled-back'] as const) {
      assert.equal(isTerminal(s), true);
      for (const to of PROMOTION_STATES) assert.equal(canTransition(s, to), false, `${s} → ${to}`);
    }
    assert.equal(canTransition('applying', 'cancelled'), false);
    assert.equal(canTransition('awaiting-approval', 'applying'), false, 'an apply always follows a fresh plan');
    assert.equal(isTerminal('promoted'), false, 'a promoted promotion can still be replaced or rolled back');
  });
});
