import { CustodyError } from '../errors.ts';

/**
 * The promotion state machine. Every transition is checked against this table
 * before it is written, and every accepted transition is a log entry written in
 * the same transaction as the state change.
 *
 *   requested → evaluating → awaiting-approval → applying → promoted
 *                   │               │               │
 *                   ├→ rejected ←───┤               └→ failed
 *                   └→ applying     └→ evaluating (re-plan after a vote or a stale approval)
 *   requested | evaluating | awaiting-approval → cancelled
 */
export const PROMOTION_STATES = ['requested', 'evaluating', 'awaiting-approval', 'applying', 'promoted', 'rejected', 'failed', 'cancelled'] as const;
export type PromotionState = (typeof PROMOTION_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<PromotionState> = new Set(['promoted', 'rejected', 'failed', 'cancelled']);

const TRANSITIONS: Readonly<Record<PromotionState, readonly PromotionState[]>> = {
  requested: ['evaluating', 'cancelled'],
  evaluating: ['awaiting-approval', 'applying', 'rejected', 'cancelled'],
  'awaiting-approval': ['evaluating', 'applying', 'rejected', 'cancelled'],
  // Once effects have started, only their outcome may follow: no cancel half-way.
  applying: ['promoted', 'failed'],
  promoted: [],
  rejected: [],
  failed: [],
  cancelled: [],
};

export function canTransition(from: PromotionState, to: PromotionState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: PromotionState, to: PromotionState): void {
  if (!canTransition(from, to)) {
    throw new CustodyError('PROMOTION_TRANSITION_INVALID', `promotion ${id} cannot go from ${from} to ${to}`, {
      details: { id, from, to, allowed: TRANSITIONS[from] },
      hint: TERMINAL_STATES.has(from) ? `${from} is final; start a new promotion` : `from ${from} it may go to ${TRANSITIONS[from].join(', ')}`,
    });
  }
}

export function isTerminal(state: PromotionState): boolean {
  return TERMINAL_STATES.has(state);
}

export function isPromotionState(s: string): s is PromotionState {
  return (PROMOTION_STATES as readonly string[]).includes(s);
}

/** Every legal edge, for tests and documentation. */
export function transitionTable(): [PromotionState, PromotionState][] {
  return PROMOTION_STATES.flatMap((from) => TRANSITIONS[from].map((to): [PromotionState, PromotionState] => [from, to]));
}
