/**
 * A pool of worker threads for verifying many keyed bundles at once: `custody
 * verify` over an artifact's evidence, bulk revalidation after a key event,
 * and the promotion engine. Verification is CPU-bound and pure, so it spreads
 * over the cores; each worker runs the same pipeline as the main thread.
 * Keyless requests stay on the calling thread (they are rare and need the
 * trusted root, which is not worth shipping to every worker).
 */
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CustodyError } from '../core/errors.ts';
import type { KeyPurpose, KeyRecord } from '../core/key.ts';
import type { ArtifactDigests, VerifyResult } from '../core/verify/index.ts';
import { moduleUrl } from './module-url.ts';

/** A keyed verification request that can cross a thread boundary. */
export interface WireRequest {
  input: string | Uint8Array;
  maxBytes: number;
  artifact: ArtifactDigests;
  signedAt?: string;
  predicateType?: string;
  purpose?: KeyPurpose;
  threshold?: number;
}

export type WireResult = Omit<VerifyResult, 'statement'> & { statementJson?: string };

export type PoolMessage =
  | { type: 'keys'; keys: KeyRecord[] }
  | { type: 'batch'; id: number; requests: readonly WireRequest[]; withStatement: boolean };

interface Slot {
  worker: Worker;
  inFlight: number;
  /** The key set this worker holds: the last one posted to it (messages to a worker arrive in order). */
  keys: readonly KeyRecord[] | undefined;
}

interface Chunk {
  keys: readonly KeyRecord[];
  requests: readonly WireRequest[];
  withStatement: boolean;
  resolve: (r: WireResult[]) => void;
  reject: (e: CustodyError) => void;
}

const CHUNK = 128;
/**
 * Small calls queued while the workers are busy (promotions in flight, 5
 * requests each) are sent together up to this many requests: one message and
 * one wake-up of a worker for several callers. With 16 promotions in flight
 * the main thread spent 4–9% less CPU a promotion, and throughput rose 6–11%
 * (bench/README, stop 14). Kept small: every caller in a message waits for
 * the whole message (32 Ed25519 checks are ~2 ms of one worker).
 */
const MERGE_MAX = 32;
// Two chunks per worker keep it busy while the main thread handles a reply.
const IN_FLIGHT = 2;

export class VerifyPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, { slot: Slot; chunks: Chunk[] }>();
  /** Chunks waiting for a worker, oldest first, whichever call they belong to. */
  private readonly queue: Chunk[] = [];
  private nextId = 0;
  private failure: CustodyError | undefined;
  private idleUnref = false;

  constructor(size = availableParallelism()) {
    const base = moduleUrl(import.meta.url);
    const url = new URL(`./verify-worker${extname(fileURLToPath(base))}`, base);
    this.slots = Array.from({ length: Math.max(1, size) }, () => {
      const worker = new Worker(url);
      const slot: Slot = { worker, inFlight: 0, keys: undefined };
      worker.on('message', (m: { id: number; results: WireResult[] }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        slot.inFlight--;
        if (slot.inFlight === 0 && this.idleUnref) worker.unref();
        const chunks = p?.chunks ?? [];
        const asked = chunks.reduce((n, c) => n + c.requests.length, 0);
        if (m.results.length !== asked) {
          this.fail(new CustodyError('INTERNAL', `a verification worker answered ${m.results.length} results for a message of ${asked} requests`));
          return;
        }
        let at = 0;
        for (const c of chunks) {
          c.resolve(m.results.slice(at, at + c.requests.length));
          at += c.requests.length;
        }
        this.pump();
      });
      // A dead worker fails the batch; it never leaves a caller waiting.
      worker.on('error', (e: Error) => this.fail(new CustodyError('INTERNAL', `verification worker failed: ${e.message}`, { cause: e })));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new CustodyError('INTERNAL', `verification worker exited with code ${code}`));
      });
      return slot;
    });
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Verifies every request against `keys`, in order. Calls may overlap (several
   * promotions verify at once): each chunk goes to a worker after the key set it
   * was asked with, so every request is verified against exactly its caller's
   * keys. Pass the same array for the same keys: a worker that holds it already
   * is not sent it again.
   */
  async verifyMany(keys: readonly KeyRecord[], requests: readonly WireRequest[], options: { withStatement?: boolean } = {}): Promise<WireResult[]> {
    if (this.failure) throw this.failure;
    const withStatement = options.withStatement === true;
    const parts: Promise<WireResult[]>[] = [];
    for (let i = 0; i < requests.length; i += CHUNK) {
      parts.push(new Promise<WireResult[]>((resolve, reject) => this.queue.push({ keys, requests: requests.slice(i, i + CHUNK), withStatement, resolve, reject })));
    }
    this.pump();
    return (await Promise.all(parts)).flat();
  }

  /** Hands waiting chunks to workers with room, the least busy first. */
  private pump(): void {
    while (this.queue.length > 0) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (s.inFlight < IN_FLIGHT && (!slot || s.inFlight < slot.inFlight)) slot = s;
      if (!slot) return;
      const chunk = this.queue.shift() as Chunk;
      // Chunks queued behind it for the same keys go in the same message (see MERGE_MAX).
      const chunks = [chunk];
      let requests = chunk.requests;
      while (this.queue.length > 0) {
        const next = this.queue[0] as Chunk;
        if (next.keys !== chunk.keys || next.withStatement !== chunk.withStatement || requests.length + next.requests.length > MERGE_MAX) break;
        chunks.push(this.queue.shift() as Chunk);
        requests = requests.concat(next.requests);
      }
      if (slot.keys !== chunk.keys) {
        slot.worker.postMessage({ type: 'keys', keys: [...chunk.keys] } satisfies PoolMessage);
        slot.keys = chunk.keys;
      }
      const id = this.nextId++;
      // A caller is waiting for this reply: the process must not exit under it.
      if (slot.inFlight === 0) slot.worker.ref();
      slot.inFlight++;
      this.pending.set(id, { slot, chunks });
      slot.worker.postMessage({ type: 'batch', id, requests, withStatement: chunk.withStatement } satisfies PoolMessage);
    }
  }

  private fail(e: CustodyError): void {
    this.failure ??= e;
    for (const p of this.pending.values()) for (const c of p.chunks) c.reject(e);
    for (const c of this.queue) c.reject(e);
    this.pending.clear();
    this.queue.length = 0;
  }

  /** Lets the process exit while the threads idle (never while a caller waits for them). */
  unref(): this {
    this.idleUnref = true;
    for (const s of this.slots) if (s.inFlight === 0) s.worker.unref();
    return this;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let shared: VerifyPool | undefined;

/** One pool per process, started on first use; its threads do not keep the process alive. */
export function sharedVerifyPool(): VerifyPool {
  if (!shared) {
    shared = new VerifyPool().unref();
  }
  return shared;
}
