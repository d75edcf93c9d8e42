/** The promotion engine's public entry: other modules import from here, not from its files. */
export { assertTransition, canTransition, finishes, isPromotionState, isTerminal, transitionTable, OPEN_STATES, PROMOTION_STATES, REACHED_STATES, TERMINAL_STATES, type PromotionState } from './state.ts';
export { planPromotion, type PlanInput } from './plan.ts';
export { countedApprovals, fingerprintOf, seenState, staleVotes, voteRefusals, type StaleVote, type VoteRequest } from './votes.ts';
export {
  buildReceiptStatement,
  environmentLevel,
  policyUri,
  resourceUri,
  slsaBuildLevel,
  HEAD_PAYLOAD_TYPE,
  PROVENANCE_PREDICATE_TYPE,
  VSA_PREDICATE_TYPE,
  type EnvironmentHead,
  type ReceiptFacts,
  type ReceiptInput,
  type ReceiptPredicate,
} from './receipt.ts';
export { inclusionChecker, verifyDeployment, type ChainLink, type CurrentSource, type DeployRequest, type DeployVerification, type LogRecord } from './deploy.ts';
export { PromotionLedger, rowDifference, type LedgerEntry, type LedgerStep, type LoggedPromotion } from './ledger.ts';
export type * from './types.ts';
