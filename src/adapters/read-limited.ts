import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CustodyError } from '../core/errors.ts';
import { fsError } from './fs-errors.ts';

/**
 * Reads a small regular file as bytes, refusing it past `maxBytes` whether the
 * size was announced by stat or only discovered while reading.
 */
export async function readLimited(path: string, maxBytes: number, what = 'file'): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY);
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new CustodyError('INPUT_INVALID', `${path} is a directory, not a ${what}`);
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a regular file`);
    if (st.size > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${path} is ${st.size} bytes; a ${what} is at most ${maxBytes}`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${path} grew past ${maxBytes} bytes while being read`);
    }
    return buf.subarray(0, n);
  } catch (e) {
    throw fsError(e, path);
  } finally {
    await fh.close();
  }
}

/** A file's bytes, or undefined when there is no such file. */
export async function readIfExists(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
  try {
    return await readLimited(path, maxBytes);
  } catch (e) {
    if (e instanceof CustodyError && e.code === 'INPUT_NOT_FOUND') return undefined;
    throw e;
  }
}
