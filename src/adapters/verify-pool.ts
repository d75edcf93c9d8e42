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
  | { type: 'batch'; id: number; requests: WireRequest[]; withStatement: boolean };

interface Slot {
  worker: Worker;
  inFlight: number;
}

const CHUNK = 128;
// Two chunks per worker keep it busy while the main thread handles a reply.
const IN_FLIGHT = 2;

export class VerifyPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, { resolve: (r: WireResult[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: CustodyError | undefined;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(size = availableParallelism()) {
    const here = fileURLToPath(import.meta.url);
    const url = new URL(`./verify-worker${extname(here)}`, import.meta.url);
    this.slots = Array.from({ length: Math.max(1, size) }, () => {
      const worker = new Worker(url);
      worker.on('message', (m: { id: number; results: WireResult[] }) => {
        this.pending.get(m.id)?.resolve(m.results);
        this.pending.delete(m.id);
      });
      // A dead worker fails the batch; it never leaves a caller waiting.
      worker.on('error', (e: Error) => this.fail(new CustodyError('INTERNAL', `verification worker failed: ${e.message}`, { cause: e })));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new CustodyError('INTERNAL', `verification worker exited with code ${code}`));
      });
      return { worker, inFlight: 0 };
    });
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Verifies every request against `keys`, in order. Calls are serialised, so
   * each batch sees exactly the keys it was given.
   */
  verifyMany(keys: readonly KeyRecord[], requests: readonly WireRequest[], options: { withStatement?: boolean } = {}): Promise<WireResult[]> {
    const run = this.busy.then(() => this.run(keys, requests, options.withStatement === true));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async run(keys: readonly KeyRecord[], requests: readonly WireRequest[], withStatement: boolean): Promise<WireResult[]> {
    if (this.failure) throw this.failure;
    for (const s of this.slots) s.worker.postMessage({ type: 'keys', keys: [...keys] } satisfies PoolMessage);
    const out: WireResult[] = new Array<WireResult>(requests.length);
    let next = 0;
    await new Promise<void>((resolve, reject) => {
      let outstanding = 0;
      const feed = (slot: Slot): void => {
        while (slot.inFlight < IN_FLIGHT && next < requests.length) {
          const start = next;
          const chunk = requests.slice(start, start + CHUNK);
          next += chunk.length;
          const id = this.nextId++;
          slot.inFlight++;
          outstanding++;
          this.pending.set(id, {
            resolve: (results) => {
              for (let i = 0; i < results.length; i++) out[start + i] = results[i]!;
              slot.inFlight--;
              outstanding--;
              feed(slot);
              if (outstanding === 0 && next >= requests.length) resolve();
            },
            reject,
          });
          slot.worker.postMessage({ type: 'batch', id, requests: chunk, withStatement } satisfies PoolMessage);
        }
      };
      if (requests.length === 0) resolve();
      for (const s of this.slots) feed(s);
    });
    return out;
  }

  private fail(e: CustodyError): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Lets the process exit while the threads idle. */
  unref(): this {
    for (const s of this.slots) s.worker.unref();
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
