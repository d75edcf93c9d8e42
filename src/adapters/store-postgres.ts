import pg from 'pg';
import type { CustomTypesConfig, Pool, PoolClient, QueryResult } from 'pg';
import { CustodyError } from '../core/errors.ts';
import type { Store, Tx } from '../core/ports.ts';
import type { RunResult, SqlExecutor, SqlValue } from './sql/executor.ts';
import { toDollarParams, toInt } from './sql/executor.ts';
import { MIGRATIONS } from './sql/migrations.ts';
import { bindTx } from './sql/tx.ts';

export interface PostgresStoreOptions {
  /** Most connections this process holds. Writers use one at a time; readers share the rest. */
  maxConnections?: number;
  /** How long a writer waits for the writer lock (held by any process on any server) before STORE_BUSY. */
  busyTimeoutMs?: number;
  /** How long to wait for a connection, new or from the pool, before giving up. */
  connectTimeoutMs?: number;
  /** How long a starting server waits for another one that is migrating. */
  migrateTimeoutMs?: number;
  /**
   * How long a transaction may sit idle between statements before PostgreSQL
   * ends its session (0: never). A hung or vanished server would otherwise hold
   * the writer lock, and stop every other server's writes, until TCP notices.
   */
  idleInTransactionTimeoutMs?: number;
  /** Names where the URL came from in messages (e.g. `$CUSTODY_DATABASE_URL`): the URL itself is never shown. */
  urlSource?: string;
}

/**
 * Advisory lock keys, `(namespace, key)` as two int4s. They are database-wide:
 * every Custody process on every server that shares the database takes the same
 * lock, whichever schema it uses.
 */
export const ADVISORY_LOCK = { namespace: 0x43555354 /* "CUST" */, writer: 1, migrate: 2 } as const;

const WRITER_LOCK = `SELECT pg_advisory_xact_lock(${ADVISORY_LOCK.namespace}, ${ADVISORY_LOCK.writer})`;
const MIGRATE_LOCK = `SELECT pg_advisory_lock(${ADVISORY_LOCK.namespace}, ${ADVISORY_LOCK.migrate})`;
const MIGRATE_UNLOCK = `SELECT pg_advisory_unlock(${ADVISORY_LOCK.namespace}, ${ADVISORY_LOCK.migrate})`;

// Writers run READ COMMITTED on purpose: the snapshot of each statement is taken
// after the writer lock is held, so every writer sees all earlier commits. Under
// REPEATABLE READ the snapshot would be taken by the lock statement itself,
// before the previous writer committed.
const BEGIN_WRITE = `BEGIN ISOLATION LEVEL READ COMMITTED; ${WRITER_LOCK}`;
const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

// SQLSTATEs that mean "someone else holds what you need; retrying may help".
const BUSY_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '53300', // too_many_connections
  '57P03', // cannot_connect_now (the server is starting or shutting down)
]);

/**
 * The scale-out store: several stateless servers on one PostgreSQL database.
 *
 * Writers are serialised in two steps: in-process by a promise chain (so a
 * process holds at most one connection waiting for the lock), then across
 * processes and servers by a transaction-scoped advisory lock, released by
 * COMMIT or ROLLBACK, or by the server when a crashed client's connection drops.
 * That keeps log appends gap-free and ordered. Readers run concurrently in
 * REPEATABLE READ READ ONLY snapshots and never wait for writers.
 */
export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: Pool;
  private readonly redact: (text: string) => string;
  private readonly source: string;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly watched = new WeakSet<PoolClient>();
  private closed = false;

  private constructor(pool: Pool, redact: (text: string) => string, source: string) {
    this.pool = pool;
    this.redact = redact;
    this.source = source;
  }

  /** Connects, migrates (once, whoever else is starting at the same time) and returns the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const source = options.urlSource ?? 'the database URL';
    checkUrl(url, source);
    const redact = redactor(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      lock_timeout: options.busyTimeoutMs ?? 10_000,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60_000,
      keepAlive: true,
      application_name: 'custody',
      types: PG_TYPES,
      pipeline: true,
    });
    // An idle connection that dies (server restart, network) is dropped from the pool, not fatal.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, redact, source);
    try {
      await store.migrate(options.migrateTimeoutMs ?? 120_000);
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
    return store;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return this.track(this.serialise(() => this.inTransaction(BEGIN_WRITE, fn)));
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return this.track(this.inTransaction(BEGIN_READ, fn));
  }

  /** Runs `fn` in a write transaction with the raw executor: for repository tests and tools, not use cases. */
  withSql<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return this.track(this.serialise(() => this.inTransaction(BEGIN_WRITE, (_tx, db) => fn(db))));
  }

  /** Closes after the transactions already asked for have finished. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await this.pool.end().catch(() => undefined);
  }

  private async migrate(timeoutMs: number): Promise<void> {
    const client = await this.connect();
    let broken: unknown;
    try {
      // A session lock, so each migration can still commit on its own; the server
      // drops it with the connection if this process dies half-way.
      await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
      await client.query(MIGRATE_LOCK);
      await client.query('RESET lock_timeout');
      try {
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
        const done = new Set((await client.query<{ version: unknown }>('SELECT version FROM schema_migrations')).rows.map((r) => toInt(r.version)));
        for (const m of MIGRATIONS) {
          if (done.has(m.version)) continue;
          try {
            // The writer lock too: no write runs half on the old schema, half on the new.
            await client.query(BEGIN_WRITE);
            await client.query(m.postgres);
            await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, new Date().toISOString()]);
            await client.query('COMMIT');
          } catch (e) {
            await client.query('ROLLBACK').catch((r: unknown) => (broken = r));
            const mapped = this.mapError(e);
            throw new CustodyError(mapped.code, `migration ${m.version} (${m.name}) failed: ${mapped.message}`, { cause: e });
          }
        }
      } finally {
        await client.query(MIGRATE_UNLOCK).catch((r: unknown) => (broken = r));
      }
    } catch (e) {
      broken ??= e;
      if (e instanceof CustodyError) throw e;
      throw this.mapError(e, 'migrating the database');
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  private async inTransaction<T>(begin: string, fn: (tx: Tx, db: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.connect();
    const tx = new PgTransaction(client, begin, (e) => this.mapError(e));
    try {
      let result: T;
      try {
        result = await fn(bindTx(tx), tx);
        // A failed statement aborts a PostgreSQL transaction, and COMMIT would then
        // quietly roll back: never report success for it.
        if (tx.failed) throw tx.failed;
      } catch (e) {
        await tx.rollback();
        throw e instanceof CustodyError ? e : this.mapError(e);
      }
      await tx.commit();
      return result;
    } finally {
      client.release(tx.broken);
    }
  }

  private async connect(): Promise<PoolClient> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e, 'connecting');
    }
    if (!this.watched.has(client)) {
      // A connection that drops between two queries emits 'error' on the client;
      // the next query fails and the transaction reports it.
      client.on('error', () => undefined);
      this.watched.add(client);
    }
    return client;
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private mapError(e: unknown, doing?: string): CustodyError {
    return mapPgError(e, this.redact, this.source, doing);
  }
}

const SAVEPOINT = 'SAVEPOINT custody_statement';
const RELEASE = 'RELEASE SAVEPOINT custody_statement';
const UNDO_STATEMENT = 'ROLLBACK TO SAVEPOINT custody_statement; RELEASE SAVEPOINT custody_statement';

/**
 * One transaction on one connection, as the executor its repositories use.
 *
 * The connection runs in pipeline mode, so statements that belong together go
 * out back to back and cost one round trip: BEGIN (and the writer lock) with
 * the first statement, and each write with the savepoint around it. Round trips
 * inside the writer lock are what limit the commit rate of every server at once.
 *
 * Each write runs under a savepoint, so a failed statement (a unique violation
 * the use case catches and turns into its own code) undoes only itself, as on
 * SQLite, instead of aborting the whole transaction.
 */
class PgTransaction implements SqlExecutor {
  readonly dialect = 'postgres' as const;
  /** The first error that left the transaction aborted. */
  failed: CustodyError | undefined;
  /** Set when the connection cannot be trusted any more: the pool then drops it. */
  broken: Error | undefined;
  private begun: Promise<QueryResult> | undefined;
  private readonly client: PoolClient;
  private readonly beginSql: string;
  private readonly map: (e: unknown) => CustodyError;

  constructor(client: PoolClient, beginSql: string, map: (e: unknown) => CustodyError) {
    this.client = client;
    this.beginSql = beginSql;
    this.map = map;
  }

  async all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return (await this.read(sql, params)).rows as T[];
  }

  async get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return (await this.read(sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<RunResult> {
    const [savepoint, statement, release] = await this.send([{ text: SAVEPOINT }, { text: dollars(sql), values: params }, { text: RELEASE }]);
    if (savepoint?.status === 'rejected') throw this.fail(savepoint.reason);
    if (statement?.status === 'rejected') {
      const mapped = this.map(statement.reason);
      await this.client.query(UNDO_STATEMENT).catch(() => (this.failed ??= mapped));
      throw mapped;
    }
    if (release?.status === 'rejected') throw this.fail(release.reason);
    return { changes: statement?.status === 'fulfilled' ? (statement.value.rowCount ?? 0) : 0 };
  }

  async commit(): Promise<void> {
    if (this.begun === undefined) return; // nothing was sent: nothing to commit
    let r: QueryResult;
    try {
      r = await this.client.query('COMMIT');
    } catch (e) {
      this.broken = e instanceof Error ? e : new Error(String(e));
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw this.map(e);
    }
    if (r.command !== 'COMMIT') throw new CustodyError('STORE_ERROR', 'the transaction was rolled back by the database');
  }

  async rollback(): Promise<void> {
    if (this.begun === undefined) return;
    await this.client.query('ROLLBACK').catch((e: unknown) => (this.broken = e instanceof Error ? e : new Error(String(e))));
  }

  private async read(sql: string, params: readonly SqlValue[] | undefined): Promise<QueryResult> {
    const [r] = await this.send([{ text: dollars(sql), values: params }]);
    if (r?.status === 'rejected') throw this.fail(r.reason);
    if (r?.status !== 'fulfilled') throw new CustodyError('STORE_ERROR', 'a query returned no result');
    return r.value;
  }

  /** Sends the queries back to back (after BEGIN, the first time) and waits for them all. */
  private async send(queries: { text: string; values?: readonly SqlValue[] | undefined }[]): Promise<PromiseSettledResult<QueryResult>[]> {
    this.begun ??= this.client.query(this.beginSql);
    const sent = queries.map((q) => this.client.query(q.text, q.values ? [...q.values] : undefined));
    const [begin, ...results] = await Promise.allSettled([this.begun, ...sent]);
    // If BEGIN or the writer lock failed, that is the error to report (e.g. STORE_BUSY), not the aborted statements.
    if (begin?.status === 'rejected') throw this.fail(begin.reason);
    return results;
  }

  private fail(e: unknown): CustodyError {
    this.failed ??= this.map(e);
    return this.failed;
  }
}

function closedError(): CustodyError {
  return new CustodyError('STORE_ERROR', 'the store is closed');
}

const dollarCache = new Map<string, string>();
function dollars(sql: string): string {
  let out = dollarCache.get(sql);
  if (out === undefined) {
    out = toDollarParams(sql);
    if (dollarCache.size < 1000) dollarCache.set(sql, out);
  }
  return out;
}

// ---------------------------------------------------------------- values

const OID = { int8: 20, numeric: 1700, bytea: 17 } as const;

function parseInteger(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

function parseNumeric(text: string): number | bigint {
  return /^-?\d+$/.test(text) ? parseInteger(text) : Number(text);
}

const parseBytea = pg.types.getTypeParser(OID.bytea, 'text') as (text: string) => Buffer;

/**
 * Repositories see the values SQLite gives them: BIGINT and integral NUMERIC
 * (COUNT, SUM) as numbers (a bigint only beyond 2^53, never a silent rounding),
 * BYTEA as a plain Uint8Array rather than a Buffer.
 */
export const PG_TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === undefined || format === 'text') {
      if (oid === OID.int8) return parseInteger;
      if (oid === OID.numeric) return parseNumeric;
      if (oid === OID.bytea) {
        return (text: string) => {
          const b = parseBytea(text);
          return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
        };
      }
    }
    const fallback: unknown = pg.types.getTypeParser(oid, format);
    return fallback;
  }) as CustomTypesConfig['getTypeParser'],
};

// ---------------------------------------------------------------- errors and secrets

function checkUrl(url: string, source: string): void {
  // libpq's URL forms (an empty host for the Unix socket, `?host=/dir`) are not all
  // WHATWG URLs, so only the scheme is checked here; pg parses the rest.
  if (!/^(postgres|postgresql|socket):\/\/\S*$/i.test(url)) {
    throw new CustodyError('CONFIG_INVALID', `${source} is not a postgresql:// URL`, { hint: 'expected postgresql://user:password@host:5432/database' });
  }
}

/** Masks the URL's password wherever a message might echo it. */
export function redactor(url: string): (text: string) => string {
  const secrets = new Set<string>();
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:([^@/]*)@/i.exec(url)?.[1];
  const param = /[?&]password=([^&]*)/i.exec(url)?.[1];
  for (const s of [userinfo, param]) {
    if (s) {
      secrets.add(s);
      secrets.add(safeDecode(s));
    }
  }
  const ordered = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@').replace(/(password=)[^&\s]*/gi, '$1***');
    for (const s of ordered) out = out.split(s).join('***');
    return out;
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

interface PgErrorLike {
  code?: unknown;
  table?: unknown;
  detail?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** Maps a `pg` or socket error to a coded error, with secrets masked. */
export function mapPgError(e: unknown, redact: (text: string) => string, source = 'the database URL', doing?: string): CustodyError {
  if (e instanceof CustodyError) return e;
  const err = (typeof e === 'object' && e !== null ? e : {}) as PgErrorLike;
  const code = typeof err.code === 'string' ? err.code : '';
  const message = redact(e instanceof Error ? e.message : String(e));
  if (code === '23505') {
    const table = typeof err.table === 'string' ? err.table : 'unknown';
    // "Key (name, version)=(…) already exists.": keep the column names, never the values.
    const columns = typeof err.detail === 'string' ? (/^Key \(([^)]*)\)=/.exec(err.detail)?.[1]?.split(/,\s*/) ?? []) : [];
    return new CustodyError('STORE_ERROR', `a row with the same ${columns.join(', ') || 'key'} already exists in ${table}`, {
      cause: e,
      details: { violation: 'unique', table, columns },
    });
  }
  if (BUSY_CODES.has(code) || /timeout exceeded when trying to connect/i.test(message)) {
    return new CustodyError('STORE_BUSY', `the database is busy: ${message}`, {
      cause: e,
      hint: 'retry; if it persists, look for a long-running transaction holding the Custody writer lock',
    });
  }
  const connecting = doing === 'connecting' || /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ENOENT|EACCES)$/.test(code) || /^(28|3D|08)/.test(code);
  if (connecting) {
    return new CustodyError('STORE_ERROR', `cannot reach the PostgreSQL database named by ${source}: ${message}`, {
      cause: e,
      hint: `check that ${source} points at a running PostgreSQL server and that its credentials are right`,
    });
  }
  return new CustodyError('STORE_ERROR', doing ? `${doing}: ${message}` : message, { cause: e });
}
