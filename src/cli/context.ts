import type { Context } from '../app/workspace.ts';
import type { GlobalOptions } from './output.ts';

/**
 * Opens the workspace for one command and always closes it, whatever happens.
 * A command is one batch for the log: when it appended entries (even when it
 * then failed: refusals are entries too), a checkpoint is signed before the
 * workspace closes.
 */
export async function withContext<T>(g: GlobalOptions, fn: (ctx: Context) => Promise<T>): Promise<T> {
  // Loaded on use: `custody --help` should not pay for the store, the schemas and YAML.
  const { openWorkspace, resolveHome } = await import('../app/workspace.ts');
  const ctx = await openWorkspace(resolveHome(g.home), g.as === undefined ? {} : { as: g.as });
  let sizeBefore: number | undefined;
  try {
    const { logSize } = await import('../app/log.ts');
    sizeBefore = await logSize(ctx);
    return await fn(ctx);
  } finally {
    if (sizeBefore !== undefined) await checkpointAfterCommand(ctx, sizeBefore, g);
    await ctx.close();
  }
}

async function checkpointAfterCommand(ctx: Context, sizeBefore: number, g: GlobalOptions): Promise<void> {
  const note = (s: string) => (g.notices ??= []).push(s);
  try {
    const { CheckpointScheduler, checkpointIntervalMs, logSize, signWorkspaceCheckpoint } = await import('../app/log.ts');
    const grown = (await logSize(ctx)) - sizeBefore;
    if (grown <= 0) return;
    const scheduler = new CheckpointScheduler({ sign: () => signWorkspaceCheckpoint(ctx), clock: ctx.clock, intervalMs: checkpointIntervalMs(ctx) });
    scheduler.notify();
    const outcome = await scheduler.flush();
    if (outcome?.status === 'no-key') {
      note(`note: ${grown} new log ${grown === 1 ? 'entry waits' : 'entries wait'} for a signed checkpoint: ${outcome.reason}`);
    }
  } catch (e) {
    // The command's change is committed; a checkpoint that could not be signed is reported, not fatal.
    note(`warning: no checkpoint was signed after this command: ${e instanceof Error ? e.message : String(e)}`);
  }
}
