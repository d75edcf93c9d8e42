import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { listDir, ownerAlive, syncPath } from './fs-durable.ts';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CustodyError } from '../core/errors.ts';
import { parseDigest, type DigestString } from '../core/digest.ts';
import type { BlobStore, ByteStream, IngestProgress, StagedBlob } from '../core/ports.ts';
import { fsError } from './fs-errors.ts';
import { failpoint } from './failpoints.ts';
import { moduleUrl } from './module-url.ts';

const SLOT_SIZE = 1024 * 1024;
const SLOTS = 4;
// Flush written data every this many bytes, in the background: the kernel would
// otherwise hold a whole large file dirty until the final fsync, serialising the
// disk write after the hashing instead of overlapping the two.
const FLUSH_EVERY = 64 * 1024 * 1024;
// Below this, starting a worker costs more than hashing on one core.
const WORKER_THRESHOLD = 8 * 1024 * 1024;

export interface FsBlobStoreOptions {
  /** Largest file accepted, in bytes. */
  maxBytes: number;
}

/**
 * Content-addressed blobs under `<root>/sha256/<hex>`. Bytes land in `.tmp/`,
 * are fsynced, then renamed into place, so a digest name never holds half a blob.
 */
export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly maxBytes: number;

  constructor(root: string, options: FsBlobStoreOptions) {
    this.root = root;
    this.maxBytes = options.maxBytes;
  }

  pathOf(digest: DigestString): string {
    const d = parseDigest(digest);
    return join(this.root, d.algorithm, d.hex);
  }

  async has(digest: DigestString): Promise<boolean> {
    try {
      return (await stat(this.pathOf(digest))).isFile();
    } catch {
      return false;
    }
  }

  async stage(source: string | ByteStream, onProgress?: (p: IngestProgress) => void): Promise<StagedBlob> {
    return typeof source === 'string' ? this.stageFile(source, onProgress) : this.stageStream(source, onProgress);
  }

  private async stageFile(path: string, onProgress?: (p: IngestProgress) => void): Promise<StagedBlob> {
    const { handle: input, size } = await openBlobFile(path, this.maxBytes);
    try {
      let position = 0;
      const reader = async (view: Buffer) => {
        const { bytesRead } = await input.read(view, 0, view.length, position);
        position += bytesRead;
        return bytesRead;
      };
      return await this.stageFrom(reader, size, path, onProgress);
    } finally {
      await input.close().catch(() => undefined);
    }
  }

  private async stageStream(source: ByteStream, onProgress?: (p: IngestProgress) => void): Promise<StagedBlob> {
    if (source.expectedBytes !== undefined && source.expectedBytes > this.maxBytes) {
      throw tooLarge(`${source.label} is ${source.expectedBytes} bytes, over the ${this.maxBytes}-byte limit`);
    }
    const staged = await this.stageFrom(streamReader(source), source.expectedBytes, source.label, onProgress);
    if (source.expectedBytes !== undefined && staged.size !== source.expectedBytes) {
      await staged.discard();
      throw new CustodyError('INPUT_INVALID', `${source.label} carried ${staged.size} bytes, not the ${source.expectedBytes} it announced`);
    }
    return staged;
  }

  /** Both sources end here, so an upload gets exactly the temporary-file, fsync and rename discipline of a local add. */
  private async stageFrom(read: Reader, expected: number | undefined, label: string, onProgress?: (p: IngestProgress) => void): Promise<StagedBlob> {
    const tmpDir = join(this.root, '.tmp');
    const tmpPath = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    let output: FileHandle | undefined;
    try {
      await mkdir(tmpDir, { recursive: true });
      output = await open(tmpPath, 'wx', 0o600);
      const result = await copyAndHash(read, output, expected, this.maxBytes, label, onProgress);
      failpoint('blob.stage.before-sync');
      await output.sync();
      await output.close();
      output = undefined;
      return this.staged(tmpPath, result);
    } catch (e) {
      await output?.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      throw e instanceof CustodyError ? e : fsError(e, label);
    }
  }

  private staged(tmpPath: string, r: { sha256: string; sha512: string; size: number }): StagedBlob {
    const finalDir = join(this.root, 'sha256');
    const finalPath = join(finalDir, r.sha256);
    const markerDir = join(this.root, '.pending');
    const marker = join(markerDir, `${process.pid}-${r.sha256}`);
    let existed = false;
    let published = false;
    return {
      ...r,
      publish: async () => {
        if (published) return;
        await mkdir(finalDir, { recursive: true });
        await mkdir(markerDir, { recursive: true });
        existed = await exists(finalPath);
        if (existed) {
          // Same digest, same bytes: keep the blob that is already there.
          await unlink(tmpPath).catch(() => undefined);
        } else {
          await (await open(marker, 'w', 0o600)).close();
          await syncPath(markerDir);
          await rename(tmpPath, finalPath);
          await syncPath(finalDir);
        }
        published = true;
      },
      finish: async () => {
        await unlink(marker).catch(() => undefined);
      },
      discard: async () => {
        await unlink(tmpPath).catch(() => undefined);
        if (published && !existed) await unlink(finalPath).catch(() => undefined);
        await unlink(marker).catch(() => undefined);
      },
    };
  }

  async recover(isKnown: (digest: DigestString) => Promise<boolean>): Promise<{ removed: number }> {
    let removed = 0;
    for (const name of await listDir(join(this.root, '.tmp'))) {
      if (ownerAlive(name)) continue;
      await unlink(join(this.root, '.tmp', name)).catch(() => undefined);
      removed++;
    }
    for (const name of await listDir(join(this.root, '.pending'))) {
      if (ownerAlive(name)) continue;
      const hex = name.slice(name.indexOf('-') + 1);
      if (/^[0-9a-f]{64}$/.test(hex) && !(await isKnown(`sha256:${hex}`))) {
        await unlink(join(this.root, 'sha256', hex)).catch(() => undefined);
        removed++;
      }
      await unlink(join(this.root, '.pending', name)).catch(() => undefined);
    }
    return { removed };
  }
}

/** Fills `view` from the source; resolves with the bytes placed, 0 at the end. */
type Reader = (view: Buffer) => Promise<number>;

async function copyAndHash(
  read: Reader,
  output: FileHandle,
  expected: number | undefined,
  maxBytes: number,
  label: string,
  onProgress?: (p: IngestProgress) => void,
): Promise<{ sha256: string; sha512: string; size: number }> {
  const sha256 = createHash('sha256');
  // An upload of unknown length may be large: pay for the worker rather than stall the server's event loop.
  const useWorker = (expected ?? Number.POSITIVE_INFINITY) >= WORKER_THRESHOLD;
  const shared = new SharedArrayBuffer(SLOT_SIZE * SLOTS);
  const sha512 = useWorker ? new Sha512Worker(shared) : undefined;
  const inline512 = useWorker ? undefined : createHash('sha512');
  // A slot is free again once the worker has hashed it and its write has landed.
  const busy: Promise<void>[] = Array.from({ length: SLOTS }, () => Promise.resolve());
  let position = 0;
  let slot = 0;
  let flushedAt = 0;
  let flushing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      await busy[slot];
      const view = Buffer.from(shared, slot * SLOT_SIZE, SLOT_SIZE);
      const bytesRead = await read(view);
      if (bytesRead === 0) break;
      if (position + bytesRead > maxBytes) {
        throw tooLarge(`${label} grew past the ${maxBytes}-byte limit while being read`);
      }
      const chunk = view.subarray(0, bytesRead);
      sha256.update(chunk);
      const hashed = sha512 ? sha512.update(slot, bytesRead) : (inline512?.update(chunk), Promise.resolve());
      const written = writeAll(output, chunk, position);
      busy[slot] = Promise.all([hashed, written]).then(() => undefined);
      position += bytesRead;
      if (position - flushedAt >= FLUSH_EVERY) {
        flushedAt = position;
        // One flush in flight at a time; it covers whatever has landed by then.
        flushing = flushing.then(() => output.datasync());
      }
      onProgress?.({ bytes: position, total: Math.max(expected ?? 0, position) });
      slot = (slot + 1) % SLOTS;
    }
    await Promise.all(busy);
    await flushing;
    const sha512hex = sha512 ? await sha512.digest() : (inline512?.digest('hex') ?? '');
    return { sha256: sha256.digest('hex'), sha512: sha512hex, size: position };
  } finally {
    await Promise.allSettled([...busy, flushing]);
    await sha512?.terminate();
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

class Sha512Worker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private final: { resolve: (hex: string) => void; reject: (e: Error) => void } | undefined;
  private failure: CustodyError | undefined;

  constructor(shared: SharedArrayBuffer) {
    const base = moduleUrl(import.meta.url);
    const url = new URL(`./hash-worker${extname(fileURLToPath(base))}`, base);
    this.worker = new Worker(url, { workerData: { buffer: shared, slotSize: SLOT_SIZE, algorithm: 'sha512' } });
    this.worker.on('message', (m: { slot?: number; digest?: string }) => {
      if (m.digest !== undefined) this.final?.resolve(m.digest);
      else if (m.slot !== undefined) {
        this.waiting.get(m.slot)?.resolve();
        this.waiting.delete(m.slot);
      }
    });
    // A dead worker must fail the add, never leave it waiting forever.
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', (code: number) => {
      if (code !== 0) this.fail(new CustodyError('INTERNAL', `hash worker exited with code ${code}`));
    });
  }

  update(slot: number, length: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.set(slot, { resolve, reject });
      this.worker.postMessage({ slot, length });
    });
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.final = { resolve, reject };
      this.worker.postMessage({ done: true });
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private fail(e: Error): void {
    this.failure ??= new CustodyError('INTERNAL', `hash worker failed: ${e.message}`, { cause: e });
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
    this.final?.reject(this.failure);
  }
}

/**
 * Opens a file to be read as an artifact: a regular file within the limit, or a
 * coded error naming it. The remote CLI opens uploads through here too, so both
 * modes refuse the same files with the same words.
 */
export async function openBlobFile(path: string, maxBytes: number): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY);
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new CustodyError('INPUT_INVALID', `${path} is a directory, not a file`);
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a regular file`);
    if (st.size > maxBytes) throw tooLarge(`${path} is ${st.size} bytes, over the ${maxBytes}-byte limit`);
    return { handle, size: st.size };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e instanceof CustodyError ? e : fsError(e, path);
  }
}

function tooLarge(message: string): CustodyError {
  return new CustodyError('INPUT_TOO_LARGE', message, { hint: 'raise limits.artifactBytes in custody.yaml, or register it by digest with --digest' });
}

/** Copies chunks of whatever size the stream yields into whole slots. */
function streamReader(source: ByteStream): Reader {
  const it = source.chunks[Symbol.asyncIterator]();
  let pending: Uint8Array | undefined;
  let done = false;
  return async (view) => {
    let filled = 0;
    while (filled < view.length && !done) {
      if (!pending || pending.length === 0) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await it.next();
        } catch (e) {
          throw new CustodyError('INPUT_UNREADABLE', `${source.label} was interrupted: ${(e as Error).message}`, { cause: e });
        }
        if (next.done) {
          done = true;
          break;
        }
        pending = next.value;
      }
      const n = Math.min(pending.length, view.length - filled);
      view.set(pending.subarray(0, n), filled);
      pending = pending.subarray(n);
      filled += n;
    }
    return filled;
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

