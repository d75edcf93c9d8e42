/**
 * Reading promotions: the status board (`custody status`) and the history of
 * an environment or an artifact (`custody history`). The board is computed
 * from the store on every call and says when: nothing is cached, so a status
 * is never staler than the answer's `generatedAt`.
 */
import type { Reason } from '../core/errors.ts';
import { type Promotion, type PromotionKind, type PromotionState } from '../core/promotion/index.ts';
import { findArtifact } from './artifacts.ts';
import { environmentConfig } from './environments.ts';
import type { PromotionDeps, Recovery } from './promotion.ts';
import type { Context } from './workspace.ts';

export interface PendingView {
  id: string;
  kind: PromotionKind;
  state: PromotionState;
  artifact: { digest: string; name: string; version: string };
  requestedBy: string;
  requestedAt: string;
  waitingMs: number;
  /** What it waits for (approvals needed), from its plan. */
  waitingFor: Reason[];
  approvals: string[];
}

export interface EnvironmentView {
  name: string;
  from: string[];
  target: string;
  current: {
    promotion: string;
    kind: PromotionKind;
    artifact: { digest: string; name: string; version: string };
    since: string;
    by: string;
    approvedBy: string[];
    receipt: string | null;
  } | null;
  applying: string | null;
  pending: PendingView[];
}

export interface StatusBoard {
  generatedAt: string;
  environments: EnvironmentView[];
  /** Interrupted applies this call finished first (see recoverInterrupted). */
  recovered: Recovery[];
}

/** `custody status [--env E]`: each environment's current version, since when and who, and what is in flight. */
export async function promotionStatus(ctx: Context, input: { environment?: string | undefined } = {}, deps?: PromotionDeps): Promise<StatusBoard> {
  const names = input.environment === undefined ? Object.keys(ctx.config.environments) : [input.environment];
  if (input.environment !== undefined) environmentConfig(ctx, input.environment);
  // A board never shows a dead process's apply as live: finish those first. The
  // engine (policy, CEL, crypto) loads only when something is in flight, so a
  // quiet board stays a fast read.
  const inFlight = await ctx.store.read(async (tx) => (await Promise.all(names.map((n) => tx.promotions.open(n)))).flat());
  let recovered: Recovery[] = [];
  if (inFlight.some((p) => p.state === 'applying' || p.state === 'requested')) {
    const { recoverInterrupted, DEFAULT_PROMOTION_DEPS } = await import('./promotion.ts');
    recovered = await recoverInterrupted(ctx, input.environment === undefined ? {} : { environment: input.environment }, deps ?? DEFAULT_PROMOTION_DEPS);
  }
  const now = ctx.clock.now();
  const environments = await ctx.store.read(async (tx) => {
    const out: EnvironmentView[] = [];
    for (const name of names) {
      const cfg = ctx.config.environments[name];
      const state = await tx.environments.get(name);
      const cur = state?.current ? await tx.promotions.byId(state.current) : undefined;
      const open = await tx.promotions.open(name);
      out.push({
        name,
        from: cfg?.from ?? [],
        target: cfg?.target.type ?? 'none',
        current: cur
          ? {
              promotion: cur.id,
              kind: cur.kind,
              artifact: cur.artifact,
              since: cur.finishedAt ?? cur.updatedAt,
              by: cur.requestedBy,
              approvedBy: cur.plan?.relied.approvals ?? [],
              receipt: cur.receipt,
            }
          : null,
        applying: state?.applying ?? null,
        pending: open
          .map((p) => ({
            id: p.id,
            kind: p.kind,
            state: p.state,
            artifact: p.artifact,
            requestedBy: p.requestedBy,
            requestedAt: p.requestedAt,
            waitingMs: Math.max(0, now.getTime() - Date.parse(p.requestedAt)),
            waitingFor: p.plan?.reasons ?? [],
            approvals: p.plan?.relied.approvals ?? [],
          }))
          .reverse(),
      });
    }
    return out;
  });
  return { generatedAt: now.toISOString(), environments, recovered };
}

export interface HistoryRow {
  id: string;
  environment: string;
  kind: PromotionKind;
  state: PromotionState;
  artifact: { digest: string; name: string; version: string };
  requestedBy: string;
  requestedAt: string;
  finishedAt: string | null;
  decision: { outcome: string; summary: string; policy: string } | null;
  outcome: Reason | null;
  approvals: string[];
  receipt: string | null;
}

export interface History {
  subject: { kind: 'environment'; name: string } | { kind: 'artifact'; digest: string; name: string; version: string };
  promotions: HistoryRow[];
}

function row(p: Promotion): HistoryRow {
  const d = p.plan?.decision;
  return {
    id: p.id,
    environment: p.environment,
    kind: p.kind,
    state: p.state,
    artifact: p.artifact,
    requestedBy: p.requestedBy,
    requestedAt: p.requestedAt,
    finishedAt: p.finishedAt,
    decision: d ? { outcome: d.outcome, summary: d.summary, policy: d.policy.digest } : null,
    outcome: p.outcome,
    approvals: p.plan?.relied.approvals ?? [],
    receipt: p.receipt,
  };
}

/** `custody history <env | artifact>`: every promotion, newest first, with its decision. An environment's name wins over an artifact's. */
export async function promotionHistory(ctx: Context, input: { ref: string; limit?: number | undefined }): Promise<History> {
  const limit = Math.min(Math.max(1, input.limit ?? 1000), 10_000);
  return ctx.store.read(async (tx) => {
    if (Object.hasOwn(ctx.config.environments, input.ref)) {
      return { subject: { kind: 'environment', name: input.ref }, promotions: (await tx.promotions.list({ environment: input.ref, limit })).map(row) };
    }
    const a = await findArtifact(tx, input.ref);
    return { subject: { kind: 'artifact', digest: a.digest, name: a.name, version: a.version }, promotions: (await tx.promotions.list({ artifact: a.digest, limit })).map(row) };
  });
}
