import { CustodyError } from '../core/errors.ts';

export interface RateLimitOptions {
  perSecond: number;
  burst: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const MAX_TRACKED = 50_000;

/**
 * Per-identity token buckets: each identity may send `burst` requests at once,
 * then `perSecond` sustained. Keyed by the authenticated identity, so one
 * runaway pipeline slows itself down and no one else.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.now = options.now ?? (() => performance.now());
  }

  /** Takes one request's worth from the identity's bucket, or throws RATE_LIMITED with the wait. */
  take(identity: string): void {
    const now = this.now();
    let b = this.buckets.get(identity);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(identity, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) {
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
      throw new CustodyError('RATE_LIMITED', `${identity} is sending more than ${this.perSecond} requests per second`, {
        hint: `wait ${retryAfterSeconds}s (Retry-After) and send fewer requests at once`,
        details: { retryAfterSeconds },
      });
    }
    b.tokens -= 1;
  }

  /** Forgets identities whose bucket has refilled: they are indistinguishable from new ones. */
  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size >= MAX_TRACKED) this.buckets.clear();
  }
}
