/**
 * Files on the CLI's side. A command reads what the user named (a predicate, a
 * bundle, a PEM, a policy folder) here, within a size limit, and hands its
 * CONTENT to the operation, in local and remote mode alike: a server never
 * opens a path a client gives it. Files a command writes (--out) are written
 * here too, from what the operation returned, crash-safely.
 */
import { decodeUtf8, writeFileAtomic } from '../adapters/evidence-files.ts';
import { readPolicySources } from '../adapters/policy-files.ts';
import { readLimited } from '../adapters/read-limited.ts';
import { LimitsSchema } from '../core/config.ts';

/**
 * The default limits of custody.yaml. The client reads with these in both
 * modes, so a file is refused (or not) whichever side runs the use case; the
 * use case then applies the workspace's own, configured limits.
 */
export const CLIENT_LIMITS = LimitsSchema.parse({});

/** A small text file: bytes within `max`, decoded leniently (PEM, checkpoints, keys). */
export async function readText(path: string, max: number, what: string): Promise<string> {
  return (await readLimited(path, max, what)).toString('utf8');
}

/** A JSON or JSON Lines document: strict UTF-8 (evidence must hash back to the bytes read). */
export async function readUtf8(path: string, max: number, what: string): Promise<string> {
  return decodeUtf8(await readLimited(path, max, what), path);
}

/** A policy folder (or a file in it), as the files the operation resolves. */
export async function readPolicyFolder(path: string): Promise<{ root: string; sources: { path: string; text: string }[] }> {
  return readPolicySources(path, { maxBytesPerFile: CLIENT_LIMITS.configBytes });
}

/** Writes what an operation returned to a file the user named: via a temporary file, fsync and rename, so never half a file. */
export async function writeOut(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomic(path, data);
}
