import type { DigestString } from '../../core/digest.ts';
import type { Reason } from '../../core/errors.ts';
import type { ApprovalRepository, EnvironmentRepository, PromotionFilter, PromotionRepository, SettledPromotion } from '../../core/ports.ts';
import type { EnvironmentState, InclusionRecord, Plan, Promotion, PromotionKind, PromotionState, SeenState, Vote, VoteKind } from '../../core/promotion/index.ts';
import type { SqlExecutor, SqlValue } from './executor.ts';
import { placeholders, toInt } from './executor.ts';

interface PromotionRow {
  id: string;
  seq: unknown;
  environment: string;
  artifact: string;
  name: string;
  version: string;
  kind: string;
  state: string;
  requested_by: string;
  requested_at: string;
  updated_at: string;
  finished_at: string | null;
  idempotency_key: string | null;
  plan: string | null;
  outcome: string | null;
  target_output: string | null;
  receipt: string | null;
  log_index: unknown;
  proof: string | null;
  owner: string | null;
  lease_expires_at: string | null;
}

const COLUMNS =
  'id, seq, environment, artifact, name, version, kind, state, requested_by, requested_at, updated_at, finished_at, idempotency_key, plan, outcome, target_output, receipt, log_index, proof, owner, lease_expires_at';

function fromRow(r: PromotionRow): Promotion {
  const p = eagerFields(r);
  if (r.plan !== null) lazyPlan(p, r.plan);
  return p;
}

/**
 * The plan (several KB of JSON) is parsed when first read: the engine reads
 * the promotion that is current in an environment for its pointer, state and
 * artifact on every promotion there, and never its plan. Writing the property
 * replaces it, as on a plain object.
 */
function lazyPlan(p: Promotion, text: string): void {
  let plan: Plan | null = null;
  let read = false;
  Object.defineProperty(p, 'plan', {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!read) {
        plan = JSON.parse(text) as Plan;
        read = true;
      }
      return plan;
    },
    set: (v: Plan | null) => {
      plan = v;
      read = true;
    },
  });
}

function eagerFields(r: PromotionRow): Promotion {
  return {
    id: r.id,
    seq: toInt(r.seq),
    environment: r.environment,
    artifact: { digest: r.artifact as DigestString, name: r.name, version: r.version },
    kind: r.kind as PromotionKind,
    state: r.state as PromotionState,
    requestedBy: r.requested_by,
    requestedAt: r.requested_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    idempotencyKey: r.idempotency_key,
    plan: null,
    outcome: r.outcome === null ? null : (JSON.parse(r.outcome) as Reason),
    targetOutput: r.target_output,
    receipt: r.receipt as DigestString | null,
    logIndex: r.log_index === null ? null : toInt(r.log_index),
    proof: r.proof === null ? null : (JSON.parse(r.proof) as InclusionRecord),
    owner: r.owner,
    leaseExpiresAt: r.lease_expires_at,
  };
}

function values(p: Promotion): SqlValue[] {
  return [
    p.id,
    p.seq,
    p.environment,
    p.artifact.digest,
    p.artifact.name,
    p.artifact.version,
    p.kind,
    p.state,
    p.requestedBy,
    p.requestedAt,
    p.updatedAt,
    p.finishedAt,
    p.idempotencyKey,
    p.plan === null ? null : JSON.stringify(p.plan),
    p.outcome === null ? null : JSON.stringify(p.outcome),
    p.targetOutput,
    p.receipt,
    p.logIndex,
    p.proof === null ? null : JSON.stringify(p.proof),
    p.owner,
    p.leaseExpiresAt,
  ];
}

/** Promotions still in flight; the same text as the partial index's predicate in the migration. */
export const OPEN_PREDICATE = "state IN ('requested', 'evaluating', 'awaiting-approval', 'applying')";

// Bounded so no caller reads an unbounded history by accident.
const MAX_LIST = 10_000;
const BY_IDS_BATCH = 500;

/** Promotions: one row each, the plan (with its decision) and the proof as JSON beside the columns queries need. */
export function promotionRepository(db: SqlExecutor): PromotionRepository {
  return {
    async byId(id) {
      const r = await db.get<PromotionRow>(`SELECT ${COLUMNS} FROM promotions WHERE id = ?`, [id]);
      return r && fromRow(r);
    },
    async byIds(ids) {
      const out: Promotion[] = [];
      // Batches well under either database's limit on bound parameters.
      for (let i = 0; i < ids.length; i += BY_IDS_BATCH) {
        const batch = ids.slice(i, i + BY_IDS_BATCH);
        const rows = await db.all<PromotionRow>(`SELECT ${COLUMNS} FROM promotions WHERE id IN (${placeholders(batch)})`, batch);
        for (const r of rows) out.push(fromRow(r));
      }
      return out;
    },
    async byIdempotencyKey(requestedBy, environment, key) {
      const r = await db.get<PromotionRow>(`SELECT ${COLUMNS} FROM promotions WHERE requested_by = ? AND environment = ? AND idempotency_key = ?`, [requestedBy, environment, key]);
      return r && fromRow(r);
    },
    async count() {
      const r = await db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM promotions');
      return toInt(r?.n ?? 0);
    },
    async nextSeq() {
      const r = await db.get<{ n: unknown }>('SELECT COALESCE(MAX(seq) + 1, 1) AS n FROM promotions');
      return toInt(r?.n ?? 1);
    },
    async insert(p) {
      await db.run(`INSERT INTO promotions (${COLUMNS}) VALUES (${placeholders(COLUMNS.split(','))})`, values(p));
    },
    async update(p) {
      const [id, ...rest] = values(p);
      const sets = COLUMNS.split(', ').slice(1).map((c) => `${c} = ?`).join(', ');
      await db.run(`UPDATE promotions SET ${sets} WHERE id = ?`, [...rest, id ?? null]);
    },
    async setProof(id, proof) {
      await db.run('UPDATE promotions SET proof = ? WHERE id = ?', [JSON.stringify(proof), id]);
    },
    async setState(p) {
      await db.run('UPDATE promotions SET state = ?, updated_at = ?, finished_at = ? WHERE id = ?', [p.state, p.updatedAt, p.finishedAt, p.id]);
    },
    async open(environment) {
      // The literal state list matches the partial index promotions_open exactly, so both stores use it.
      const rows = await db.all<PromotionRow>(`SELECT ${COLUMNS} FROM promotions WHERE environment = ? AND ${OPEN_PREDICATE} ORDER BY seq DESC LIMIT 1000`, [environment]);
      return rows.map(fromRow);
    },
    async list(filter: PromotionFilter = {}) {
      const where: string[] = [];
      const params: SqlValue[] = [];
      if (filter.environment !== undefined) {
        where.push('environment = ?');
        params.push(filter.environment);
      }
      if (filter.artifact !== undefined) {
        where.push('artifact = ?');
        params.push(filter.artifact);
      }
      if (filter.kind !== undefined) {
        where.push('kind = ?');
        params.push(filter.kind);
      }
      if (filter.states !== undefined) {
        if (filter.states.length === 0) return [];
        where.push(`state IN (${placeholders(filter.states)})`);
        params.push(...filter.states);
      }
      const limit = Math.min(Math.max(1, filter.limit ?? MAX_LIST), MAX_LIST);
      const rows = await db.all<PromotionRow>(`SELECT ${COLUMNS} FROM promotions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`, [...params, limit]);
      return rows.map(fromRow);
    },
    async settled(artifact) {
      // promotions_artifact (artifact, seq) finds them; the columns read all sit before the plan, so no plan is read.
      const rows = await db.all<{ environment: string; version: string; state: SettledPromotion['state']; finished_at: string; updated_at: string }>(
        `SELECT environment, version, state, finished_at, updated_at FROM promotions WHERE artifact = ? AND state IN ('promoted', 'replaced', 'rolled-back') AND finished_at IS NOT NULL ORDER BY seq LIMIT ${MAX_LIST}`,
        [artifact],
      );
      return rows.map((r) => ({ environment: r.environment, version: r.version, state: r.state, finishedAt: r.finished_at, updatedAt: r.updated_at }));
    },
  };
}

interface VoteRow {
  promotion: string;
  identity: string;
  vote: string;
  comment: string | null;
  roles: string;
  member_of: string;
  time: string;
  fingerprint: string;
  seen: string;
  invalidated_at: string | null;
  invalidated_reason: string | null;
}

const VOTE_COLUMNS = 'promotion, identity, vote, comment, roles, member_of, time, fingerprint, seen, invalidated_at, invalidated_reason';

/** Votes: one per identity and promotion (the primary key), with what the voter saw. */
export function approvalRepository(db: SqlExecutor): ApprovalRepository {
  return {
    async forPromotion(promotion) {
      const rows = await db.all<VoteRow>(`SELECT ${VOTE_COLUMNS} FROM approvals WHERE promotion = ? ORDER BY time, identity`, [promotion]);
      return rows.map(
        (r): Vote => ({
          promotion: r.promotion,
          identity: r.identity,
          vote: r.vote as VoteKind,
          comment: r.comment,
          roles: JSON.parse(r.roles) as string[],
          groups: JSON.parse(r.member_of) as string[],
          time: r.time,
          fingerprint: r.fingerprint,
          seen: JSON.parse(r.seen) as SeenState,
          invalidatedAt: r.invalidated_at,
          invalidatedReason: r.invalidated_reason,
        }),
      );
    },
    async insert(v) {
      await db.run(`INSERT INTO approvals (${VOTE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        v.promotion,
        v.identity,
        v.vote,
        v.comment,
        JSON.stringify(v.roles),
        JSON.stringify(v.groups),
        v.time,
        v.fingerprint,
        JSON.stringify(v.seen),
        v.invalidatedAt,
        v.invalidatedReason,
      ]);
    },
    async recast(v) {
      const r = await db.run(
        'UPDATE approvals SET vote = ?, comment = ?, roles = ?, member_of = ?, time = ?, fingerprint = ?, seen = ?, invalidated_at = NULL, invalidated_reason = NULL WHERE promotion = ? AND identity = ? AND invalidated_at IS NOT NULL',
        [v.vote, v.comment, JSON.stringify(v.roles), JSON.stringify(v.groups), v.time, v.fingerprint, JSON.stringify(v.seen), v.promotion, v.identity],
      );
      return r.changes === 1;
    },
    async invalidate(promotion, identity, at, reason) {
      await db.run('UPDATE approvals SET invalidated_at = ?, invalidated_reason = ? WHERE promotion = ? AND identity = ? AND invalidated_at IS NULL', [at, reason, promotion, identity]);
    },
  };
}

interface EnvironmentRow {
  environment: string;
  current_promotion: string | null;
  applying_promotion: string | null;
  seq: unknown;
  updated_at: string;
}

const ENV_COLUMNS = 'environment, current_promotion, applying_promotion, seq, updated_at';

function envFromRow(r: EnvironmentRow): EnvironmentState {
  return { environment: r.environment, current: r.current_promotion, applying: r.applying_promotion, seq: toInt(r.seq), updatedAt: r.updated_at };
}

/** Each environment's pointer, written compare-and-set on its sequence number. */
export function environmentRepository(db: SqlExecutor): EnvironmentRepository {
  return {
    async get(environment) {
      const r = await db.get<EnvironmentRow>(`SELECT ${ENV_COLUMNS} FROM environment_state WHERE environment = ?`, [environment]);
      return r && envFromRow(r);
    },
    async list() {
      const rows = await db.all<EnvironmentRow>(`SELECT ${ENV_COLUMNS} FROM environment_state ORDER BY environment`);
      return rows.map(envFromRow);
    },
    async save(s, expectedSeq) {
      if (expectedSeq === null) {
        const r = await db.run(
          `INSERT INTO environment_state (${ENV_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (environment) DO NOTHING`,
          [s.environment, s.current, s.applying, s.seq, s.updatedAt],
        );
        return r.changes === 1;
      }
      const r = await db.run('UPDATE environment_state SET current_promotion = ?, applying_promotion = ?, seq = ?, updated_at = ? WHERE environment = ? AND seq = ?', [
        s.current,
        s.applying,
        s.seq,
        s.updatedAt,
        s.environment,
        expectedSeq,
      ]);
      return r.changes === 1;
    },
  };
}
