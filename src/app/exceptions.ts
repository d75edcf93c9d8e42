/**
 * Exceptions (waivers) are data, not policy edits: one environment, named
 * gates, one artifact (or a glob), an expiry, a justification, a requester and
 * an approver who is someone else. Requested, approved and revoked as separate
 * steps, each a log entry in the same transaction; they lapse by themselves.
 * The engine checks every one again when it decides.
 */
import { randomBytes } from 'node:crypto';
import { isDigestString } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import { hasRole, requireRole } from '../core/identity.ts';
import type { PolicyException } from '../core/policy/index.ts';
import { NameSchema } from '../core/policy/schema.ts';
import { parseDuration, parseInstant } from '../core/time.ts';
import { findArtifact } from './artifacts.ts';
import { auditRefusal } from './audit.ts';
import type { Context } from './workspace.ts';

export type ExceptionStatus = 'requested' | 'active' | 'expired' | 'revoked';

export interface ExceptionView extends PolicyException {
  status: ExceptionStatus;
}

export function exceptionStatus(e: PolicyException, now: Date): ExceptionStatus {
  if (e.revokedAt !== null) return 'revoked';
  if (Date.parse(e.expiresAt) <= now.getTime()) return 'expired';
  return e.approvedBy === null ? 'requested' : 'active';
}

export interface RequestExceptionInput {
  environment: string;
  gates: readonly string[];
  /** name@version, a digest, or a glob over either. */
  artifact: string;
  /** A duration from now (24h, 3d) or an RFC 3339 instant. */
  expires: string;
  justification: string;
}

const MAX_JUSTIFICATION = 1024;

export async function requestException(ctx: Context, input: RequestExceptionInput): Promise<ExceptionView> {
  const now = ctx.clock.now();
  const iso = now.toISOString();
  try {
    if (!Object.hasOwn(ctx.config.environments, input.environment)) {
      throw new CustodyError('ENVIRONMENT_NOT_FOUND', `no environment named ${input.environment}`, { hint: `environments: ${Object.keys(ctx.config.environments).join(', ') || 'none'}` });
    }
    if (input.gates.length === 0) throw new CustodyError('EXCEPTION_INVALID', 'name at least one gate to waive (--gate NAME)');
    for (const g of input.gates) {
      if (!NameSchema.safeParse(g).success) throw new CustodyError('EXCEPTION_INVALID', `"${g}" is not a gate name`);
    }
    const justification = input.justification.trim();
    if (justification.length < 10) throw new CustodyError('EXCEPTION_INVALID', 'a justification of at least 10 characters is required: say why, and link the ticket');
    if (justification.length > MAX_JUSTIFICATION) throw new CustodyError('EXCEPTION_INVALID', `the justification is longer than ${MAX_JUSTIFICATION} characters`);
    const expiresAt = expiryOf(input.expires, now);
    if (expiresAt.getTime() <= now.getTime()) throw new CustodyError('EXCEPTION_INVALID', `the exception would expire at ${expiresAt.toISOString()}, which is not in the future`);
    const exception = await ctx.store.transaction(async (tx) => {
      const artifact = await subjectOf(input.artifact, (ref) => findArtifact(tx, ref));
      const e: PolicyException = {
        id: `ex-${randomBytes(6).toString('hex')}`,
        environment: input.environment,
        gates: [...new Set(input.gates)],
        artifact,
        justification,
        requestedBy: ctx.actor.identity,
        createdAt: iso,
        expiresAt: expiresAt.toISOString(),
        approvedBy: null,
        approverRoles: [],
        approvedAt: null,
        revokedAt: null,
        revokedBy: null,
      };
      await tx.exceptions.insert(e);
      await tx.log.append({
        type: 'exception.requested',
        actor: ctx.actor.identity,
        time: iso,
        subject: e.id,
        payload: { environment: e.environment, gates: e.gates, artifact: e.artifact, expiresAt: e.expiresAt, justification: e.justification },
      });
      return e;
    });
    return { ...exception, status: exceptionStatus(exception, now) };
  } catch (e) {
    return auditRefusal(ctx, 'exception.request', undefined, e);
  }
}

/** Someone other than the requester, holding the approver role, makes it active. */
export async function approveException(ctx: Context, id: string): Promise<ExceptionView> {
  const now = ctx.clock.now();
  const iso = now.toISOString();
  try {
    const approved = await ctx.store.transaction(async (tx) => {
      const e = await tx.exceptions.byId(id);
      if (!e) throw new CustodyError('EXCEPTION_NOT_FOUND', `no exception ${id}`, { hint: 'custody exception list' });
      requireRole(ctx.actor, 'approver', 'approving an exception');
      if (e.requestedBy === ctx.actor.identity) {
        throw new CustodyError('EXCEPTION_REFUSED', `${ctx.actor.identity} requested ${id} and cannot also approve it`, { hint: 'separation of duties: ask another approver' });
      }
      const status = exceptionStatus(e, now);
      if (status !== 'requested') throw new CustodyError('EXCEPTION_REFUSED', `${id} is ${status}; only a requested exception can be approved`);
      const next: PolicyException = { ...e, approvedBy: ctx.actor.identity, approverRoles: [...ctx.actor.roles], approvedAt: iso };
      await tx.exceptions.update(next);
      await tx.log.append({ type: 'exception.approved', actor: ctx.actor.identity, time: iso, subject: id, payload: { environment: e.environment, gates: e.gates, artifact: e.artifact, expiresAt: e.expiresAt, requestedBy: e.requestedBy } });
      return next;
    });
    return { ...approved, status: exceptionStatus(approved, now) };
  } catch (e) {
    return auditRefusal(ctx, 'exception.approve', id, e);
  }
}

/** The requester may withdraw their own; otherwise an approver or policy admin revokes. */
export async function revokeException(ctx: Context, id: string, reason: string | undefined): Promise<ExceptionView> {
  const now = ctx.clock.now();
  const iso = now.toISOString();
  try {
    const revoked = await ctx.store.transaction(async (tx) => {
      const e = await tx.exceptions.byId(id);
      if (!e) throw new CustodyError('EXCEPTION_NOT_FOUND', `no exception ${id}`, { hint: 'custody exception list' });
      if (e.requestedBy !== ctx.actor.identity && !hasRole(ctx.actor, 'approver') && !hasRole(ctx.actor, 'policy-admin')) {
        throw new CustodyError('ROLE_REQUIRED', `revoking someone else's exception requires the approver or policy-admin role; ${ctx.actor.identity} holds neither`);
      }
      if (e.revokedAt !== null) throw new CustodyError('EXCEPTION_REFUSED', `${id} was already revoked at ${e.revokedAt}`);
      const next: PolicyException = { ...e, revokedAt: iso, revokedBy: ctx.actor.identity };
      await tx.exceptions.update(next);
      await tx.log.append({ type: 'exception.revoked', actor: ctx.actor.identity, time: iso, subject: id, payload: { environment: e.environment, gates: e.gates, reason: reason ?? null } });
      return next;
    });
    return { ...revoked, status: exceptionStatus(revoked, now) };
  } catch (e) {
    return auditRefusal(ctx, 'exception.revoke', id, e);
  }
}

export async function listExceptions(ctx: Context, filter: { environment?: string; all?: boolean } = {}): Promise<ExceptionView[]> {
  const now = ctx.clock.now();
  const list = await ctx.store.read((tx) => tx.exceptions.list(filter.environment === undefined ? {} : { environment: filter.environment }));
  return list.map((e) => ({ ...e, status: exceptionStatus(e, now) })).filter((e) => filter.all || e.status === 'requested' || e.status === 'active');
}

function expiryOf(input: string, now: Date): Date {
  if (/^\d/.test(input) && input.includes('T')) return parseInstant(input);
  const ms = parseDuration(input);
  return new Date(now.getTime() + ms);
}

/** A registered name@version or digest is pinned to its digest; a glob stays a glob. */
async function subjectOf(input: string, find: (ref: string) => Promise<{ digest: string }>): Promise<string> {
  const s = input.trim();
  if (s === '' || s.length > 512) throw new CustodyError('EXCEPTION_INVALID', 'name the artifact: name@version, a digest, or a glob such as pkg:npm/app@1.4.*');
  if (s.includes('*')) {
    if (/^\*+$/.test(s)) throw new CustodyError('EXCEPTION_INVALID', 'an exception for every artifact is a policy change, not an exception');
    return s;
  }
  if (isDigestString(s)) return s;
  return (await find(s)).digest;
}
