import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { CustodyError } from '../core/errors.ts';
import type { Store, Tx } from '../core/ports.ts';
import type { RunResult, SqlExecutor, SqlValue } from './sql/executor.ts';
import { MIGRATIONS } from './sql/migrations.ts';
import { bindTx } from './sql/tx.ts';

export interface SqliteStoreOptions {
  /** How long a writer waits for another process's lock before STORE_BUSY. */
  busyTimeoutMs?: number;
}

/** Most write transactions one group commit takes in; the rest wait for the next group. */
const MAX_GROUP = 32;

interface WriteJob {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * The embedded store on `node:sqlite`. One connection per process; transactions
 * are serialised in-process by a promise chain and across processes by SQLite's
 * write lock, taken up front with BEGIN IMMEDIATE so two writers never deadlock
 * upgrading a read lock.
 *
 * Group commit. Write transactions asked for together (while a caller has
 * said others may be at work: see `concurrent()`) are run one after the other
 * inside one SQLite transaction, each in its own SAVEPOINT, and committed
 * together: one WAL write and one fsync acknowledge them all (with
 * `synchronous = FULL` the fsync is most of a small commit). Each caller
 * still gets all-or-nothing: one that throws is rolled back to its savepoint
 * alone and rejected; the others are resolved only after the shared COMMIT
 * returned, so nothing is acknowledged before it is durable. If the commit
 * itself fails, or SQLite aborts the whole transaction under a member (an I/O
 * error, a full disk), every member of the group is rejected: none was
 * acknowledged, and none is half-applied. A lone transaction commits at once,
 * exactly as without grouping; groups form only under concurrency (the server,
 * or several promotions in flight in one process).
 *
 * Reads have a connection of their own (query_only), with its own queue, so a
 * read never waits behind a write group, nor delays the callers that would
 * join the next one, and a read asked for inside an open write transaction
 * cannot deadlock on it. A read sees the last committed state (WAL snapshot
 * isolation), as a READ ONLY transaction does on PostgreSQL; a write
 * acknowledged before a read begins is always seen by it.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: DatabaseSync;
  private readonly executor: SqlExecutor;
  private queue: Promise<unknown> = Promise.resolve();
  /** Open `concurrent()` spans: while there is one, a group waits for the callers woken with its first. */
  private concurrency = 0;
  /** Write transactions committed, and the COMMITs that carried them: their ratio is the group commit's gain. */
  readonly stats = { transactions: 0, commits: 0 };
  /** A group asked for and not yet queued (it starts after the current turn of the event loop). */
  private starting: Promise<void> | undefined;
  /** The read connection, opened on the first read; undefined for an in-memory database, whose reads share the writer. */
  private reader: Connection | undefined;
  private readonly path: string;
  private readonly timeout: number;
  private closed = false;
  /** Write transactions waiting for a group; a group is queued while this is non-empty. */
  private readonly waiting: WriteJob[] = [];
  private groupQueued = false;
  /** Bumped by every rollback (and by raw access): per-connection caches trust nothing read before it moved. */
  private rollbackCount = 0;

  private constructor(db: DatabaseSync, path: string, timeout: number) {
    this.db = db;
    this.path = path;
    this.timeout = timeout;
    // Errors are coded at the statement, so a use case can catch a unique violation
    // inside its transaction and turn it into its own code, as on PostgreSQL.
    this.executor = executorOn(db, () => this.rollbackCount);
  }

  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    let db: DatabaseSync;
    const timeout = options.busyTimeoutMs ?? 10_000;
    try {
      db = new DatabaseSync(path, { timeout });
      await walMode(db, Date.now() + timeout);
      commitSettings(db);
      db.exec('PRAGMA foreign_keys = ON');
    } catch (e) {
      throw new CustodyError('STORE_ERROR', `cannot open the database: ${(e as Error).message}`, { cause: e });
    }
    const store = new SqliteStore(db, path, timeout);
    await store.migrate();
    return store;
  }

  /** Raw access for tests and benchmarks that must bypass the repositories (and so the caches). */
  get raw(): DatabaseSync {
    this.rollbackCount++;
    return this.db;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new CustodyError('STORE_ERROR', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.groupQueued) {
        this.groupQueued = true;
        if (this.concurrency === 0) {
          void this.serialise(() => this.runGroup());
          return;
        }
        // Others may be at work: the group starts after this turn of the event loop, not in its microtasks, so callers
        // woken in the same turn (worker results and socket reads delivered together, typically while the last
        // COMMIT held the thread) join it instead of each committing alone. A lone caller would pay that turn for
        // nothing (bench/tlog's single-entry commits lost about 6% to it), so outside a span it commits at once.
        this.starting = new Promise<void>((started) =>
          setImmediate(() => {
            this.starting = undefined;
            void this.serialise(() => this.runGroup());
            started();
          }),
        );
      }
    });
  }

  concurrent(): () => void {
    this.concurrency++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.concurrency--;
    };
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new CustodyError('STORE_ERROR', 'the store is closed'));
    let reader: Connection | undefined;
    try {
      reader = this.readConnection();
    } catch (e) {
      return Promise.reject(e instanceof CustodyError ? e : mapSqliteError(e));
    }
    if (reader) return reader.read(fn);
    // query_only makes a write inside read() fail here as it does on PostgreSQL's READ ONLY.
    return this.serialise(async () => {
      if (this.closed) throw new CustodyError('STORE_ERROR', 'the store is closed');
      this.db.exec('PRAGMA query_only = ON');
      try {
        return await this.inTransaction('BEGIN', fn);
      } finally {
        this.db.exec('PRAGMA query_only = OFF');
      }
    });
  }

  /** Runs `fn` in a write transaction with the raw executor: for repository tests and tools, not use cases. */
  withSql<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    // Raw statements bypass the repositories that keep the caches current.
    this.rollbackCount++;
    return this.serialise(() => this.inTransaction('BEGIN IMMEDIATE', () => fn(this.executor)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Finish what was asked for before close; a group may queue another for the transactions it had no room for.
    await this.starting;
    for (let q = this.queue; ; q = this.queue) {
      await q.catch(() => undefined);
      if (q === this.queue) break;
    }
    this.closed = true;
    await this.reader?.close();
    this.db.close();
  }

  private readConnection(): Connection | undefined {
    if (this.reader !== undefined) return this.reader;
    if (this.path === ':memory:' || this.path === '') return undefined;
    this.reader = Connection.open(this.path, this.timeout);
    return this.reader;
  }

  private async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of MIGRATIONS) {
      await this.serialise(() => {
        this.begin('BEGIN IMMEDIATE');
        try {
          const done = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
          if (!done) {
            this.db.exec(m.sqlite);
            this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
          }
          this.db.exec('COMMIT');
        } catch (e) {
          this.rollback();
          throw new CustodyError('STORE_ERROR', `migration ${m.version} (${m.name}) failed: ${(e as Error).message}`, { cause: e });
        }
        return Promise.resolve();
      });
    }
  }

  /**
   * One group commit: BEGIN IMMEDIATE, every waiting write transaction (and
   * those that arrive meanwhile, up to MAX_GROUP) in its own savepoint, then one
   * COMMIT; callers are settled after it. See the class comment.
   */
  private async runGroup(): Promise<void> {
    this.groupQueued = false;
    if (this.waiting.length === 0) return;
    if (this.closed) {
      for (const job of this.waiting.splice(0)) job.reject(new CustodyError('STORE_ERROR', 'the store is closed'));
      return;
    }
    try {
      this.begin('BEGIN IMMEDIATE');
    } catch (e) {
      // Every waiting caller would have waited for the same lock: they fail alike.
      for (const job of this.waiting.splice(0)) job.reject(e);
      return;
    }
    const done: { job: WriteJob; value: unknown }[] = [];
    let taken = 0;
    while (this.waiting.length > 0 && taken < MAX_GROUP) {
      const job = this.waiting.shift() as WriteJob;
      taken++;
      let value: unknown;
      // The first member to succeed has nobody's work beneath it to protect: it
      // runs bare, as a lone transaction did before grouping (a savepoint costs
      // two statements, a tenth of a small commit), and a failure rolls the
      // whole transaction back. The rest go to the next group.
      const bare = done.length === 0;
      try {
        if (!bare) this.db.exec('SAVEPOINT member');
        value = await job.fn(bindTx(this.executor));
        if (!bare) this.db.exec('RELEASE member');
      } catch (e) {
        const error = e instanceof CustodyError ? e : mapSqliteError(e);
        if (bare) {
          this.rollback();
          job.reject(error);
          this.requeueRest();
          return;
        }
        if (!this.db.isTransaction) {
          this.rollbackCount++;
          // SQLite abandoned the whole transaction (I/O error, full disk): the earlier members are gone with it.
          job.reject(error);
          for (const d of done.splice(0)) d.job.reject(new CustodyError('STORE_ERROR', `the transaction was rolled back with another in its group commit: ${error.message}`, { cause: error }));
          this.requeueRest();
          return;
        }
        try {
          this.rollbackCount++;
          this.db.exec('ROLLBACK TO member');
          this.db.exec('RELEASE member');
        } catch (undo) {
          job.reject(error);
          this.abandon(done, mapSqliteError(undo));
          this.requeueRest();
          return;
        }
        job.reject(error);
        continue;
      }
      done.push({ job, value });
    }
    try {
      this.db.exec('COMMIT');
    } catch (e) {
      this.abandon(done, mapSqliteError(e));
      this.requeueRest();
      return;
    }
    this.stats.commits++;
    this.stats.transactions += done.length;
    for (const d of done) d.job.resolve(d.value);
    this.requeueRest();
  }

  /** Rolls the open transaction back and fails the members that had succeeded in it. */
  private abandon(done: { job: WriteJob }[], error: CustodyError): void {
    this.rollback();
    for (const d of done) d.job.reject(error);
  }

  /** Transactions beyond MAX_GROUP (or after a failed group) go to the next group. */
  private requeueRest(): void {
    if (this.waiting.length > 0 && !this.groupQueued) {
      this.groupQueued = true;
      void this.serialise(() => this.runGroup());
    }
  }

  private async inTransaction<T>(begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) throw new CustodyError('STORE_ERROR', 'the store is closed');
    return transact(this.db, this.executor, begin, fn, () => this.rollbackCount++);
  }

  private begin(sql: string): void {
    beginOn(this.db, sql);
  }

  private rollback(): void {
    rollbackOn(this.db, () => this.rollbackCount++);
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** The read connection: query_only for good, its own statements and queue, one read transaction at a time. */
class Connection {
  private readonly executor: SqlExecutor;
  private queue: Promise<unknown> = Promise.resolve();
  private rollbackCount = 0;

  private readonly db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
    this.executor = executorOn(db, () => this.rollbackCount);
  }

  static open(path: string, timeout: number): Connection {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout });
      // A write through this connection fails as one inside a READ ONLY transaction does on PostgreSQL.
      db.exec('PRAGMA query_only = ON');
    } catch (e) {
      throw new CustodyError('STORE_ERROR', `cannot open the database for reading: ${(e as Error).message}`, { cause: e });
    }
    return new Connection(db);
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = this.queue.then(() => transact(this.db, this.executor, 'BEGIN', fn, () => this.rollbackCount++));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }
}

/**
 * One transaction on a connection: `begin`, `fn` on fresh repositories (so
 * anything they cache lives exactly as long as the transaction), COMMIT. On
 * any failure it is rolled back and `rolledBack` counted, so the connection's
 * caches trust nothing read in it.
 */
async function transact<T>(db: DatabaseSync, executor: SqlExecutor, begin: string, fn: (tx: Tx) => Promise<T>, rolledBack: () => void): Promise<T> {
  beginOn(db, begin);
  let result: T;
  try {
    result = await fn(bindTx(executor));
  } catch (e) {
    rollbackOn(db, rolledBack);
    throw e instanceof CustodyError ? e : mapSqliteError(e);
  }
  try {
    db.exec('COMMIT');
  } catch (e) {
    rollbackOn(db, rolledBack);
    throw mapSqliteError(e);
  }
  return result;
}

function beginOn(db: DatabaseSync, sql: string): void {
  try {
    db.exec(sql);
  } catch (e) {
    throw mapSqliteError(e);
  }
}

function rollbackOn(db: DatabaseSync, rolledBack: () => void): void {
  rolledBack();
  try {
    if (db.isTransaction) db.exec('ROLLBACK');
  } catch {
    // The transaction is already gone (SQLite rolls back on some errors by itself).
  }
}

/**
 * How a connection commits (the benches' raw baselines use the same):
 * - `synchronous = FULL` fsyncs the WAL at every commit: an acknowledged write
 *   survives power loss.
 * - SQLite copies the WAL back into the database (a checkpoint) inside the
 *   COMMIT that takes the WAL past `wal_autocheckpoint` pages. At its default
 *   of 1,000 pages (4 MiB) that was a third of all COMMIT time under load: the
 *   hot pages (the log's and the promotions' last leaves, the header page) are
 *   copied and fsynced once per checkpoint however often they were rewritten.
 *   4,000 pages (16 MiB) cut COMMIT time per promotion by 13–20% (bench/README),
 *   at the price of a longer pause (~25 ms) once every ~1,000 promotions.
 */
export function commitSettings(db: DatabaseSync): void {
  db.exec('PRAGMA synchronous = FULL');
  db.exec(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
}

const WAL_AUTOCHECKPOINT_PAGES = 4000;

/**
 * Puts the database in WAL mode (once per database file: the mode persists).
 * Two processes opening a database nobody has opened yet can both hold a read
 * lock while each asks to upgrade it; SQLite then answers one of them BUSY at
 * once, without its busy handler, to avoid a deadlock. That one waits a little
 * and asks again, up to the busy timeout.
 */
async function walMode(db: DatabaseSync, deadline: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      db.exec('PRAGMA journal_mode = WAL');
      return;
    } catch (e) {
      const code = (e as { errcode?: number }).errcode;
      // SQLITE_BUSY and SQLITE_LOCKED, with or without an extended code.
      if (code === undefined || ((code & 0xff) !== 5 && (code & 0xff) !== 6) || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(100, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random())));
    }
  }
}

/** The repositories' executor on one connection: its prepared statements cached by text, errors coded at the statement. */
function executorOn(db: DatabaseSync, rollbacks: () => number): SqlExecutor {
  const statements = new Map<string, StatementSync>();
  const stmt = (sql: string): StatementSync => {
    let st = statements.get(sql);
    if (!st) {
      st = db.prepare(sql);
      statements.set(sql, st);
    }
    return st;
  };
  return {
    dialect: 'sqlite',
    all: (sql, params) => coded(() => stmt(sql).all(...toParams(params)) as never[]),
    get: (sql, params) => coded(() => stmt(sql).get(...toParams(params)) as never),
    run: (sql, params): Promise<RunResult> => coded(() => ({ changes: Number(stmt(sql).run(...toParams(params)).changes) })),
    rollbacks,
  };
}

function toParams(params: readonly SqlValue[] | undefined): SqlValue[] {
  return params ? [...params] : [];
}

function coded<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(mapSqliteError(e));
  }
}

function mapSqliteError(e: unknown): CustodyError {
  if (e instanceof CustodyError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const unique = /^UNIQUE constraint failed: (.+)$/.exec(message);
  if (unique) {
    const qualified = (unique[1] ?? '').split(/,\s*/);
    const table = qualified[0]?.split('.')[0] ?? 'unknown';
    const columns = qualified.map((c) => c.slice(c.indexOf('.') + 1));
    return new CustodyError('STORE_ERROR', `a row with the same ${columns.join(', ')} already exists in ${table}`, {
      cause: e,
      details: { violation: 'unique', table, columns },
    });
  }
  if (/SQLITE_BUSY|database is locked/i.test(message)) {
    return new CustodyError('STORE_BUSY', 'the workspace database is busy (another process holds the write lock)', {
      cause: e,
      hint: 'retry; if it persists, look for a stuck custody process',
    });
  }
  return new CustodyError('STORE_ERROR', message, { cause: e });
}
