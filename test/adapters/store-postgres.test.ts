/**
 * What only the PostgreSQL store has to get right: migrating once when several
 * servers start together, the cross-server writer lock, lost connections, and
 * never showing the URL's password. The shared behaviour is in test/contract/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ADVISORY_LOCK, PostgresStore, redactor } from '../../src/adapters/store-postgres.ts';
import { MIGRATIONS } from '../../src/adapters/sql/migrations.ts';
import { toInt } from '../../src/adapters/sql/executor.ts';
import { rejectsWithCode } from '../helpers.ts';
import { artifact } from '../contract/samples.ts';
import { openStore, postgresHarness, testDatabase } from '../contract/stores.ts';

const entry = (n: number) => ({ type: 'test.entry', actor: 'tester@example.com', time: '2025-01-01T00:00:00.000Z', payload: { n } });

/** A plain pg session on the store's database: "another server" holding locks behind Custody's back. */
async function session(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function urlOf(): Promise<string> {
  const where = await postgresHarness.location();
  if (where.driver !== 'postgres') throw new TypeError('expected postgres');
  return where.url;
}

describe('PostgresStore', () => {
  it('migrates exactly once when several servers open a fresh database at the same moment', async () => {
    const url = await urlOf();
    const stores = await Promise.all(Array.from({ length: 6 }, () => openStore({ driver: 'postgres', url }, { maxConnections: 2 })));
    const first = stores[0]!;
    const rows = await first.withSql((db) => db.all<{ version: unknown; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version'));
    assert.deepEqual(rows.map((r) => [toInt(r.version), r.name]), MIGRATIONS.map((m) => [m.version, m.name]));
    // Every one of them works against the same tables.
    await Promise.all(stores.map((s, i) => s.transaction((tx) => tx.log.append(entry(i)))));
    assert.equal(await first.read((tx) => tx.log.size()), 6);
  });

  it('makes a writer wait for another server holding the writer lock, then proceeds', async () => {
    const url = await urlOf();
    const store = await openStore({ driver: 'postgres', url });
    const other = await session(url);
    try {
      await other.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.writer]);
      let done = false;
      const writing = store.transaction((tx) => tx.log.append(entry(1))).then((e) => ((done = true), e));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(done, false, 'the writer waits while another server holds the lock');
      // Readers never wait for writers.
      assert.equal(await store.read((tx) => tx.log.size()), 0);
      await other.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.writer]);
      assert.equal((await writing).index, 0);
    } finally {
      await other.end();
    }
  });

  it('gives up with STORE_BUSY after the busy timeout, changing nothing', async () => {
    const url = await urlOf();
    const store = await openStore({ driver: 'postgres', url }, { busyTimeoutMs: 200 });
    const other = await session(url);
    try {
      await other.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.writer]);
      const started = Date.now();
      const e = await rejectsWithCode(() => store.transaction((tx) => tx.artifacts.insert(artifact(1))), 'STORE_BUSY');
      assert.ok(Date.now() - started < 5_000);
      assert.ok(e.hint);
    } finally {
      await other.end();
    }
    assert.deepEqual(await store.read((tx) => tx.artifacts.list()), []);
    // The lock died with the other session: writing works again.
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
  });

  it('releases the writer lock of a server that dies mid-transaction', async () => {
    const url = await urlOf();
    const store = await openStore({ driver: 'postgres', url }, { busyTimeoutMs: 5_000 });
    const dying = await session(url);
    await dying.query('BEGIN');
    await dying.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.writer]);
    await dying.query("INSERT INTO log_entries (idx, body, leaf_hash) VALUES (0, '{}', '\\x00')");
    const writing = store.transaction((tx) => tx.log.append(entry(1)));
    // The process is killed: its socket closes without COMMIT.
    (dying as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const e = await writing;
    assert.equal(e.index, 0, 'the dead server wrote nothing');
    assert.equal(await store.read((tx) => tx.log.size()), 1);
  });

  it('ends a transaction left idle past the timeout, so a hung server cannot hold the writer lock', async () => {
    const url = await urlOf();
    const hung = await PostgresStore.open(url, { idleInTransactionTimeoutMs: 300 });
    const healthy = await openStore({ driver: 'postgres', url }, { busyTimeoutMs: 5_000 });
    try {
      const stuck = hung.transaction(async (tx) => {
        await tx.log.append(entry(1));
        await new Promise((r) => setTimeout(r, 1_500));
        await tx.log.append(entry(2));
      });
      await new Promise((r) => setTimeout(r, 50));
      const other = await healthy.transaction((tx) => tx.log.append(entry(3)));
      const healthyDoneAt = Date.now();
      await rejectsWithCode(() => stuck, 'STORE_ERROR');
      assert.ok(Date.now() - healthyDoneAt > 500, 'the healthy writer went ahead while the hung one still slept');
      assert.equal(other.index, 0, 'the hung transaction committed nothing');
      assert.equal(await healthy.read((tx) => tx.log.size()), 1);
    } finally {
      await hung.close();
    }
  });

  it('reports a connection lost mid-transaction as STORE_ERROR and stays usable', async () => {
    const url = await urlOf();
    const store = await openStore({ driver: 'postgres', url });
    const admin = await session(url);
    try {
      await rejectsWithCode(
        () =>
          store.withSql(async (db) => {
            await db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (998, 'x', 'now')");
            const me = await db.get<{ pid: number }>('SELECT pg_backend_pid() AS pid');
            await admin.query('SELECT pg_terminate_backend($1)', [me?.pid]);
            await db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (997, 'x', 'now')");
          }),
        'STORE_ERROR',
      );
    } finally {
      await admin.end();
    }
    assert.equal(await store.withSql((db) => db.get('SELECT 1 AS x FROM schema_migrations WHERE version >= ?', [997])), undefined);
    assert.equal((await store.transaction((tx) => tx.log.append(entry(3)))).index, 0);
  });

  it('refuses to commit a transaction whose failed read was swallowed', async () => {
    const url = await urlOf();
    const store = await openStore({ driver: 'postgres', url });
    await rejectsWithCode(
      () =>
        store.withSql(async (db) => {
          await db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'x', 'now')");
          await db.get('SELECT 1 / 0 AS boom').catch(() => undefined);
          return 'pretend all is well';
        }),
      'STORE_ERROR',
    );
    const left = await store.withSql((db) => db.get('SELECT version FROM schema_migrations WHERE version = ?', [999]));
    assert.equal(left, undefined);
  });

  it('returns integers beyond 2^53 as bigint rather than rounding them', async () => {
    const store = await openStore({ driver: 'postgres', url: await urlOf() });
    const r = await store.withSql((db) => db.get<{ big: unknown; neg: unknown; frac: unknown }>('SELECT 9007199254740993::bigint AS big, -9007199254740993::numeric AS neg, 1.5::numeric AS frac'));
    assert.deepEqual({ ...r }, { big: 9007199254740993n, neg: -9007199254740993n, frac: 1.5 });
  });

  it('names the URL source, never the URL or its password, when the server is unreachable', async () => {
    const secret = 's3cr3t-P@ss/word';
    const url = `postgresql://custody:${encodeURIComponent(secret)}@127.0.0.1:1/custody`;
    const e = await rejectsWithCode(() => PostgresStore.open(url, { urlSource: '$CUSTODY_DATABASE_URL', connectTimeoutMs: 2_000 }), 'STORE_ERROR');
    const shown = JSON.stringify({ ...e.toJSON(), stack: e.stack });
    assert.match(e.message, /\$CUSTODY_DATABASE_URL/);
    for (const leak of [secret, encodeURIComponent(secret), url]) assert.ok(!shown.includes(leak), `leaked ${leak}: ${shown}`);
  });

  it('reports a wrong password or a missing database as STORE_ERROR, without the password', async () => {
    const secret = 'not-the-password-1234';
    const wrong = await rejectsWithCode(() => PostgresStore.open(`postgresql://custody_nobody:${secret}@127.0.0.1:5432/postgres`, { urlSource: '$DB' }), 'STORE_ERROR');
    assert.ok(!JSON.stringify(wrong.toJSON()).includes(secret), wrong.message);
    assert.match(wrong.message, /\$DB/);
    const db = await testDatabase();
    const missing = db.url().replace(db.name, `${db.name}_missing`);
    await rejectsWithCode(() => PostgresStore.open(missing), 'STORE_ERROR');
  });

  it('refuses a URL that is not postgresql:// with CONFIG_INVALID, without echoing it', async () => {
    for (const bad of ['mysql://u:hunter2@h/db', 'hunter2', '', 'postgresql://u:hunter2@h/db with spaces']) {
      const e = await rejectsWithCode(() => PostgresStore.open(bad, { urlSource: '$X' }), 'CONFIG_INVALID');
      assert.ok(!e.message.includes('hunter2'));
      assert.match(e.message, /\$X/);
    }
  });

  it('masks passwords in any message', () => {
    const redact = redactor('postgresql://app:p%40ss%2Fw0rd@db.internal:5432/custody?sslmode=require');
    assert.equal(redact('failed for p@ss/w0rd and p%40ss%2Fw0rd'), 'failed for *** and ***');
    assert.equal(redact('see postgres://x:other@h/db'), 'see postgres://x:***@h/db');
    assert.equal(redactor('postgresql:///db?host=/run&password=hunter2')('bad hunter2, password=hunter2&x'), 'bad ***, password=***&x');
    assert.equal(redactor('postgresql://app@db/custody')('nothing secret'), 'nothing secret');
  });
});
