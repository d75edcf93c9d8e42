/**
 * Evidence bundles as tar files (tar-stream): written member by member to a
 * temporary file that is fsynced and renamed, and read back as a stream with a
 * limit on everything: total bytes, bytes per member, number of members, names.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { CustodyError } from '../core/errors.ts';
import { fsError } from './fs-errors.ts';
import { syncPath } from './fs-durable.ts';

export interface TarMember {
  name: string;
  data: Uint8Array;
}

export interface TarLimits {
  /** The whole file. */
  maxBytes: number;
  /** One member's data. */
  maxMemberBytes: number;
  maxMembers: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = {
  maxBytes: 8 * 1024 * 1024 * 1024,
  maxMemberBytes: 64 * 1024 * 1024,
  maxMembers: 2_000_000,
};

const SAFE_NAME = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Writes members in order; nothing appears at `path` unless the whole bundle was written. */
export async function writeTar(path: string, members: AsyncIterable<TarMember> | Iterable<TarMember>): Promise<{ bytes: number; members: number }> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const pack = tar.pack();
  const sink = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  const done = pipeline(pack, sink);
  let count = 0;
  try {
    const mtime = new Date(0);
    for await (const m of members) {
      await new Promise<void>((resolve, reject) => {
        pack.entry({ name: m.name, size: m.data.length, mode: 0o644, mtime }, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length), (err) => (err ? reject(err) : resolve()));
      });
      count++;
    }
    pack.finalize();
    await done;
    await syncPath(tmp);
    await rename(tmp, path);
  } catch (e) {
    pack.destroy();
    await done.catch(() => undefined);
    await rm(tmp, { force: true });
    throw e instanceof CustodyError ? e : fsError(e, path);
  }
  return { bytes: (await stat(path)).size, members: count };
}

/** Packs members into a tar in memory (for an answer over HTTP), refusing to grow past `maxBytes`. */
export async function packTar(members: AsyncIterable<TarMember> | Iterable<TarMember>, maxBytes: number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  const collected = new Promise<void>((resolve, reject) => {
    pack.on('data', (data: unknown) => {
      const c = data as Buffer;
      size += c.length;
      if (size > maxBytes) over = true;
      else chunks.push(c);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const tooLarge = () => new CustodyError('INPUT_TOO_LARGE', `the evidence bundle is over ${maxBytes} bytes`, { hint: 'export a smaller range with --from and --to' });
  const mtime = new Date(0);
  try {
    for await (const m of members) {
      if (over) throw tooLarge();
      await new Promise<void>((resolve, reject) => {
        pack.entry({ name: m.name, size: m.data.length, mode: 0o644, mtime }, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length), (err) => (err ? reject(err) : resolve()));
      });
    }
    pack.finalize();
    await collected;
  } catch (e) {
    pack.destroy();
    throw e instanceof CustodyError ? e : new CustodyError('INTERNAL', `packing the evidence bundle failed: ${(e as Error).message}`, { cause: e });
  }
  if (over) throw tooLarge();
  return Buffer.concat(chunks, size);
}

/** Streams a tar's regular-file members, in order, each read whole (within the limits). */
export async function readTar(path: string, limits: TarLimits, onMember: (m: TarMember) => void | Promise<void>): Promise<{ members: number; bytes: number }> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a file`);
    size = st.size;
  } catch (e) {
    throw e instanceof CustodyError ? e : fsError(e, path);
  }
  if (size > limits.maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${path} is ${size} bytes, more than the ${limits.maxBytes} allowed`);
  const extract = tar.extract();
  const reading = pipeline(createReadStream(path), extract);
  let members = 0;
  let bytes = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (h.type !== 'file') throw new CustodyError('EVIDENCE_INVALID', `${h.name} is a ${h.type ?? 'special'} entry; bundles hold only files`);
      if (h.name.length > 256 || !SAFE_NAME.test(h.name) || h.name.split('/').includes('..')) {
        throw new CustodyError('EVIDENCE_INVALID', `unsafe member name "${h.name.slice(0, 80)}"`);
      }
      if (++members > limits.maxMembers) throw new CustodyError('INPUT_TOO_LARGE', `more than ${limits.maxMembers} members`);
      if ((h.size ?? 0) > limits.maxMemberBytes) throw new CustodyError('INPUT_TOO_LARGE', `${h.name} is ${h.size ?? 0} bytes, more than the ${limits.maxMemberBytes} allowed per member`);
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > limits.maxMemberBytes) throw new CustodyError('INPUT_TOO_LARGE', `${h.name} is larger than the ${limits.maxMemberBytes} bytes allowed per member`);
        chunks.push(chunk);
      }
      bytes += n;
      await onMember({ name: h.name, data: Buffer.concat(chunks, n) });
    }
    await reading;
  } catch (e) {
    extract.destroy();
    await reading.catch(() => undefined);
    if (e instanceof CustodyError) throw e;
    throw new CustodyError('EVIDENCE_INVALID', `${path} is not a readable tar: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return { members, bytes };
}
