import { CustodyError } from '../errors.ts';

/**
 * The promotion state machine. Every transition is checked against this table
 * before it is written, and every accepted transition is a log entry
 * (`promotion.<to>`) written in the same transaction as the state change.
 *
 *   requested → evaluating → awaiting-approval ⇄ evaluating
 *       │           │               │
 *       │           ├→ applying ────┼──→ promoted → replaced | rolled-back
 *       │           │      └→ failed│
 *       │           └→ rejected ←───┘
 *       └→ cancelled ← (requested | evaluating | awaiting-approval)
 *
 * The rules the table encodes, cited where they are enforced (like tuf-js cites
 * the client workflow steps of the TUF specification):
 *
 * - S1 A promotion is recorded `requested` before anything is evaluated, so a
 *   crash leaves a trace and an idempotent retry finds it.
 * - S2 `evaluating` is entered to make a plan; the plan's action decides the
 *   next state: `rejected` (a gate failed, or it was superseded),
 *   `awaiting-approval` (a gate is pending) or `applying`.
 * - S3 Every apply follows a plan made in the same transaction: a vote moves
 *   `awaiting-approval → evaluating` and the promotion is planned again with
 *   the evidence, keys and votes of that moment. A veto moves it to `rejected`.
 * - S4 Once effects have started (`applying`) only their outcome may follow:
 *   `promoted`, or `failed` with nothing half-applied. No cancel half-way.
 * - S5 A promoted promotion stays current until another one replaces it
 *   (`replaced`) or a rollback takes the environment away from it
 *   (`rolled-back`). Both are final.
 * - S6 `rejected`, `failed`, `cancelled`, `replaced` and `rolled-back` are final:
 *   nothing leaves them; a new attempt is a new promotion.
 */
export const PROMOTION_STATES = ['requested', 'evaluating', 'awaiting-approval', 'applying', 'promoted', 'rejected', 'failed', 'cancelled', 'replaced', 'rolled-back'] as const;
export type PromotionState = (typeof PROMOTION_STATES)[number];

/** S6: states nothing leaves. */
export const TERMINAL_STATES: ReadonlySet<PromotionState> = new Set(['rejected', 'failed', 'cancelled', 'replaced', 'rolled-back']);

/** States in which a promotion is still in flight: on the status board as pending. */
export const OPEN_STATES: ReadonlySet<PromotionState> = new Set(['requested', 'evaluating', 'awaiting-approval', 'applying']);

/** States of a promotion that did reach the environment at some point. */
export const REACHED_STATES: ReadonlySet<PromotionState> = new Set(['promoted', 'replaced', 'rolled-back']);

const TRANSITIONS: Readonly<Record<PromotionState, readonly PromotionState[]>> = {
  // S1, S2
  requested: ['evaluating', 'cancelled'],
  // S2
  evaluating: ['awaiting-approval', 'applying', 'rejected', 'cancelled'],
  // S3: a vote re-plans (evaluating); a veto rejects.
  'awaiting-approval': ['evaluating', 'rejected', 'cancelled'],
  // S4
  applying: ['promoted', 'failed'],
  // S5
  promoted: ['replaced', 'rolled-back'],
  // S6
  rejected: [],
  failed: [],
  cancelled: [],
  replaced: [],
  'rolled-back': [],
};

export function canTransition(from: PromotionState, to: PromotionState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws PROMOTION_TRANSITION_INVALID (exit 4) unless the table allows `from → to`. */
export function assertTransition(id: string, from: PromotionState, to: PromotionState): void {
  if (!canTransition(from, to)) {
    const allowed = TRANSITIONS[from];
    throw new CustodyError('PROMOTION_TRANSITION_INVALID', `promotion ${id} cannot go from ${from} to ${to}`, {
      details: { id, from, to, allowed },
      hint: allowed.length === 0 ? `${from} is final; start a new promotion` : `from ${from} it may only go to ${allowed.join(', ')}`,
    });
  }
}

export function isTerminal(state: PromotionState): boolean {
  return TERMINAL_STATES.has(state);
}

/** A promotion's `finishedAt` is the first time it enters one of these: a final state, or `promoted`. */
export function finishes(state: PromotionState): boolean {
  return isTerminal(state) || state === 'promoted';
}

export function isPromotionState(s: string): s is PromotionState {
  return (PROMOTION_STATES as readonly string[]).includes(s);
}

/** Every legal edge, for tests and documentation. */
export function transitionTable(): [PromotionState, PromotionState][] {
  return PROMOTION_STATES.flatMap((from) => TRANSITIONS[from].map((to): [PromotionState, PromotionState] => [from, to]));
}
