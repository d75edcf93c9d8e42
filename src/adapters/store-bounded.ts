import { CustodyError } from '../core/errors.ts';
import type { Store, Tx } from '../core/ports.ts';

export interface BoundedStoreOptions {
  /** Transactions (reads included) allowed to be waiting or running at once. */
  maxPending: number;
  /** What the refusal tells the caller to wait, in seconds. */
  retryAfterSeconds?: number;
}

/**
 * Back-pressure in front of a store. The embedded store has one connection and
 * runs one transaction at a time; without a bound, a burst of clients would
 * queue without limit, every one of them waiting longer, until memory or a lock
 * timeout gave out. Past `maxPending`, a transaction is refused at once with
 * STORE_BUSY and a Retry-After hint, before it has changed anything.
 */
export class BoundedStore implements Store {
  readonly dialect: Store['dialect'];
  private pending = 0;
  private readonly inner: Store;
  private readonly maxPending: number;
  private readonly retryAfterSeconds: number;

  constructor(inner: Store, options: BoundedStoreOptions) {
    this.inner = inner;
    this.dialect = inner.dialect;
    this.maxPending = options.maxPending;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  }

  /** Transactions waiting or running now. */
  get depth(): number {
    return this.pending;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.admit(() => this.inner.transaction(fn));
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.admit(() => this.inner.read(fn));
  }

  concurrent(): () => void {
    return this.inner.concurrent?.() ?? (() => undefined);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async admit<T>(run: () => Promise<T>): Promise<T> {
    if (this.pending >= this.maxPending) {
      throw new CustodyError('STORE_BUSY', `the store has ${this.pending} transactions waiting; try again shortly`, {
        hint: 'retry after the delay in Retry-After',
        details: { retryAfterSeconds: this.retryAfterSeconds },
      });
    }
    this.pending++;
    try {
      return await run();
    } finally {
      this.pending--;
    }
  }
}
