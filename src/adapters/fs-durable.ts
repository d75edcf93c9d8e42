/**
 * The small file-system pieces every crash-safe writer here shares (blob store,
 * key files, fs target, evidence and workspace files): fsync of a file or a
 * directory (a rename is durable only once its directory entry is), a whole
 * small file written atomically, and telling whether the process that named a
 * temporary file `<pid>-…` is still alive, so leftovers of a dead writer can be
 * swept and a live one's are left alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsError } from './fs-errors.ts';

/** fsyncs a file, or a directory after a rename into it. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a whole file via a temporary one, fsync and rename, so a reader never
 * sees half of it and a crash never leaves half of it. `mode` is the new
 * file's (0o600 unless said); `mkdir` creates the folder first.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number; mkdir?: boolean } = {}): Promise<void> {
  if (options.mkdir === true) {
    const dir = dirname(path);
    await mkdir(dir, { recursive: true }).catch((e: unknown) => {
      throw fsError(e, dir);
    });
  }
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', options.mode ?? 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(e, path);
  }
}

/** The names in a directory; none when it does not exist (nothing to sweep). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Is this process alive on this host? EPERM means it exists under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is the writer of a temporary file named `<pid>-…` still running? */
export function ownerAlive(name: string): boolean {
  const pid = Number.parseInt(name.slice(0, name.indexOf('-')), 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return pid === process.pid || processAlive(pid);
}
