/** The log repository's contract, on every store: ordering, index continuity, exact bytes. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { entryBody, entryId, INDEX_BLOCK } from '../../src/adapters/sql/log.ts';
import { CustodyError } from '../../src/core/errors.ts';
import type { LogEntryInput } from '../../src/core/ports.ts';
import { leafHash } from '../../src/core/tlog/hash.ts';
import { forEachStore } from './stores.ts';

function input(n: number, subject = `sha256:${n}`): LogEntryInput {
  return { type: 'artifact.added', actor: 'builder@example.com', time: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(), subject, payload: { n, name: 'pkg:npm/app' } };
}

forEachStore((h) => {
  it('appends at consecutive indexes from 0, with the body, id and leaf hash of each', async () => {
    const { store } = await h.fresh();
    const appended = await store.transaction(async (tx) => [await tx.log.append(input(0)), await tx.log.append(input(1))]);
    appended.push(await store.transaction((tx) => tx.log.append(input(2))));
    assert.deepEqual(appended.map((e) => e.index), [0, 1, 2]);
    for (const e of appended) {
      assert.equal(e.body, entryBody(e.index, input(e.index)));
      assert.equal((JSON.parse(e.body) as { index: number }).index, e.index);
      assert.equal(e.id, entryId(e.body));
      assert.equal(e.leafHash, Buffer.from(leafHash(Buffer.from(e.body, 'utf8'))).toString('hex'));
    }
    assert.equal(await store.read((tx) => tx.log.size()), 3);
  });

  it('reads back exactly what was appended, by index, by id, by range and by subject', async () => {
    const { store } = await h.fresh();
    const noSubject: LogEntryInput = { type: 'policy.published', actor: 'admin@example.com', time: '2025-01-01T00:00:00.000Z', payload: { env: 'prod', nested: { list: [1, 'two', null, true], unicode: 'ünï 🔥' } } };
    const appended = await store.transaction(async (tx) => [
      await tx.log.append(input(0, 'sha256:a')),
      await tx.log.append(noSubject),
      await tx.log.append(input(2, 'sha256:b')),
      await tx.log.append(input(3, 'sha256:a')),
    ]);
    await store.read(async (tx) => {
      for (const e of appended) {
        assert.deepEqual(await tx.log.byIndex(e.index), e);
        assert.deepEqual(await tx.log.byId(e.id), e);
      }
      assert.equal('subject' in ((await tx.log.byIndex(1)) ?? {}), false);
      assert.deepEqual(await tx.log.range(0, 100), appended);
      assert.deepEqual(await tx.log.range(1, 2), appended.slice(1, 3));
      assert.deepEqual(await tx.log.range(4, 10), []);
      assert.deepEqual((await tx.log.bySubject('sha256:a')).map((e) => e.index), [0, 3]);
      assert.deepEqual(await tx.log.bySubject('sha256:none'), []);
      assert.equal(await tx.log.byIndex(4), undefined);
      assert.equal(await tx.log.byIndex(-1), undefined);
      assert.equal(await tx.log.byId('0'.repeat(32)), undefined);
    });
  });

  it('finds a subject\'s entries on either side of a subject-index block, after rollbacks, from another connection', async () => {
    // Entries join the subject index a block at a time; the last block is read by primary key.
    const { store, open } = await h.fresh();
    const subjects = ['sha256:a', 'sha256:b', 'sha256:c'];
    const want = new Map<string, number[]>(subjects.map((s) => [s, []]));
    let next = 0;
    const appendOne = async (tx: Parameters<Parameters<typeof store.transaction>[0]>[0]) => {
      const subject = subjects[(next * 7) % 3]!;
      const e = await tx.log.append(input(next, subject));
      want.get(subject)!.push(e.index);
      next++;
    };
    const check = async (s: typeof store, label: string) => {
      await s.read(async (tx) => {
        for (const subject of subjects) assert.deepEqual((await tx.log.bySubject(subject)).map((e) => e.index), want.get(subject), `${label}: ${subject} at size ${next}`);
      });
    };
    // Single commits up to just before a block ends, one to end it, one past it.
    for (let i = 0; i < INDEX_BLOCK - 1; i++) await store.transaction(appendOne);
    await check(store, 'last block incomplete');
    await store.transaction(appendOne);
    await check(store, 'block just completed');
    await store.transaction(appendOne);
    await check(store, 'one past a block');
    // A transaction that crosses a block end and rolls back changes nothing, in the index or out of it.
    const before = next;
    await assert.rejects(
      store.transaction(async (tx) => {
        for (let i = 0; i < INDEX_BLOCK; i++) await tx.log.append(input(1000 + i, 'sha256:a'));
        throw new CustodyError('INPUT_INVALID', 'refused');
      }),
    );
    await check(store, 'after a rollback across a block end');
    // A batch that crosses two block ends, in one transaction, seen inside it and from another connection.
    await store.transaction(async (tx) => {
      for (let i = 0; i < 2 * INDEX_BLOCK + 5; i++) await appendOne(tx);
      assert.deepEqual((await tx.log.bySubject('sha256:b')).map((e) => e.index), want.get('sha256:b'));
    });
    assert.equal(next, before + 2 * INDEX_BLOCK + 5);
    await check(await open(), 'another connection');
    await check(store, 'the writer');
  });

  it('leaves no gap when a transaction that appended rolls back', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.log.append(input(0)));
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.log.append(input(1));
        await tx.log.append(input(2));
        throw new CustodyError('INPUT_INVALID', 'refused');
      }),
    );
    const next = await store.transaction((tx) => tx.log.append(input(3)));
    assert.equal(next.index, 1);
    assert.deepEqual((await store.read((tx) => tx.log.range(0, 10))).map((e) => e.index), [0, 1]);
  });

  it('keeps indexes continuous when two connections append in turn', async () => {
    const { store, open } = await h.fresh();
    const other = await open();
    const indexes: number[] = [];
    for (let i = 0; i < 10; i++) indexes.push((await (i % 2 ? other : store).transaction((tx) => tx.log.append(input(i)))).index);
    assert.deepEqual(indexes, Array.from({ length: 10 }, (_, i) => i));
    const entries = await other.read((tx) => tx.log.range(0, 100));
    assert.deepEqual(entries.map((e) => (JSON.parse(e.body) as { payload: { n: number } }).payload.n), indexes);
  });

  it('keeps the order of concurrent appends in one process, each transaction contiguous', async () => {
    const { store } = await h.fresh();
    const batches = await Promise.all(
      Array.from({ length: 8 }, (_, b) =>
        store.transaction(async (tx) => {
          const first = await tx.log.append(input(b * 10));
          await new Promise((r) => setImmediate(r));
          const second = await tx.log.append(input(b * 10 + 1));
          return [first.index, second.index];
        }),
      ),
    );
    for (const [a, b] of batches) assert.equal(b, (a ?? -2) + 1);
    assert.deepEqual(batches.flat().sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
  });

  it('stores the leaf hash as 32 raw bytes', async () => {
    const { store } = await h.fresh();
    const e = await store.transaction((tx) => tx.log.append(input(0)));
    const raw = await store.withSql((db) => db.get<{ leaf_hash: unknown }>('SELECT leaf_hash FROM log_entries WHERE idx = ?', [0]));
    assert.ok(raw?.leaf_hash instanceof Uint8Array);
    assert.equal(raw.leaf_hash.length, 32);
    assert.equal(Buffer.from(raw.leaf_hash).toString('hex'), e.leafHash);
  });
});
