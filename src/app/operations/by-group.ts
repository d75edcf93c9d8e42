/**
 * One operation, loading only its group's file: the local CLI runs one
 * operation per process, and importing every group (every use case, every
 * schema) cost `custody artifact add` 10 MiB of RSS and start-up time for
 * code it never runs. The server and the tests use ./index.ts, which holds
 * them all; a test checks that this table finds every one of them.
 */
import { CustodyError } from '../../core/errors.ts';
import type { Operation } from './registry.ts';

const GROUPS: Record<string, () => Promise<readonly unknown[]>> = {
  artifact: async () => (await import('./artifacts.ts')).ARTIFACT_OPERATIONS,
  audit: async () => (await import('./audit.ts')).AUDIT_OPERATIONS,
  evidence: async () => (await import('./evidence.ts')).EVIDENCE_OPERATIONS,
  key: async () => (await import('./keys.ts')).KEY_OPERATIONS,
  policy: async () => (await import('./policy.ts')).POLICY_OPERATIONS,
  exception: async () => (await import('./policy.ts')).POLICY_OPERATIONS,
  promotion: async () => (await import('./promotions.ts')).PROMOTION_OPERATIONS,
  receipt: async () => (await import('./promotions.ts')).PROMOTION_OPERATIONS,
  token: async () => (await import('./tokens.ts')).TOKEN_OPERATIONS,
  whoami: async () => (await import('./tokens.ts')).TOKEN_OPERATIONS,
};

/** The operation `id` (`<noun>.<verb>`, or a lone noun), from its group's file alone. */
export async function loadOperation(id: string): Promise<Operation> {
  const dot = id.indexOf('.');
  const noun = dot < 0 ? id : id.slice(0, dot);
  const group = Object.hasOwn(GROUPS, noun) ? GROUPS[noun] : undefined;
  const op = group ? ((await group()) as readonly Operation[]).find((o) => o.id === id) : undefined;
  if (!op) throw new CustodyError('INTERNAL', `no operation ${id}`);
  return op;
}
