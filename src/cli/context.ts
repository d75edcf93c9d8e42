import type { Context } from '../app/workspace.ts';
import type { GlobalOptions } from './output.ts';

/** Opens the workspace for one command and always closes it, whatever happens. */
export async function withContext<T>(g: GlobalOptions, fn: (ctx: Context) => Promise<T>): Promise<T> {
  // Loaded on use: `custody --help` should not pay for the store, the schemas and YAML.
  const { openWorkspace, resolveHome } = await import('../app/workspace.ts');
  const ctx = await openWorkspace(resolveHome(g.home), g.as === undefined ? {} : { as: g.as });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}
