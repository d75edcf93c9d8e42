/**
 * Reads a policy-set folder: every `*.yaml` / `*.yml` under it (hidden entries
 * and symbolic links skipped), each within the size limit, in a stable order.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CustodyError } from '../core/errors.ts';
import type { PolicySource } from '../core/policy/index.ts';
import { fsError } from './fs-errors.ts';

export interface PolicyFilesLimits {
  maxBytesPerFile: number;
  maxFiles?: number;
  maxDepth?: number;
}

/** `path` is the set's folder, or one file in it (then its folder is the set). */
export async function readPolicySources(path: string, limits: PolicyFilesLimits): Promise<{ root: string; sources: PolicySource[] }> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, path);
  }
  const root = st.isDirectory() ? path : dirname(path);
  const maxFiles = limits.maxFiles ?? 500;
  const maxDepth = limits.maxDepth ?? 4;
  const files: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw fsError(e, dir);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth < maxDepth) await walk(p, depth + 1);
      } else if (e.isFile() && /\.ya?ml$/.test(e.name)) {
        files.push(p);
        if (files.length > maxFiles) throw new CustodyError('INPUT_TOO_LARGE', `${root} holds more than ${maxFiles} YAML files`, { hint: 'point at the policy-set folder itself' });
      }
    }
  };
  if (st.isDirectory()) await walk(root, 0);
  else {
    if (!/\.ya?ml$/.test(basename(path))) throw new CustodyError('INPUT_INVALID', `${path} is not a YAML file`);
    await walk(root, maxDepth); // its folder, for templates and tests; not below it
  }
  const sources: PolicySource[] = [];
  for (const f of files) sources.push({ path: relative(root, f).split(sep).join('/'), text: await readLimited(f, limits.maxBytesPerFile) });
  return { root, sources };
}

/** Reads at most `max` bytes; a larger file is refused rather than truncated. */
export async function readLimited(path: string, max: number): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a regular file`);
    if (st.size > max) throw new CustodyError('INPUT_TOO_LARGE', `${path} is larger than ${max} bytes`, { hint: 'raise limits.configBytes in custody.yaml if this is intended' });
    const buf = Buffer.alloc(Math.min(st.size, max) + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > max) throw new CustodyError('INPUT_TOO_LARGE', `${path} is larger than ${max} bytes`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch (e) {
    throw fsError(e, path);
  } finally {
    await fh.close();
  }
}
