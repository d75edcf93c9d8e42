/**
 * Per-connection caches of committed state that changes rarely and is read by
 * nearly every transaction: the key records (every verification and signature
 * reads them) and the newest published policy version (every decision reads it).
 * A promotion read the keys table five times and the policy row once; with these
 * it reads neither while nothing changed.
 *
 * SQLite only (an executor that reports `rollbacks`): PostgreSQL is shared by
 * several servers, and nothing there says cheaply that another one wrote. A
 * cached value is trusted in a transaction only while all of these hold:
 *
 * - `PRAGMA data_version` is what it was when the value was read: no other
 *   connection (another process) has committed since. Read once per
 *   transaction, it also fixes the transaction's snapshot, so what the cache
 *   holds and what the transaction's own queries see are the same state.
 * - the store has rolled nothing back since (`rollbacks()`): a value read after
 *   an uncommitted write of this connection is dropped with that write, whether
 *   a transaction, a savepoint of a group commit or a failed commit undid it.
 * - this connection has not written the table since: the repositories drop the
 *   value on every insert or update (their own connection's commits do not move
 *   `data_version`).
 *
 * Values are frozen, so no caller can change what the next transaction reads.
 */
import type { KeyRecord } from '../../core/key.ts';
import type { PolicyVersionRecord } from '../../core/ports.ts';
import type { SqlExecutor } from './executor.ts';
import { toInt } from './executor.ts';

export interface KeysSnapshot {
  /** Ordered by name, then version, as `keys.list()` answers. */
  readonly records: readonly KeyRecord[];
  readonly byKeyid: ReadonlyMap<string, { record: KeyRecord; privateRef: string | null }>;
}

interface ConnectionState {
  dataVersion: number;
  rollbacks: number;
  keys?: KeysSnapshot;
  /** The newest published policy version; null when there is none. */
  latestPolicy?: PolicyVersionRecord | null;
}

const connections = new WeakMap<SqlExecutor, ConnectionState>();

/** What one transaction may take from its connection's cache: validated once, on first use. */
export class TxCache {
  private readonly db: SqlExecutor;
  private state: ConnectionState | null | undefined;

  constructor(db: SqlExecutor) {
    this.db = db;
  }

  /** The connection's cached state, valid for this transaction; null when this store does not cache. */
  private async current(): Promise<ConnectionState | null> {
    if (this.state !== undefined) return this.state;
    const rollbacks = this.db.rollbacks?.();
    if (rollbacks === undefined) return (this.state = null);
    const r = await this.db.get<{ v: unknown }>('SELECT data_version AS v FROM pragma_data_version');
    const dataVersion = toInt(r?.v);
    let s = connections.get(this.db);
    if (!s || s.dataVersion !== dataVersion || s.rollbacks !== rollbacks) {
      s = { dataVersion, rollbacks };
      connections.set(this.db, s);
    }
    return (this.state = s);
  }

  async keys(load: () => Promise<KeysSnapshot>): Promise<KeysSnapshot> {
    const s = await this.current();
    if (!s) return load();
    s.keys ??= freezeKeys(await load());
    return s.keys;
  }

  async latestPolicy(load: () => Promise<PolicyVersionRecord | undefined>): Promise<PolicyVersionRecord | undefined> {
    const s = await this.current();
    if (!s) return load();
    if (s.latestPolicy === undefined) {
      const r = await load();
      s.latestPolicy = r ? Object.freeze(r) : null;
    }
    return s.latestPolicy ?? undefined;
  }

  /** After this connection wrote keys: the next reader loads them again. */
  dropKeys(): void {
    const s = connections.get(this.db);
    if (s) delete s.keys;
  }

  dropPolicies(): void {
    const s = connections.get(this.db);
    if (s) delete s.latestPolicy;
  }
}

function freezeKeys(k: KeysSnapshot): KeysSnapshot {
  for (const r of k.records) {
    Object.freeze(r.purposes);
    Object.freeze(r);
  }
  return Object.freeze({ records: Object.freeze([...k.records]), byKeyid: k.byKeyid });
}
