import { open } from 'node:fs/promises';
import { CustodyError } from '../core/errors.ts';
import { fsError } from './fs-errors.ts';

/**
 * Reads a whole file, refusing it when it is larger than `maxBytes`. The size is
 * checked on the open descriptor and again while reading, so a file that grows
 * between the two never gets past the limit.
 */
export async function readFileLimited(path: string, maxBytes: number): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a regular file`);
    if (st.size > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${path} is ${st.size} bytes, more than the ${maxBytes} allowed`);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${path} is larger than the ${maxBytes} bytes allowed`);
      if (n === buf.length) break;
    }
    return new Uint8Array(buf.subarray(0, n));
  } catch (e) {
    throw fsError(e, path);
  } finally {
    await fh.close();
  }
}

/** Reads a file if it exists; undefined when it does not. */
export async function readFileIfExists(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
  try {
    return await readFileLimited(path, maxBytes);
  } catch (e) {
    if (e instanceof CustodyError && e.code === 'INPUT_NOT_FOUND') return undefined;
    throw e;
  }
}
