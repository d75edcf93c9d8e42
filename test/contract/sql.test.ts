/**
 * The executor's value mapping: repositories written once in portable SQL see
 * the same JavaScript values on every store (numbers, plain Uint8Array bytes,
 * text exactly as stored, null), whatever the driver returns natively.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { SqlExecutor } from '../../src/adapters/sql/executor.ts';
import { forEachStore, type SqlStore } from './stores.ts';

async function withTable<T>(store: SqlStore, fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
  return store.withSql(async (db) => {
    const bytes = db.dialect === 'postgres' ? 'BYTEA' : 'BLOB';
    await db.run(`CREATE TABLE vals (id INTEGER PRIMARY KEY, i BIGINT, b ${bytes}, t TEXT)`);
    return fn(db);
  });
}

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

forEachStore((h) => {
  it('returns BIGINT values as numbers, exactly, for numbers and bigints given', async () => {
    const { store } = await h.fresh();
    const given: (number | bigint)[] = [0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 40n];
    const got = await withTable(store, async (db) => {
      for (const [id, i] of given.entries()) await db.run('INSERT INTO vals (id, i) VALUES (?, ?)', [id, i]);
      return db.all<{ i: unknown }>('SELECT i FROM vals ORDER BY id');
    });
    assert.deepEqual(got.map((r) => r.i), given.map(Number));
    for (const r of got) assert.equal(typeof r.i, 'number');
  });

  it('returns COUNT, SUM, MAX and arithmetic on BIGINT as numbers', async () => {
    const { store } = await h.fresh();
    const r = await withTable(store, async (db) => {
      for (const [id, i] of [5, 7, 2 ** 40].entries()) await db.run('INSERT INTO vals (id, i) VALUES (?, ?)', [id, i]);
      return db.get<Record<string, unknown>>('SELECT COUNT(*) AS n, SUM(i) AS s, MAX(i) AS m, COALESCE(MAX(i) + 1, 0) AS next, MIN(i) * 2 AS twice FROM vals');
    });
    assert.deepEqual({ ...r }, { n: 3, s: 2 ** 40 + 12, m: 2 ** 40, next: 2 ** 40 + 1, twice: 10 });
  });

  it('returns bytes as a plain Uint8Array, every byte value intact', async () => {
    const { store } = await h.fresh();
    const got = await withTable(store, async (db) => {
      await db.run('INSERT INTO vals (id, b) VALUES (?, ?)', [1, ALL_BYTES]);
      await db.run('INSERT INTO vals (id, b) VALUES (?, ?)', [2, Buffer.from('buffer in')]);
      await db.run('INSERT INTO vals (id, b) VALUES (?, ?)', [3, ALL_BYTES.subarray(250, 253)]);
      return db.all<{ b: unknown }>('SELECT b FROM vals ORDER BY id');
    });
    for (const r of got) assert.equal(Object.getPrototypeOf(r.b), Uint8Array.prototype);
    assert.deepEqual(got.map((r) => r.b), [ALL_BYTES, new Uint8Array(Buffer.from('buffer in')), Uint8Array.of(250, 251, 252)]);
  });

  it('returns text exactly, and NULL as null', async () => {
    const { store } = await h.fresh();
    const texts = ['', ' padded ', 'ünïcødé 🔥 \u2028', '{"json":[1,2,{"a":null}]}', "it's a '?' and $1", 'x'.repeat(1024 * 1024)];
    const got = await withTable(store, async (db) => {
      for (const [id, t] of texts.entries()) await db.run('INSERT INTO vals (id, t) VALUES (?, ?)', [id, t]);
      await db.run('INSERT INTO vals (id) VALUES (?)', [99]);
      return db.all<{ t: unknown; i: unknown; b: unknown }>('SELECT t, i, b FROM vals ORDER BY id');
    });
    assert.deepEqual(got.map((r) => r.t), [...texts, null]);
    assert.deepEqual([got.at(-1)?.i, got.at(-1)?.b], [null, null]);
  });

  it('reports rows changed, and undefined for no row', async () => {
    const { store } = await h.fresh();
    await withTable(store, async (db) => {
      for (const id of [1, 2, 3]) await db.run('INSERT INTO vals (id, i) VALUES (?, ?)', [id, id % 2]);
      assert.deepEqual(await db.run('UPDATE vals SET t = ? WHERE i = ?', ['odd', 1]), { changes: 2 });
      assert.deepEqual(await db.run('DELETE FROM vals WHERE id = ?', [42]), { changes: 0 });
      assert.equal(await db.get('SELECT id FROM vals WHERE id = ?', [42]), undefined);
      assert.deepEqual(await db.all('SELECT id FROM vals WHERE id > ?', [10]), []);
    });
  });
});
