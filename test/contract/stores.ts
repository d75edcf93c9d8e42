/**
 * The shared contract harness: one behavioural suite for the Store port and
 * every repository, run against each store Custody ships. When you add a
 * repository, add its contract test here as `test/contract/<name>.test.ts`:
 *
 *   forEachStore((h) => {
 *     it('does the thing', async () => {
 *       const { store } = await h.fresh();
 *       await store.transaction((tx) => tx.things.insert(…));
 *     });
 *   });
 *
 * SQLite gets a new database file per `fresh()`. PostgreSQL gets one throwaway
 * database per test file (random name, dropped when the file ends) and a new
 * schema in it per `fresh()`. If PostgreSQL is unreachable, the PostgreSQL
 * tests fail with a message saying how to start it; they never skip.
 */
import { join } from 'node:path';
import { after, afterEach, describe } from 'node:test';
import { PostgresStore, type PostgresStoreOptions } from '../../src/adapters/store-postgres.ts';
import { SqliteStore, type SqliteStoreOptions } from '../../src/adapters/store-sqlite.ts';
import type { SqlExecutor } from '../../src/adapters/sql/executor.ts';
import type { Store } from '../../src/core/ports.ts';
import { createTempDatabase, type TempDatabase } from '../fixtures/postgres.ts';
import { tempDir } from '../helpers.ts';

/** Both stores also run raw SQL in a write transaction, for tests of the value mapping. */
export type SqlStore = Store & { withSql<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T> };

/** Where a store lives, in a form a child process can be given. */
export type StoreLocation = { driver: 'sqlite'; path: string } | { driver: 'postgres'; url: string };

export interface StoreOptions {
  busyTimeoutMs?: number;
  maxConnections?: number;
}

export interface StoreTarget {
  location: StoreLocation;
  /** The first store opened on this database. */
  store: SqlStore;
  /** Another store on the same database: another connection, as another process would have. */
  open: (options?: StoreOptions) => Promise<SqlStore>;
}

export interface StoreHarness {
  readonly name: 'sqlite' | 'postgres';
  /** A new, empty, migrated database. Every store opened on it is closed when the file ends. */
  fresh: (options?: StoreOptions) => Promise<StoreTarget>;
  /** A new, empty database that nobody has opened (so not migrated yet). */
  location: () => Promise<StoreLocation>;
}

const opened: Store[] = [];
let database: Promise<TempDatabase> | undefined;

async function closeOpened(): Promise<void> {
  await Promise.allSettled(opened.splice(0).map((s) => s.close()));
}

after(async () => {
  await closeOpened();
  if (database) await (await database.catch(() => undefined))?.drop();
});

/** The test file's PostgreSQL database, created on first use. */
export function testDatabase(): Promise<TempDatabase> {
  database ??= createTempDatabase();
  return database;
}

/** Opens a store at a location; closed automatically when the test file ends. */
export async function openStore(location: StoreLocation, options: StoreOptions = {}): Promise<SqlStore> {
  let store: SqlStore;
  if (location.driver === 'sqlite') {
    const o: SqliteStoreOptions = options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs };
    store = await SqliteStore.open(location.path, o);
  } else {
    const o: PostgresStoreOptions = { maxConnections: options.maxConnections ?? 4 };
    if (options.busyTimeoutMs !== undefined) o.busyTimeoutMs = options.busyTimeoutMs;
    store = await PostgresStore.open(location.url, o);
  }
  opened.push(store);
  return store;
}

function harness(name: StoreHarness['name'], location: () => Promise<StoreLocation>): StoreHarness {
  return {
    name,
    location,
    async fresh(options = {}) {
      const where = await location();
      const store = await openStore(where, options);
      return { location: where, store, open: (o = options) => openStore(where, o) };
    },
  };
}

export const sqliteHarness = harness('sqlite', async () => ({ driver: 'sqlite', path: join(await tempDir('custody-store-'), 'custody.db') }));
export const postgresHarness = harness('postgres', async () => ({ driver: 'postgres', url: await (await testDatabase()).freshSchema() }));

export const HARNESSES: readonly StoreHarness[] = [sqliteHarness, postgresHarness];

/**
 * Registers the same tests once per store, each in a `describe` named after it.
 * Stores a test opened are closed after it, so connections do not pile up.
 */
export function forEachStore(fn: (h: StoreHarness) => void): void {
  for (const h of HARNESSES) {
    describe(`${h.name} store`, () => {
      afterEach(closeOpened);
      fn(h);
    });
  }
}
