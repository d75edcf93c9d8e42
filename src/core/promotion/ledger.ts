/**
 * The promotions as the log tells them. Every change of a promotion's state is
 * a `promotion.<state>` entry written in the same transaction as its row
 * (state.ts), so replaying the entries in log order gives each promotion's
 * state, times, receipt and entry index, and the row must say the same.
 *
 * Why it matters: the policy's history gates (soak, `from`) and the status
 * board read the rows, not the log. A row edited behind Custody's back (a
 * back-dated `finished_at` to shorten a soak, a `replaced` turned back into
 * `promoted`, a row inserted for a promotion that never happened) leaves the
 * log intact; `audit verify` finds it by comparing the two.
 *
 * The votes too: an apply that relied on an approval the log does not hold
 * (an approvals row forged to meet a quorum, or one invalidated since) is a
 * finding of the log alone.
 *
 * Pure. Memory: the promotions not yet in a final state (at most one
 * `promoted` per environment, plus those in flight); a promotion is handed
 * back for comparison as soon as it is final.
 */
import { canTransition, finishes, isPromotionState, isTerminal, type PromotionState } from './state.ts';
import type { Promotion } from './types.ts';

/** What the log says of one promotion: every field of its row whose every change is a `promotion.*` entry. */
export interface LoggedPromotion {
  id: string;
  environment: string;
  digest: string;
  version: string;
  kind: string;
  state: PromotionState;
  requestedBy: string;
  requestedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  receipt: string | null;
  /** The `promotion.promoted` entry's index. */
  logIndex: number | null;
  /** The index of its latest entry: where a difference is reported. */
  index: number;
}

/** A log entry as the ledger reads it. */
export interface LedgerEntry {
  index: number;
  type: string;
  actor: string;
  time: string;
  subject?: string | undefined;
  payload: Record<string, unknown>;
}

export type LedgerStep = { kind: 'none' } | { kind: 'final'; promotion: LoggedPromotion } | { kind: 'problem'; message: string };

const PREFIX = 'promotion.';
const NONE: LedgerStep = { kind: 'none' };

export class PromotionLedger {
  private readonly open = new Map<string, LoggedPromotion>();
  /** Per open promotion: the identities whose approval the log holds and has not invalidated since. */
  private readonly approvers = new Map<string, Set<string>>();
  /** Promotions the log requested: the number of rows there must be. */
  requested = 0;

  /** Folds one entry in (in log order); entries of other types pass through. */
  entry(e: LedgerEntry): LedgerStep {
    if (e.type.startsWith('approval.')) return this.vote(e);
    if (!e.type.startsWith(PREFIX)) return NONE;
    const to = e.type.slice(PREFIX.length);
    const id = e.payload['promotion'];
    if (typeof id !== 'string' || !isPromotionState(to)) return { kind: 'problem', message: `entry ${e.index} (${e.type}) names no promotion, or no state a promotion has` };
    if (to === 'requested') {
      if (this.open.has(id)) return { kind: 'problem', message: `entry ${e.index} requests ${id} a second time` };
      this.requested++;
      this.open.set(id, {
        id,
        environment: text(e.payload['environment']),
        digest: e.subject ?? '',
        version: text(e.payload['version']),
        kind: text(e.payload['kind']),
        state: 'requested',
        requestedBy: e.actor,
        requestedAt: e.time,
        updatedAt: e.time,
        finishedAt: null,
        receipt: null,
        logIndex: null,
        index: e.index,
      });
      return NONE;
    }
    const p = this.open.get(id);
    if (!p) return { kind: 'problem', message: `entry ${e.index} moves ${id} to ${to}, but the log never requested it or it was already final` };
    if (!canTransition(p.state, to)) return { kind: 'problem', message: `entry ${e.index} moves ${id} from ${p.state} to ${to}, which the state machine does not allow` };
    if (to === 'applying') {
      // Separation of duties stands on the votes: every approval an apply relied on was given, in the log, and still stood.
      const relied = e.payload['approvals'];
      const held = this.approvers.get(id);
      for (const identity of Array.isArray(relied) ? relied : []) {
        if (typeof identity !== 'string' || !held?.has(identity)) {
          return { kind: 'problem', message: `entry ${e.index} applies ${id} relying on an approval by ${JSON.stringify(identity)} that the log does not hold (never given, or invalidated since)` };
        }
      }
    }
    p.state = to;
    p.updatedAt = e.time;
    p.index = e.index;
    if (finishes(to)) p.finishedAt ??= e.time;
    if (to === 'promoted') {
      p.receipt = typeof e.payload['receipt'] === 'string' ? e.payload['receipt'] : null;
      p.logIndex = e.index;
    }
    if (!isTerminal(to)) return NONE;
    this.open.delete(id);
    this.approvers.delete(id);
    return { kind: 'final', promotion: p };
  }

  /** `approval.given` adds its actor's vote to an open promotion; `approval.invalidated` takes the named identity's away. */
  private vote(e: LedgerEntry): LedgerStep {
    const id = e.payload['promotion'];
    if (typeof id !== 'string' || !this.open.has(id)) return NONE;
    if (e.type === 'approval.given') {
      let held = this.approvers.get(id);
      if (!held) this.approvers.set(id, (held = new Set()));
      held.add(e.actor);
    } else if (e.type === 'approval.invalidated' && typeof e.payload['identity'] === 'string') {
      this.approvers.get(id)?.delete(e.payload['identity']);
    }
    return NONE;
  }

  /** The promotions still open at the end of the log (in flight, or current in their environment). */
  unsettled(): LoggedPromotion[] {
    return [...this.open.values()];
  }
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** How a promotion's row differs from what the log says of it; undefined when they agree. */
export function rowDifference(logged: LoggedPromotion, row: Promotion | undefined): string | undefined {
  if (!row) return `${logged.id} is in the log (last at entry ${logged.index}) and has no row`;
  const fields: [string, unknown, unknown][] = [
    ['environment', row.environment, logged.environment],
    ['artifact', row.artifact.digest, logged.digest],
    ['version', row.artifact.version, logged.version],
    ['kind', row.kind, logged.kind],
    ['state', row.state, logged.state],
    ['requested by', row.requestedBy, logged.requestedBy],
    ['requested at', row.requestedAt, logged.requestedAt],
    ['updated at', row.updatedAt, logged.updatedAt],
    ['finished at', row.finishedAt, logged.finishedAt],
    ['receipt', row.receipt, logged.receipt],
    ['log index', row.logIndex, logged.logIndex],
  ];
  const differ = fields.filter(([, a, b]) => a !== b).map(([name, a, b]) => `${name} ${show(a)} (the log: ${show(b)})`);
  return differ.length === 0 ? undefined : `the row of ${logged.id} says ${differ.join(', ')}`;
}

function show(v: unknown): string {
  return v === null ? 'none' : JSON.stringify(v);
}
