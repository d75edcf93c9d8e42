import { CustodyError } from '../core/errors.ts';
import type { Context } from './workspace.ts';

/** Categories of refusal that auditors want to see: someone asked, and Custody said no. */
const AUDITED = new Set(['conflict', 'denied', 'forbidden']);

/**
 * Records why a request was refused, in its own transaction (the refused one was
 * rolled back, so it changed nothing), then rethrows the original error.
 */
export async function auditRefusal(ctx: Context, action: string, subject: string | undefined, error: unknown): Promise<never> {
  if (error instanceof CustodyError && AUDITED.has(error.category)) {
    const time = ctx.clock.now().toISOString();
    await ctx.store
      .transaction((tx) =>
        tx.log.append({
          type: 'request.refused',
          actor: ctx.actor.identity,
          time,
          ...(subject === undefined ? {} : { subject }),
          payload: { action, code: error.code, reason: error.message },
        }),
      )
      .catch(() => undefined);
  }
  throw error;
}
