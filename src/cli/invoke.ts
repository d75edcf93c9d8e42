import type { InputOf, OperationId, OutputOf } from '../app/operations/index.ts';
import type { IngestProgress } from '../core/ports.ts';
import { withContext } from './context.ts';
import type { GlobalOptions } from './output.ts';

export interface InvokeIO {
  /** For upload operations: the file whose bytes are the artifact. */
  file?: string;
  onProgress?: (p: IngestProgress) => void;
}

/**
 * Runs a registered operation: in-process on the local workspace, or, with
 * --server / CUSTODY_SERVER, as one HTTP request to a Custody server. Either way
 * the caller gets the same output object or the same CustodyError, so a command
 * renders both modes with one piece of code (see src/app/operations/index.ts).
 */
export async function invoke<K extends OperationId>(g: GlobalOptions, id: K, input: InputOf<K>, io: InvokeIO = {}): Promise<OutputOf<K>> {
  // Loaded on use, and only the operation's own group: `custody --help` should not pay
  // for zod schemas, a local command for the HTTP client, nor any command for the others.
  const [{ loadOperation }, { executeOperation }] = await Promise.all([import('../app/operations/by-group.ts'), import('../app/operations/registry.ts')]);
  const op = await loadOperation(id);
  if (g.server !== undefined || (process.env['CUSTODY_SERVER'] ?? '') !== '') {
    const { callRemote, remoteTarget } = await import('./remote.ts');
    const target = remoteTarget(g);
    if (target) return (await callRemote(target, op, input, { ...io, onNotice: (n) => (g.notices ??= []).push(n) })) as OutputOf<K>;
  }
  return withContext(g, async (ctx) =>
    (await executeOperation(ctx, op, input, {
      ...(io.file === undefined ? {} : { upload: io.file }),
      ...(io.onProgress === undefined ? {} : { onProgress: io.onProgress }),
    })) as OutputOf<K>,
  );
}
