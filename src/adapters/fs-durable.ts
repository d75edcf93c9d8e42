/**
 * The small file-system pieces every crash-safe writer here shares (blob store,
 * key files, fs target): fsync of a file or a directory (a rename is durable
 * only once its directory entry is), and telling whether the process that named
 * a temporary file `<pid>-…` is still alive, so leftovers of a dead writer can
 * be swept and a live one's are left alone.
 */
import { open, readdir } from 'node:fs/promises';

/** fsyncs a file, or a directory after a rename into it. */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
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
