/**
 * Files on the CLI's side. A command reads what the user named (a predicate, a
 * bundle, a PEM, a policy folder) here, within a size limit, and hands its
 * CONTENT to the operation, in local and remote mode alike: a server never
 * opens a path a client gives it. Files a command writes (--out) are written
 * here too, from what the operation returned, crash-safely.
 *
 * Everything is loaded on use, so `custody --help` does not pay for it.
 */

/**
 * The default limits of custody.yaml. The client reads with these in both
 * modes, so a file is refused (or not) whichever side runs the use case; the
 * use case then applies the workspace's own, configured limits.
 */
export async function clientLimits(): Promise<{ evidenceBytes: number; configBytes: number }> {
  const { LimitsSchema } = await import('../core/config.ts');
  return LimitsSchema.parse({});
}

/** A small text file: bytes within `max`, decoded leniently (PEM, checkpoints, keys). */
export async function readText(path: string, max: number, what: string): Promise<string> {
  const { readLimited } = await import('../adapters/read-limited.ts');
  return (await readLimited(path, max, what)).toString('utf8');
}

/** A JSON or JSON Lines document: strict UTF-8 (evidence must hash back to the bytes read). */
export async function readUtf8(path: string, max: number, what: string): Promise<string> {
  const [{ readLimited }, { decodeUtf8 }] = await Promise.all([import('../adapters/read-limited.ts'), import('../adapters/evidence-files.ts')]);
  return decodeUtf8(await readLimited(path, max, what), path);
}

/**
 * A policy folder (or a file in it), as the files an operation resolves. The
 * path the user gave only names the set in messages.
 */
export async function readPolicyFolder(path: string): Promise<{ root: string; sources: { path: string; text: string }[] }> {
  const { readPolicySources } = await import('../adapters/policy-files.ts');
  const { sources } = await readPolicySources(path, { maxBytesPerFile: (await clientLimits()).configBytes });
  return { root: path, sources };
}

/** Writes what an operation returned to a file the user named: via a temporary file, fsync and rename, so never half a file. */
export async function writeOut(path: string, data: string | Uint8Array): Promise<void> {
  const { writeFileAtomic } = await import('../adapters/fs-durable.ts');
  await writeFileAtomic(path, data, { mode: 0o644, mkdir: true });
}
