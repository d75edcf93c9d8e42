/**
 * Promotion use cases: promote, approve, reject, rollback, and the recovery of
 * an interrupted apply. The decision is core's `planPromotion`; this module is
 * `applyPromotion`: it reads what the plan needs inside the write transaction,
 * writes every transition with its log entry in that same transaction, moves
 * the target, signs the receipt and moves the environment's pointer.
 *
 * Transactions. A promotion whose target moves nothing (`type: none`) is one
 * transaction: requested → evaluating → applying → promoted. Any other target
 * runs between two: the first ends in `applying` (holding the environment's
 * apply lock and a lease), the target runs with no transaction open, and the
 * second records `promoted` (receipt, pointer, log) or `failed`. A process
 * killed in between leaves `applying` with its owner dead: the next promotion
 * command resumes it when a fresh plan still allows it, or rolls the target
 * back to the previous version and records `failed`; either way the recovery
 * is written in the final transition's log entry.
 *
 * Serialisation. Store writes are serialised across processes (SQLite's write
 * lock, PostgreSQL's advisory lock), so a plan made inside a write transaction
 * sees the latest state. At most one promotion per environment is `applying`:
 * another that arrives meanwhile is rejected as superseded, or, with
 * `concurrency: queue`, waits its turn and is planned again.
 *
 * Time. A request (or a vote) reads the clock once, as its transaction
 * starts: its row, its log entries and the plan it makes share that instant,
 * and so does the whole promotion when its target moves nothing. The instant an
 * environment changes through a target is read when it changes (a command
 * target may run for minutes, and soak is measured from the change); a queued
 * promotion's later turn is a new decision at its own time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { failpoint } from '../adapters/failpoints.ts';
import { processAlive } from '../adapters/fs-durable.ts';
import type { Artifact } from '../core/artifact.ts';
import { dsseBundle } from '../core/bundle.ts';
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from '../core/dsse.ts';
import { CustodyError, isUniqueViolation, type Reason } from '../core/errors.ts';
import { requireRole } from '../core/identity.ts';
import { keyLabel, keyMaySign, toTrustedKeys, type KeyPurpose, type KeyRecord } from '../core/key.ts';
import type { LogEntry, Signer, Target, TargetOutcome, Tx } from '../core/ports.ts';
import {
  assertTransition,
  buildReceiptStatement,
  countedApprovals,
  finishes,
  fingerprintOf,
  planPromotion,
  REACHED_STATES,
  seenState,
  staleVotes,
  voteRefusals,
  VSA_PREDICATE_TYPE,
  type CurrentState,
  type EnvironmentState,
  type Plan,
  type Promotion,
  type PromotionKind,
  type PromotionState,
  type SourceReceipt,
  type Vote,
  type VoteKind,
} from '../core/promotion/index.ts';
import { VERSION } from '../core/version.ts';
import { signerOf, verifyEnvelopeSignatures, type VerifyResult } from '../core/verify/index.ts';
import type { SignatureCheck, StoredEvidence } from '../core/evidence.ts';
import { findArtifact } from './artifacts.ts';
import { environmentConfig } from './environments.ts';
import { auditRefusal } from './audit.ts';
import { artifactDigests, evidenceFor as defaultEvidenceFor, preverifyEvidence, storeEvidence, toStored, type Preverified } from './evidence.ts';
import { loadSigner as defaultLoadSigner } from './keys.ts';
import { activeSet, groupsOf, policyFor, policyInput, type PolicyDeps } from './policy.ts';
import { attachProof, proofFor } from './promotion-proofs.ts';
import { applyBudgetMs, targetForEnvironment } from './targets.ts';
import type { Context } from './workspace.ts';

/** Captured target output kept in a promotion record. */
export const TARGET_OUTPUT_MAX = 64 * 1024;
/** How long a queued promotion waits for the environment before giving up. */
const QUEUE_WAIT_MS = 15 * 60_000;
/** Slack on top of a target's own time limit before its apply may be presumed abandoned. */
const LEASE_SLACK_MS = 60_000;

let owner: string | undefined;

/**
 * This process, as the owner of an apply: host, pid, and a random part so a
 * reused pid is never mistaken for us. Made on first use, in the process that
 * uses it (never at load: the CLI's startup snapshot loads modules at build time).
 */
function ownerId(): string {
  owner ??= `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  return owner;
}

/** What the use cases need from outside, replaceable in tests and benchmarks. */
export interface PromotionDeps {
  targetFor: (ctx: Context, environment: string) => Target;
  loadSigner: (ctx: Context, name: string, purpose: KeyPurpose) => Promise<{ key: KeyRecord; signer: Signer }>;
  evidenceFor: PolicyDeps['evidenceFor'];
  /** Promotion ids; fixed ones only in fixtures. */
  newId?: () => string;
}

export const DEFAULT_PROMOTION_DEPS: PromotionDeps = { targetFor: targetForEnvironment, loadSigner: defaultLoadSigner, evidenceFor: defaultEvidenceFor };

// ---------------------------------------------------------------- views

export interface VoteView {
  identity: string;
  vote: VoteKind;
  comment: string | null;
  time: string;
  counted: boolean;
  invalidated: { at: string; reason: string } | null;
}

/** What every promotion command returns, and `--json` prints. */
export interface PromotionView {
  id: string;
  environment: string;
  kind: PromotionKind;
  state: PromotionState;
  artifact: { digest: string; name: string; version: string };
  requestedBy: string;
  requestedAt: string;
  updatedAt: string;
  finishedAt: string | null;
  idempotencyKey: string | null;
  decision: {
    outcome: 'pass' | 'fail' | 'pending';
    summary: string;
    time: string;
    policy: { name: string; digest: string; version: number | null };
    gates: { name: string; kind: string; outcome: string; requirement: string; reasons: Reason[]; waivedBy?: { kind: string; id: string } }[];
  } | null;
  /** Why it was rejected, what it waits for, or why it failed. */
  reasons: Reason[];
  outcome: Reason | null;
  approvals: VoteView[];
  relied: { evidence: string[]; sources: SourceReceipt[]; policy: string; environmentSeq: number } | null;
  receipt: string | null;
  logIndex: number | null;
  proof: Promotion['proof'];
  targetOutput: string | null;
  /** True when this answer is an earlier promotion found by its idempotency key. */
  replayed: boolean;
}

export function viewOf(p: Promotion, votes: readonly Vote[], replayed = false): PromotionView {
  const plan = p.plan;
  const d = plan?.decision;
  const counted = new Set(plan?.relied.approvals ?? []);
  return {
    id: p.id,
    environment: p.environment,
    kind: p.kind,
    state: p.state,
    artifact: p.artifact,
    requestedBy: p.requestedBy,
    requestedAt: p.requestedAt,
    updatedAt: p.updatedAt,
    finishedAt: p.finishedAt,
    idempotencyKey: p.idempotencyKey,
    decision: d
      ? {
          outcome: d.outcome,
          summary: d.summary,
          time: d.time,
          policy: { name: d.policy.name, digest: d.policy.digest, version: d.policy.version },
          gates: d.gates.map((g) => ({ name: g.name, kind: g.kind, outcome: g.outcome, requirement: g.requirement, reasons: g.reasons, ...(g.waivedBy ? { waivedBy: g.waivedBy } : {}) })),
        }
      : null,
    reasons: plan?.reasons ?? [],
    outcome: p.outcome,
    approvals: votes.map((v) => ({
      identity: v.identity,
      vote: v.vote,
      comment: v.comment,
      time: v.time,
      counted: v.vote === 'approve' && v.invalidatedAt === null && counted.has(v.identity),
      invalidated: v.invalidatedAt === null ? null : { at: v.invalidatedAt, reason: v.invalidatedReason ?? '' },
    })),
    relied: plan ? { evidence: plan.relied.evidence.map((e) => e.digest), sources: plan.relied.sources, policy: plan.relied.policy.digest, environmentSeq: plan.relied.environment.seq } : null,
    receipt: p.receipt,
    logIndex: p.logIndex,
    proof: p.proof,
    targetOutput: p.targetOutput,
    replayed,
  };
}

// ---------------------------------------------------------------- the engine

interface Engine {
  ctx: Context;
  deps: PromotionDeps;
  /** The receipt key of the environment, loaded before the transaction (it may need the KEK or an HSM). */
  receipt: { key: KeyRecord; signer: Signer } | undefined;
  /** Evidence verified ahead of the transaction on the verification pool, when promotions run side by side. */
  preverified?: Preverified | undefined;
}

type Step =
  | { kind: 'done'; promotion: Promotion }
  | { kind: 'apply'; promotion: Promotion; artifact: Artifact }
  | { kind: 'wait'; promotion: Promotion; holder: Promotion }
  | { kind: 'recover'; promotion: Promotion; holder: Promotion };

export { environmentConfig };

function verifierId(ctx: Context): string {
  return `custody:${ctx.config.log.origin}`;
}

/** Writes the transition's log entry (same transaction) and moves the state in memory; the caller saves the row. */
async function transition(tx: Tx, ctx: Context, p: Promotion, to: PromotionState, at: Date, payload: Record<string, unknown> = {}): Promise<LogEntry> {
  assertTransition(p.id, p.state, to);
  const from = p.state;
  const time = at.toISOString();
  p.state = to;
  p.updatedAt = time;
  if (finishes(to)) p.finishedAt ??= time;
  return tx.log.append({
    type: `promotion.${to}`,
    actor: ctx.actor.identity,
    time,
    subject: p.artifact.digest,
    payload: { promotion: p.id, environment: p.environment, kind: p.kind, name: p.artifact.name, version: p.artifact.version, from, ...payload },
  });
}

/** What a transaction has read about the environment: its pointer and the promotion that is current there. */
interface EnvironmentView {
  state: EnvironmentState | undefined;
  previous: Promotion | undefined;
}

async function readEnvironment(tx: Tx, environment: string): Promise<EnvironmentView> {
  const state = await tx.environments.get(environment);
  return { state, previous: state?.current ? await tx.promotions.byId(state.current) : undefined };
}

function currentOf(c: Promotion | undefined): CurrentState | null {
  if (!c) return null;
  return { promotion: c.id, artifact: c.artifact, since: c.finishedAt ?? c.updatedAt, by: c.requestedBy, receipt: c.receipt };
}

/** Writes a promotion: the first time as a new row, after that as an update. */
async function save(tx: Tx, p: Promotion, isNew: boolean): Promise<void> {
  if (isNew) await tx.promotions.insert(p);
  else await tx.promotions.update(p);
}

/** The newest receipt of this artifact in each source environment, from a promotion that reached it and was not rolled back. */
async function sourceReceipts(tx: Tx, digest: string, from: readonly string[]): Promise<SourceReceipt[]> {
  const out: SourceReceipt[] = [];
  for (const env of from) {
    const [p] = await tx.promotions.list({ environment: env, artifact: digest, states: ['promoted', 'replaced'], limit: 1 });
    if (p?.receipt) out.push({ environment: env, promotion: p.id, receipt: p.receipt });
  }
  return out;
}

/** Makes the plan from what the store holds now; stale votes are invalidated and logged as it goes. */
async function planNow(tx: Tx, e: Engine, p: Promotion, artifact: Artifact, now: Date, record: boolean, known?: EnvironmentView, isNew = false): Promise<{ plan: Plan; view: EnvironmentView }> {
  const { ctx } = e;
  const envConfig = environmentConfig(ctx, p.environment);
  const view = known ?? (await readEnvironment(tx, p.environment));
  const { state } = view;
  const current = currentOf(view.previous);
  const inputCurrent = current ? { version: current.artifact.version, digest: current.artifact.digest, since: current.since } : null;
  const pre = e.preverified;
  const evidenceFor: PromotionDeps['evidenceFor'] = pre && e.deps.evidenceFor === defaultEvidenceFor ? (t, trusted, a, at) => defaultEvidenceFor(t, trusted, a, at, { preverified: pre }) : e.deps.evidenceFor;
  const input = await policyInput(ctx, tx, artifact, p.environment, now, { evidenceFor, loadSigner: e.deps.loadSigner }, { current: inputCurrent });
  // Nobody can have voted on a promotion this transaction creates.
  const votes = isNew ? [] : await tx.approvals.forPromotion(p.id);
  const seen = seenState(input.evidence, input.keys ?? []);
  if (record) {
    for (const s of staleVotes(votes, seen)) {
      await tx.approvals.invalidate(p.id, s.identity, now.toISOString(), s.reason);
      await tx.log.append({ type: 'approval.invalidated', actor: ctx.actor.identity, time: now.toISOString(), subject: p.artifact.digest, payload: { promotion: p.id, environment: p.environment, identity: s.identity, reason: s.reason } });
    }
  }
  const counted = countedApprovals(votes, seen);
  const plan = planPromotion({
    promotion: { id: p.id, kind: p.kind },
    policy: policyFor(ctx, await activeSet(ctx, tx), p.environment),
    input: {
      ...input,
      kind: p.kind,
      // The requester is the actor of the decision, whoever's vote triggered this plan.
      actor: p.requestedBy === ctx.actor.identity ? input.actor : { identity: p.requestedBy, roles: [], groups: groupsOf(ctx.config, p.requestedBy) },
      current: inputCurrent,
      approvals: counted.map((v) => ({ identity: v.identity, roles: v.roles, groups: v.groups, time: v.time })),
    },
    environment: { name: p.environment, from: envConfig.from, seq: state?.seq ?? 0, current },
    sources: await sourceReceipts(tx, artifact.digest, envConfig.from),
  });
  return { plan, view };
}

/**
 * One step of the state machine inside a write transaction: from `requested`
 * or `awaiting-approval`, plan and move on (S2, S3). Returns what the caller
 * must do next outside the transaction.
 */
async function advance(tx: Tx, e: Engine, p: Promotion, artifact: Artifact, mode: 'supersede' | 'queue', isNew = false, at?: Date): Promise<Step> {
  const { ctx } = e;
  // The operation's reference time when it started this transaction (a request, a vote); a later turn of a queued promotion has its own.
  const now = at ?? ctx.clock.now();
  const envConfig = environmentConfig(ctx, p.environment);
  const view = await readEnvironment(tx, p.environment);
  const { state } = view;
  if (state?.applying && state.applying !== p.id) {
    const holder = await tx.promotions.byId(state.applying);
    if (holder?.state === 'applying') {
      if (abandoned(holder, now) || mode === 'queue') {
        if (isNew) await save(tx, p, true);
        return { kind: abandoned(holder, now) ? 'recover' : 'wait', promotion: p, holder };
      }
      // Serialisation: exactly one promotion applies into an environment; the newcomer is superseded.
      if (p.state === 'requested' || p.state === 'awaiting-approval') await transition(tx, ctx, p, 'evaluating', now);
      p.outcome = { code: 'PROMOTION_SUPERSEDED', message: `${holder.id} (${holder.artifact.name}@${holder.artifact.version}) is applying into ${p.environment}; this promotion was superseded. Promote again once it is done` };
      await transition(tx, ctx, p, 'rejected', now, { code: p.outcome.code, reason: p.outcome.message, by: holder.id });
      await save(tx, p, isNew);
      return { kind: 'done', promotion: p };
    }
  }
  await transition(tx, ctx, p, 'evaluating', now);
  const { plan } = await planNow(tx, e, p, artifact, now, true, view, isNew);
  p.plan = plan;
  switch (plan.action) {
    case 'reject': {
      p.outcome = { code: 'PROMOTION_REJECTED', message: plan.reasons.map((r) => r.message).join('; ') };
      await transition(tx, ctx, p, 'rejected', now, { codes: [...new Set(plan.reasons.map((r) => r.code))], summary: plan.decision.summary, policy: plan.relied.policy.digest });
      break;
    }
    case 'await-approval':
      await transition(tx, ctx, p, 'awaiting-approval', now, { summary: plan.decision.summary, policy: plan.relied.policy.digest, approvals: plan.relied.approvals });
      break;
    case 'apply': {
      const receipt = await usableReceiptKey(tx, e, p.environment, now);
      p.owner = ownerId();
      p.leaseExpiresAt = new Date(now.getTime() + applyBudgetMs(envConfig.target) + LEASE_SLACK_MS).toISOString();
      await transition(tx, ctx, p, 'applying', now, {
        policy: plan.relied.policy.digest,
        evidence: plan.relied.evidence.map((x) => x.digest),
        sources: plan.relied.sources.map((s) => s.receipt),
        approvals: plan.relied.approvals,
        fingerprint: plan.fingerprint,
        environmentSeq: plan.relied.environment.seq,
        target: envConfig.target.type,
      });
      if (envConfig.target.type === 'none') {
        // Nothing moves outside the store, so the whole promotion is this one transaction.
        await finish(tx, e, p, artifact, { output: '', details: {} }, receipt, now, undefined, { view, isNew });
        return { kind: 'done', promotion: p };
      }
      await save(tx, p, isNew);
      // The apply lock: at most one promotion applies into an environment (written after the row it names).
      const next: EnvironmentState = { environment: p.environment, current: state?.current ?? null, applying: p.id, seq: (state?.seq ?? 0) + 1, updatedAt: now.toISOString() };
      if (!(await tx.environments.save(next, state ? state.seq : null))) {
        throw new CustodyError('PROMOTION_SUPERSEDED', `${p.environment} changed while ${p.id} was being planned`, { hint: 'promote again' });
      }
      return { kind: 'apply', promotion: p, artifact };
    }
  }
  await save(tx, p, isNew);
  return { kind: 'done', promotion: p };
}

async function usableReceiptKey(tx: Tx, e: Engine, environment: string, now: Date): Promise<{ key: KeyRecord; signer: Signer }> {
  if (!e.receipt) throw new CustodyError('INTERNAL', `no receipt key was loaded for ${environment}`);
  // The record as it stands in this transaction: a key revoked a moment ago must not sign.
  const key = await tx.keys.byKeyid(e.receipt.key.keyid);
  const may = key ? keyMaySign(key, 'promotion-receipt', now) : { ok: false, reason: `key ${keyLabel(e.receipt.key)} is gone` };
  if (!key || !may.ok) throw new CustodyError('KEY_NOT_USABLE', `the receipt key of ${environment} cannot sign: ${may.reason ?? ''}`, { hint: 'rotate or create the environment\'s receiptKey (purpose promotion-receipt)' });
  return { key, signer: e.receipt.signer };
}

/**
 * The environment changes: sign the receipt (a VSA over the plan), store it as
 * evidence about the artifact, move the pointer, retire the previous current
 * promotion (replaced, or rolled-back by a rollback) and record `promoted`
 * with the receipt's digest. All in the caller's transaction.
 */
async function finish(
  tx: Tx,
  e: Engine,
  p: Promotion,
  artifact: Artifact,
  outcome: TargetOutcome,
  receipt: { key: KeyRecord; signer: Signer },
  at: Date,
  recovered: string | undefined,
  /** From a one-transaction promotion: the environment as it read it (not locked, since nothing ran outside), and whether the row is new. */
  inline?: { view: EnvironmentView; isNew: boolean },
): Promise<void> {
  const { ctx } = e;
  const plan = p.plan;
  if (!plan) throw new CustodyError('INTERNAL', `${p.id} is applying without a plan`);
  const time = at.toISOString();
  const stored = await signReceipt(ctx, plan, artifact, receipt, at);
  // Not in the subject index: the promotion names its receipt, and the readers that list receipts look there
  // (the policy's evidence leaves them out anyway). Two random index pages a promotion fewer to write.
  await storeEvidence(ctx, tx, stored, artifact, { bySubject: false });

  const { state, previous } = inline?.view ?? (await readEnvironment(tx, p.environment));
  if (!inline && (!state || state.applying !== p.id)) throw new CustodyError('INTERNAL', `${p.environment} is not held by ${p.id}`);
  if (previous && previous.id !== p.id && previous.state === 'promoted') {
    await transition(tx, ctx, previous, p.kind === 'rollback' ? 'rolled-back' : 'replaced', at, { by: p.id, byVersion: p.artifact.version });
    await tx.promotions.setState(previous);
  }
  p.receipt = stored.digest;
  p.targetOutput = capOutput(outcome.output);
  p.owner = null;
  p.leaseExpiresAt = null;
  const entry = await transition(tx, ctx, p, 'promoted', at, {
    receipt: stored.digest,
    receiptKey: receipt.key.keyid,
    target: environmentConfig(ctx, p.environment).target.type,
    ...(recovered === undefined ? {} : { recovered }),
  });
  p.logIndex = entry.index;
  await save(tx, p, inline?.isNew ?? false);
  const next: EnvironmentState = { environment: p.environment, current: p.id, applying: null, seq: (state?.seq ?? 0) + 1, updatedAt: time };
  if (!(await tx.environments.save(next, state ? state.seq : null))) {
    throw new CustodyError('INTERNAL', `${p.environment} moved while ${p.id} held it`);
  }
}

/**
 * Key records (keyid, algorithm and public key) whose in-process signer made a
 * receipt signature that verified. Bounded: a workspace has a receipt key per
 * environment.
 */
const checkedSigners = new Set<string>();
const CHECKED_SIGNERS_MAX = 1024;

/**
 * Signs the receipt (a VSA over the plan, DSSE in a Sigstore bundle) and
 * checks the signature against the key record before anything is stored: a
 * misbehaving signer or token fails here, not at deploy time.
 *
 * A token (PKCS#11) is checked on every receipt: its device, driver or
 * firmware can change what it returns. An in-process signer is checked on its
 * first receipt for a given record and then trusted: node:crypto computes
 * its signatures from a private key already matched to the record's keyid
 * when it was unlocked, so the first check covers a record whose public key
 * is not that key, and a later check could only catch a fault in OpenSSL's
 * arithmetic. (The fault attack on deterministic signatures needs one
 * message signed twice; every receipt names its own promotion and time.)
 * The check was a tenth of a promotion's main-thread time (bench/README).
 */
async function signReceipt(ctx: Context, plan: Plan, artifact: Artifact, receipt: { key: KeyRecord; signer: Signer }, at: Date): Promise<StoredEvidence> {
  const statement = buildReceiptStatement({ plan, artifact, verifierId: verifierId(ctx), verifierVersion: VERSION, time: plan.time });
  const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), receipt.signer);
  const time = at.toISOString();
  const checkedAs = `${receipt.key.keyid}\n${receipt.key.algorithm}\n${receipt.key.publicKeyPem}`;
  const inProcess = receipt.signer.inProcess === true && receipt.signer.keyid === receipt.key.keyid;
  let check: { signatures: SignatureCheck[]; signers: string[] };
  if (inProcess && checkedSigners.has(checkedAs)) {
    check = { signatures: [{ signer: signerOf(receipt.key), ok: true, reasons: [], signedAt: time }], signers: [receipt.key.keyid] };
  } else {
    const verified = verifyEnvelopeSignatures(envelope, { keys: toTrustedKeys([receipt.key]), signedAt: at, purpose: 'promotion-receipt' });
    if (!verified.ok) throw new CustodyError('INTERNAL', `the receipt just signed by ${keyLabel(receipt.key)} does not verify: ${verified.reasons.map((r) => r.code).join(', ')}`);
    if (inProcess) {
      if (checkedSigners.size >= CHECKED_SIGNERS_MAX) checkedSigners.clear();
      checkedSigners.add(checkedAs);
    }
    check = verified;
  }
  const bundle = dsseBundle(envelope) as { mediaType?: string };
  const body = JSON.stringify(bundle);
  const result: VerifyResult = {
    ok: true,
    reasons: [],
    format: 'bundle',
    kind: 'attestation',
    mediaType: bundle.mediaType ?? null,
    statement,
    predicateType: VSA_PREDICATE_TYPE,
    signatures: check.signatures,
    signers: check.signers,
    signedAt: time,
    subjects: Object.entries(artifactDigests(artifact)).map(([alg, hex]) => `${alg}:${hex}`),
  };
  return toStored({ body, result, source: 'attested', time, actor: ctx.actor.identity, expect: null });
}

function capOutput(s: string): string {
  if (Buffer.byteLength(s, 'utf8') <= TARGET_OUTPUT_MAX) return s;
  return `${Buffer.from(s, 'utf8').subarray(0, TARGET_OUTPUT_MAX).toString('utf8')}\n[output truncated at ${TARGET_OUTPUT_MAX} bytes]`;
}

/**
 * `applyPromotion`: the effects of a plan that applies, and nothing else. The
 * target moves with no transaction open; then one transaction signs and
 * stores the receipt, retires the previous current promotion, moves the
 * environment's pointer and records `promoted` (or `failed`, with nothing
 * half-applied), every transition with its log entry (S4). A plan whose
 * target moves nothing is finished inside the planning transaction instead
 * (see `advance`).
 */
async function applyPromotion(e: Engine, p: Promotion, artifact: Artifact, resumed: boolean, recovered?: string): Promise<Promotion> {
  const { ctx } = e;
  const target = e.deps.targetFor(ctx, p.environment);
  const budget = applyBudgetMs(environmentConfig(ctx, p.environment).target);
  failpoint('promotion.apply.before-target');
  let outcome: TargetOutcome;
  try {
    outcome = await target.apply({ promotionId: p.id, kind: p.kind, environment: p.environment, artifact, blobPath: artifact.stored ? ctx.blobs.pathOf(artifact.digest) : null, resumed }, AbortSignal.timeout(budget + LEASE_SLACK_MS / 2));
  } catch (err) {
    const failure = err instanceof CustodyError ? err : new CustodyError('TARGET_FAILED', `the ${target.type} target failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    return recordFailure(e, p, { code: failure.code === 'TARGET_FAILED' ? 'TARGET_FAILED' : failure.code, message: failure.message }, typeof failure.details?.['output'] === 'string' ? failure.details['output'] : null, recovered);
  }
  failpoint('promotion.apply.after-target');
  const at = ctx.clock.now();
  const done = await ctx.store.transaction(async (tx) => {
    const fresh = await tx.promotions.byId(p.id);
    // Someone presumed this process dead and took the apply over: theirs is the outcome.
    if (!fresh || fresh.state !== 'applying' || fresh.owner !== ownerId()) return fresh ?? p;
    const receipt = await usableReceiptKey(tx, e, fresh.environment, at);
    await finish(tx, e, fresh, artifact, outcome, receipt, at, recovered);
    await tx.promotions.update(fresh);
    return fresh;
  });
  failpoint('promotion.apply.after-commit');
  return done;
}

async function recordFailure(e: Engine, p: Promotion, reason: Reason, output: string | null, recovered: string | undefined): Promise<Promotion> {
  const { ctx } = e;
  const at = ctx.clock.now();
  return ctx.store.transaction(async (tx) => {
    const fresh = await tx.promotions.byId(p.id);
    if (!fresh || fresh.state !== 'applying' || fresh.owner !== ownerId()) return fresh ?? p;
    const state = await tx.environments.get(fresh.environment);
    if (state?.applying === fresh.id) await tx.environments.save({ ...state, applying: null, seq: state.seq + 1, updatedAt: at.toISOString() }, state.seq);
    fresh.outcome = reason;
    fresh.targetOutput = output === null ? null : capOutput(output);
    fresh.owner = null;
    fresh.leaseExpiresAt = null;
    await transition(tx, ctx, fresh, 'failed', at, { code: reason.code, reason: reason.message, ...(recovered === undefined ? {} : { recovered }) });
    await tx.promotions.update(fresh);
    return fresh;
  });
}

// ---------------------------------------------------------------- crashes

/** Is the process that owns this apply (or queued request) gone? Same host: ask the kernel; anywhere: the lease. */
export function abandoned(p: Pick<Promotion, 'owner' | 'leaseExpiresAt' | 'state'>, now: Date): boolean {
  if (p.owner === null) return p.state === 'applying';
  if (p.owner === ownerId()) return false;
  const [host, pidText] = p.owner.split(':');
  const pid = Number(pidText);
  if (host === hostname() && Number.isSafeInteger(pid) && pid > 0 && !processAlive(pid)) return true;
  return p.leaseExpiresAt !== null && now.getTime() >= Date.parse(p.leaseExpiresAt);
}

export interface Recovery {
  promotion: string;
  environment: string;
  /** deferred: left for a process that can sign receipts, or already being recovered by another. */
  action: 'resumed' | 'rolled-back' | 'cancelled' | 'deferred';
  state: PromotionState;
}

/**
 * Finishes what dead processes left: an `applying` whose owner is gone is
 * resumed (its target applied again, idempotently, with `resumed`) when a
 * fresh plan still allows it, and otherwise rolled back (the previous
 * version re-applied) and recorded `failed`. A queued `requested` whose
 * process died is cancelled. Every outcome names the recovery in its log entry.
 */
export async function recoverInterrupted(ctx: Context, options: { environment?: string } = {}, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<Recovery[]> {
  const now = ctx.clock.now();
  const environments = options.environment === undefined ? Object.keys(ctx.config.environments) : [options.environment];
  // Only what can be stuck: a queued request, or the one apply an environment's lock names.
  const open = await ctx.store.read(async (tx) => (await Promise.all(environments.map((env) => tx.promotions.open(env)))).flat());
  const out: Recovery[] = [];
  for (const c of open) {
    if ((c.state !== 'applying' && c.state !== 'requested') || !abandoned(c, now)) continue;
    out.push(await recoverOne(ctx, c, deps));
  }
  return out;
}

async function recoverOne(ctx: Context, stale: Promotion, deps: PromotionDeps): Promise<Recovery> {
  const now = ctx.clock.now();
  const envConfig = environmentConfig(ctx, stale.environment);
  const deferred: Recovery = { promotion: stale.id, environment: stale.environment, action: 'deferred', state: stale.state };
  // A process that cannot sign receipts (no KEK here, say a status run by an auditor) must not roll a good apply back: it leaves it.
  const receipt = stale.state === 'applying' ? await deps.loadSigner(ctx, envConfig.receiptKey, 'promotion-receipt').catch(() => undefined) : undefined;
  if (stale.state === 'applying' && !receipt) return deferred;
  const claimed = await ctx.store.transaction(async (tx) => {
    const p = await tx.promotions.byId(stale.id);
    if (!p || p.state !== stale.state || p.owner !== stale.owner) return undefined;
    if (p.state === 'requested') {
      p.outcome = { code: 'INTERRUPTED', message: `the process that queued it (${p.owner ?? 'unknown'}) died before its turn` };
      p.owner = null;
      p.leaseExpiresAt = null;
      await transition(tx, ctx, p, 'cancelled', now, { code: 'INTERRUPTED', reason: p.outcome.message, recovered: 'cancelled' });
      await tx.promotions.update(p);
      return { p, artifact: undefined };
    }
    p.owner = ownerId();
    p.leaseExpiresAt = new Date(now.getTime() + applyBudgetMs(envConfig.target) + LEASE_SLACK_MS).toISOString();
    await tx.promotions.update(p);
    const artifact = await tx.artifacts.byDigest(p.artifact.digest);
    return { p, artifact };
  });
  // Someone else took it over first: theirs is the outcome.
  if (!claimed) return deferred;
  const { p, artifact } = claimed;
  if (p.state === 'cancelled') return { promotion: p.id, environment: p.environment, action: 'cancelled', state: p.state };
  const e: Engine = { ctx, deps, receipt };
  if (!artifact) {
    const failed = await recordFailure(e, p, { code: 'INTERRUPTED', message: `interrupted while applying, and its artifact ${p.artifact.digest} is gone` }, null, 'rolled-back');
    return { promotion: p.id, environment: p.environment, action: 'rolled-back', state: failed.state };
  }
  // Resume only what today's plan still allows (keys, evidence, policy); else roll the target back.
  const fresh = await ctx.store.read(async (tx) => (await planNow(tx, e, p, artifact, now, false)).plan).catch(() => undefined);
  if (fresh?.action === 'apply' && receipt) {
    const done = await attachProof(ctx, await applyPromotion(e, p, artifact, true, 'resumed'));
    if (done.state === 'promoted') return { promotion: p.id, environment: p.environment, action: 'resumed', state: done.state };
    return { promotion: p.id, environment: p.environment, action: 'rolled-back', state: (await restorePrevious(e, done)).state };
  }
  const why = fresh ? fresh.reasons.map((r) => r.message).join('; ') || fresh.decision.summary : 'the plan could not be made again';
  const failed = await recordFailure(e, p, { code: 'INTERRUPTED', message: `interrupted while applying, and no longer allowed: ${why}` }, null, 'rolled-back');
  return { promotion: p.id, environment: p.environment, action: 'rolled-back', state: (await restorePrevious(e, failed)).state };
}

/** After an interrupted apply failed, put the previous current version back on the target (idempotent), so the target and the store agree. */
async function restorePrevious(e: Engine, failed: Promotion): Promise<Promotion> {
  const { ctx } = e;
  const previous = await ctx.store.read(async (tx) => {
    const state = await tx.environments.get(failed.environment);
    const cur = state?.current ? await tx.promotions.byId(state.current) : undefined;
    return cur ? { promotion: cur, artifact: await tx.artifacts.byDigest(cur.artifact.digest) } : undefined;
  });
  if (!previous?.artifact) return failed;
  const a = previous.artifact;
  await e.deps
    .targetFor(ctx, failed.environment)
    .apply({ promotionId: previous.promotion.id, kind: 'rollback', environment: failed.environment, artifact: a, blobPath: a.stored ? ctx.blobs.pathOf(a.digest) : null, resumed: true }, AbortSignal.timeout(applyBudgetMs(environmentConfig(ctx, failed.environment).target)))
    .catch(() => undefined);
  return failed;
}

// ---------------------------------------------------------------- driving a promotion to rest

/** Carries a step out: applies, waits its turn, or recovers a dead holder first, until the promotion rests. */
async function drive(e: Engine, step: Step, mode: 'supersede' | 'queue'): Promise<Promotion> {
  const { ctx } = e;
  const deadline = Date.now() + QUEUE_WAIT_MS;
  let delay = 20;
  for (;;) {
    switch (step.kind) {
      case 'done':
        return step.promotion;
      case 'apply':
        return applyPromotion(e, step.promotion, step.artifact, false);
      case 'recover':
        if ((await recoverOne(ctx, step.holder, e.deps)).action === 'deferred') {
          if (Date.now() > deadline) return cancelQueued(e, step.promotion);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 500);
        }
        break;
      case 'wait':
        if (Date.now() > deadline) return cancelQueued(e, step.promotion);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 500);
        break;
    }
    const id = step.promotion.id;
    step = await ctx.store.transaction(async (tx): Promise<Step> => {
      const p = await tx.promotions.byId(id);
      if (!p) throw new CustodyError('PROMOTION_NOT_FOUND', `no promotion ${id}`);
      if (p.state !== 'requested' && p.state !== 'awaiting-approval') return { kind: 'done', promotion: p };
      const artifact = await tx.artifacts.byDigest(p.artifact.digest);
      if (!artifact) throw new CustodyError('ARTIFACT_NOT_FOUND', `artifact ${p.artifact.digest} of ${id} is gone`);
      return advance(tx, e, p, artifact, mode);
    });
  }
}

async function cancelQueued(e: Engine, p: Promotion): Promise<Promotion> {
  const { ctx } = e;
  const now = ctx.clock.now();
  return ctx.store.transaction(async (tx) => {
    const fresh = await tx.promotions.byId(p.id);
    if (!fresh || fresh.state !== 'requested') return fresh ?? p;
    fresh.outcome = { code: 'PROMOTION_QUEUE_TIMEOUT', message: `waited ${QUEUE_WAIT_MS / 60_000} minutes for ${fresh.environment} to be free` };
    fresh.owner = null;
    fresh.leaseExpiresAt = null;
    await transition(tx, ctx, fresh, 'cancelled', now, { code: fresh.outcome.code, reason: fresh.outcome.message });
    await tx.promotions.update(fresh);
    return fresh;
  });
}

async function votesOf(ctx: Context, id: string): Promise<Vote[]> {
  return ctx.store.read((tx) => tx.approvals.forPromotion(id));
}

// ---------------------------------------------------------------- promote

export interface PromoteInput {
  artifact: string;
  to: string;
  idempotencyKey?: string | undefined;
}

const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:/@+=-]{1,200}$/;

/**
 * `pr_` + the creation time in ms (hex) + 40 random bits: unique, and new rows
 * land together in the index. The bits are a v4 UUID's first ten hex digits
 * (all random): `randomUUID` draws from a cached batch of CSPRNG output, where
 * `randomBytes` made one call into OpenSSL per id (~1% of a promotion's
 * main-thread time under load).
 */
export function newPromotionId(): string {
  const u = randomUUID();
  return `pr_${Date.now().toString(16).padStart(12, '0')}${u.slice(0, 8)}${u.slice(9, 11)}`;
}

/**
 * `custody promote <artifact> --to <env>`: record the request (S1), plan it,
 * and carry the plan out. A retry with the same idempotency key (same
 * requester, same environment) returns the promotion the first call made.
 */
export async function promote(ctx: Context, input: PromoteInput, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<PromotionView> {
  return request(ctx, { ...input, kind: 'promotion' }, deps);
}

interface RequestInput extends PromoteInput {
  kind: PromotionKind;
  /** For a rollback: the artifact chosen, already resolved. */
  artifactDigest?: string | undefined;
}

/** Promotions this process is carrying out right now (the server, or a fan-out of library calls). */
let inFlight = 0;

async function request(ctx: Context, input: RequestInput, deps: PromotionDeps): Promise<PromotionView> {
  inFlight++;
  // Side by side with other promotions: their commits may be gathered with this one's.
  const done = inFlight > 1 ? ctx.store.concurrent?.() : undefined;
  try {
    return await requestOne(ctx, input, deps);
  } finally {
    done?.();
    inFlight--;
  }
}

async function requestOne(ctx: Context, input: RequestInput, deps: PromotionDeps): Promise<PromotionView> {
  let subject: string | undefined;
  try {
    requireRole(ctx.actor, 'deployer', input.kind === 'rollback' ? 'rolling back' : 'promoting');
    const envConfig = environmentConfig(ctx, input.to);
    if (input.idempotencyKey !== undefined && !IDEMPOTENCY_KEY_RE.test(input.idempotencyKey)) {
      throw new CustodyError('INPUT_INVALID', 'an idempotency key is 1 to 200 characters of A-Z a-z 0-9 . _ : / @ + = -', { hint: 'e.g. the CI run id: --idempotency-key "$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT"' });
    }
    const e: Engine = { ctx, deps, receipt: await deps.loadSigner(ctx, envConfig.receiptKey, 'promotion-receipt') };
    // Side by side with other promotions, the signature checks run on the pool while this thread serves the others'
    // transactions; alone, a worker thread would cost more than it saves.
    if (inFlight > 1 && deps.evidenceFor === defaultEvidenceFor) e.preverified = await preverifyEvidence(ctx, input.artifactDigest ?? input.artifact, ctx.clock.now());
    const first = await ctx.store
      .transaction(async (tx): Promise<Step | { kind: 'replay'; promotion: Promotion }> => {
        // Read ahead under the same reference: one name and version name one digest forever, and an artifact's row never changes.
        const artifact = e.preverified?.artifact ?? (await findArtifact(tx, input.artifactDigest ?? input.artifact));
        subject = artifact.digest;
        if (input.idempotencyKey !== undefined) {
          const earlier = await tx.promotions.byIdempotencyKey(ctx.actor.identity, input.to, input.idempotencyKey);
          if (earlier) return { kind: 'replay', promotion: sameRequest(earlier, artifact, input) };
        }
        // One reference time for the request, read as its transaction starts (so the log's times follow its order):
        // its row, its log entries and the plan it makes share it.
        const now = ctx.clock.now();
        const time = now.toISOString();
        const p: Promotion = {
          id: (deps.newId ?? newPromotionId)(),
          environment: input.to,
          artifact: { digest: artifact.digest, name: artifact.name, version: artifact.version },
          kind: input.kind,
          state: 'requested',
          requestedBy: ctx.actor.identity,
          requestedAt: time,
          updatedAt: time,
          finishedAt: null,
          idempotencyKey: input.idempotencyKey ?? null,
          plan: null,
          outcome: null,
          targetOutput: null,
          receipt: null,
          logIndex: null,
          proof: null,
          owner: ownerId(),
          leaseExpiresAt: new Date(now.getTime() + QUEUE_WAIT_MS + LEASE_SLACK_MS).toISOString(),
          seq: await tx.promotions.nextSeq(),
        };
        // S1 (the row is written once, as it rests at the end of this transaction)
        await tx.log.append({
          type: 'promotion.requested',
          actor: ctx.actor.identity,
          time,
          subject: artifact.digest,
          payload: { promotion: p.id, environment: p.environment, kind: p.kind, name: artifact.name, version: artifact.version, ...(p.idempotencyKey === null ? {} : { idempotencyKey: p.idempotencyKey }) },
        });
        return advance(tx, e, p, artifact, envConfig.concurrency, true, now);
      })
      .catch(async (err: unknown) => {
        // Two retries with one key at once: the second insert loses the unique index; the first promotion is the answer.
        if (input.idempotencyKey === undefined || !isUniqueViolation(err, 'promotions')) throw err;
        const earlier = await ctx.store.read((tx) => tx.promotions.byIdempotencyKey(ctx.actor.identity, input.to, input.idempotencyKey ?? ''));
        if (!earlier) throw err;
        return { kind: 'replay' as const, promotion: earlier };
      });
    if (first.kind === 'replay') return viewOf(first.promotion, await votesOf(ctx, first.promotion.id), true);
    const done = await attachProof(ctx, await drive(e, first, envConfig.concurrency));
    // Nobody votes on a promotion before it awaits approval, and this call made it.
    return viewOf(done, []);
  } catch (e) {
    return auditRefusal(ctx, input.kind === 'rollback' ? 'promotion.rollback' : 'promotion.request', subject, e);
  }
}

function sameRequest(earlier: Promotion, artifact: Artifact, input: RequestInput): Promotion {
  if (earlier.artifact.digest !== artifact.digest || earlier.kind !== input.kind) {
    throw new CustodyError('IDEMPOTENCY_CONFLICT', `idempotency key ${input.idempotencyKey ?? ''} already names ${earlier.id} (${earlier.kind} of ${earlier.artifact.name}@${earlier.artifact.version} into ${earlier.environment})`, {
      hint: 'use a new key for a new request; a retry must repeat the same artifact and environment',
      details: { promotion: earlier.id },
    });
  }
  return earlier;
}

// ---------------------------------------------------------------- votes

export interface VoteInput {
  id: string;
  /** When given, the promotion must be in this environment (how callers declare the environment they act on). */
  environment?: string | undefined;
  comment?: string | undefined;
}

/** `custody approve <id>`: a vote that passes separation of duties (V1–V4), then a fresh plan (S3). */
export async function approvePromotion(ctx: Context, input: VoteInput, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<PromotionView> {
  return castVote(ctx, input, 'approve', input.comment ?? null, deps);
}

/** `custody reject <id> --reason`: a veto (V6); the promotion is rejected at once. */
export async function rejectPromotion(ctx: Context, input: { id: string; environment?: string | undefined; reason: string }, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<PromotionView> {
  if (input.reason.trim() === '') throw new CustodyError('USAGE', 'a rejection needs a --reason');
  return castVote(ctx, input, 'reject', input.reason, deps);
}

async function castVote(ctx: Context, target: { id: string; environment?: string | undefined }, vote: VoteKind, comment: string | null, deps: PromotionDeps): Promise<PromotionView> {
  const id = target.id;
  let subject: string | undefined;
  try {
    requireRole(ctx.actor, 'approver', vote === 'approve' ? 'approving a promotion' : 'rejecting a promotion');
    if (comment !== null && comment.length > 4096) throw new CustodyError('INPUT_INVALID', 'a comment or reason is at most 4096 characters');
    const found = await ctx.store.read((tx) => tx.promotions.byId(id));
    if (!found || (target.environment !== undefined && found.environment !== target.environment)) {
      throw new CustodyError('PROMOTION_NOT_FOUND', `no promotion ${id}${target.environment === undefined ? '' : ` in ${target.environment}`}`, { hint: 'custody status lists the promotions awaiting approval' });
    }
    subject = found.artifact.digest;
    const scope = ctx.actor.environments;
    if (scope !== undefined && !scope.includes(found.environment)) {
      throw new CustodyError('FORBIDDEN', `${ctx.actor.identity} may act on ${scope.join(', ') || 'no environment'}, not on ${found.environment}`, { hint: 'use a token scoped to this environment' });
    }
    const envConfig = environmentConfig(ctx, found.environment);
    const e: Engine = { ctx, deps, receipt: vote === 'approve' ? await deps.loadSigner(ctx, envConfig.receiptKey, 'promotion-receipt') : undefined };
    const step = await ctx.store.transaction(async (tx): Promise<Step | { kind: 'replay'; promotion: Promotion }> => {
      const p = await tx.promotions.byId(id);
      if (!p) throw new CustodyError('PROMOTION_NOT_FOUND', `no promotion ${id}`);
      const votes = await tx.approvals.forPromotion(p.id);
      // V4: the same vote again (a retried command) is answered as it stands, and not counted twice.
      if (votes.some((v) => v.identity === ctx.actor.identity && v.invalidatedAt === null && v.vote === vote)) return { kind: 'replay', promotion: p };
      // S3: votes are cast on a promotion awaiting approval, nothing else.
      if (p.state !== 'awaiting-approval') {
        throw new CustodyError('PROMOTION_TRANSITION_INVALID', `${p.id} is ${p.state}; votes are cast only on a promotion awaiting approval`, {
          details: { id: p.id, from: p.state, to: vote === 'approve' ? 'evaluating' : 'rejected' },
          hint: finishes(p.state) ? `${p.state} is final for votes; promote again for a new decision` : 'wait until it awaits approval (custody status)',
        });
      }
      const refusals = voteRefusals({ promotion: p, plan: p.plan, voter: { identity: ctx.actor.identity, roles: ctx.actor.roles }, vote, votes });
      if (refusals.length > 0) {
        throw new CustodyError('APPROVAL_REFUSED', `${ctx.actor.identity} may not ${vote} ${p.id}: ${refusals.map((r) => r.message).join('; ')}`, { details: { reasons: refusals } });
      }
      const artifact = await tx.artifacts.byDigest(p.artifact.digest);
      if (!artifact) throw new CustodyError('ARTIFACT_NOT_FOUND', `artifact ${p.artifact.digest} of ${p.id} is gone`);
      const now = ctx.clock.now();
      // V5: the vote records what is true as it is cast.
      const input = await policyInput(ctx, tx, artifact, p.environment, now, { evidenceFor: deps.evidenceFor, loadSigner: deps.loadSigner });
      const seen = seenState(input.evidence, input.keys ?? []);
      const cast: Vote = {
        promotion: p.id,
        identity: ctx.actor.identity,
        vote,
        comment,
        roles: [...ctx.actor.roles],
        groups: groupsOf(ctx.config, ctx.actor.identity),
        time: now.toISOString(),
        fingerprint: fingerprintOf(seen),
        seen,
        invalidatedAt: null,
        invalidatedReason: null,
      };
      // V5: a vote invalidated as stale is replaced by this one; otherwise it is the identity's first.
      if (!(votes.some((v) => v.identity === cast.identity) && (await tx.approvals.recast(cast)))) await tx.approvals.insert(cast);
      await tx.log.append({
        type: vote === 'approve' ? 'approval.given' : 'approval.rejected',
        actor: ctx.actor.identity,
        time: cast.time,
        subject: p.artifact.digest,
        payload: { promotion: p.id, environment: p.environment, vote, ...(comment === null ? {} : { comment }), fingerprint: cast.fingerprint },
      });
      if (vote === 'reject') {
        p.outcome = { code: 'REJECTED_BY_APPROVER', message: `rejected by ${ctx.actor.identity}: ${comment ?? ''}` };
        await transition(tx, ctx, p, 'rejected', now, { code: p.outcome.code, reason: p.outcome.message, by: ctx.actor.identity });
        await tx.promotions.update(p);
        return { kind: 'done', promotion: p };
      }
      // An approval is never thrown away because the environment is busy: it waits its turn.
      return advance(tx, e, p, artifact, 'queue', false, now);
    });
    if (step.kind === 'replay') return viewOf(step.promotion, await votesOf(ctx, step.promotion.id), true);
    const done = await attachProof(ctx, await drive(e, step, 'queue'));
    return viewOf(done, await votesOf(ctx, done.id));
  } catch (err) {
    return auditRefusal(ctx, vote === 'approve' ? 'promotion.approve' : 'promotion.reject', subject, err);
  }
}

// ---------------------------------------------------------------- rollback

export interface RollbackInput {
  environment: string;
  /** A version of the current artifact's name (or name@version) promoted there before; default: the last one before the current. */
  to?: string | undefined;
  idempotencyKey?: string | undefined;
}

export interface RollbackCandidate {
  promotion: string;
  digest: string;
  name: string;
  version: string;
  promotedAt: string | null;
}

export interface RollbackView extends PromotionView {
  /** When refused: the next version back that would pass today, if any. */
  suggestion: (RollbackCandidate & { outcome: 'pass' | 'pending' }) | null;
}

/** Versions that were current in the environment, newest first, one per digest, the current one excluded. */
async function rollbackCandidates(tx: Tx, environment: string): Promise<{ current: Promotion; candidates: RollbackCandidate[] }> {
  const state = await tx.environments.get(environment);
  const current = state?.current ? await tx.promotions.byId(state.current) : undefined;
  if (!current) throw new CustodyError('ROLLBACK_REFUSED', `nothing has been promoted into ${environment}, so there is nothing to roll back`);
  const seen = new Set<string>([current.artifact.digest]);
  const candidates: RollbackCandidate[] = [];
  for (const p of await tx.promotions.list({ environment, states: [...REACHED_STATES] })) {
    if (seen.has(p.artifact.digest)) continue;
    seen.add(p.artifact.digest);
    candidates.push({ promotion: p.id, digest: p.artifact.digest, name: p.artifact.name, version: p.artifact.version, promotedAt: p.finishedAt });
  }
  return { current, candidates };
}

/**
 * `custody rollback <env> [--to <version>]`: the last version promoted in the
 * environment before the current one (or the one named), re-verified against
 * today's keys and policy as a promotion of kind rollback (exempt from the
 * versioning and from/soak gates only). Refused with the reasons and the next
 * candidate that would pass when its evidence no longer holds.
 */
export async function rollback(ctx: Context, input: RollbackInput, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<RollbackView> {
  const { current, candidates } = await (async () => {
    requireRole(ctx.actor, 'deployer', 'rolling back');
    environmentConfig(ctx, input.environment);
    return ctx.store.read((tx) => rollbackCandidates(tx, input.environment));
  })().catch((e: unknown) => auditRefusal(ctx, 'promotion.rollback', undefined, e));
  const chosen = input.to === undefined ? candidates[0] : pickCandidate(candidates, current, input.to);
  if (!chosen) {
    return auditRefusal(ctx, 'promotion.rollback', current.artifact.digest, new CustodyError('ROLLBACK_REFUSED', input.to === undefined ? `${input.environment} has had no other version than ${current.artifact.version}` : `${input.to} was never promoted into ${input.environment}`, {
      hint: candidates.length > 0 ? `versions promoted there before: ${candidates.map((c) => c.version).join(', ')}` : 'promote a version first',
    }));
  }
  const view = await request(ctx, { artifact: chosen.digest, to: input.environment, kind: 'rollback', ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }) }, deps);
  if (view.state !== 'rejected') return { ...view, suggestion: null };
  // Refused: say which older version would pass today, without recording anything for it.
  const later = candidates.slice(candidates.indexOf(chosen) + 1);
  const suggestion = await ctx.store.read(async (tx) => {
    const now = ctx.clock.now();
    const refused = await tx.promotions.byId(view.id);
    if (!refused) return null;
    const e: Engine = { ctx, deps, receipt: undefined };
    for (const c of later) {
      const artifact = await tx.artifacts.byDigest(c.digest as Artifact['digest']);
      if (!artifact) continue;
      const probe: Promotion = { ...refused, artifact: { digest: artifact.digest, name: artifact.name, version: artifact.version } };
      const { plan } = await planNow(tx, e, probe, artifact, now, false);
      if (plan.action === 'apply') return { ...c, outcome: 'pass' as const };
      if (plan.action === 'await-approval') return { ...c, outcome: 'pending' as const };
    }
    return null;
  });
  return { ...view, suggestion };
}

function pickCandidate(candidates: RollbackCandidate[], current: Promotion, to: string): RollbackCandidate | undefined {
  const at = to.lastIndexOf('@');
  const [name, version] = at > 0 ? [to.slice(0, at), to.slice(at + 1)] : [current.artifact.name, to];
  return candidates.find((c) => (c.digest === to || (c.name === name && c.version === version)));
}

// ---------------------------------------------------------------- reads

export async function showPromotion(ctx: Context, id: string): Promise<PromotionView> {
  return ctx.store.read(async (tx) => {
    const p = await tx.promotions.byId(id);
    if (!p) throw new CustodyError('PROMOTION_NOT_FOUND', `no promotion ${id}`, { hint: 'custody history <env> lists promotions' });
    const proof = p.proof ?? (p.logIndex === null ? null : await proofFor(tx, p.logIndex));
    return viewOf({ ...p, proof }, await tx.approvals.forPromotion(id));
  });
}
