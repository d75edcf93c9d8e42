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
  const [{ openWorkspace, resolveHome }, { tallyAppends }] = await Promise.all([import('../app/workspace.ts'), import('../app/log.ts')]);
  const ctx = await openWorkspace(resolveHome(g.home), g.as === undefined ? {} : { as: g.as });
  try {
    const run = await tallyAppends(() => fn(ctx));
    if (run.appended > 0) await checkpointAfterCommand(ctx, g);
    if ('error' in run) throw run.error;
    return run.result as T;
  } finally {
    await ctx.close();
  }
}

async function checkpointAfterCommand(ctx: Context, g: GlobalOptions): Promise<void> {
  const note = (s: string) => (g.notices ??= []).push(s);
  try {
    const { CheckpointScheduler, checkpointIntervalMs, signWorkspaceCheckpoint, waitingNotice } = await import('../app/log.ts');
    const scheduler = new CheckpointScheduler({ sign: () => signWorkspaceCheckpoint(ctx), clock: ctx.clock, intervalMs: checkpointIntervalMs(ctx) });
    void scheduler.notify();
    const notice = waitingNotice(await scheduler.flush());
    if (notice) note(notice);
  } catch (e) {
    // The command's change is committed; a checkpoint that could not be signed is reported, not fatal.
    note(`warning: no checkpoint was signed after this command: ${e instanceof Error ? e.message : String(e)}`);
  }
}
