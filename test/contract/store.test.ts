/**
 * The Store port's contract: commit, rollback, error codes, isolation and
 * serialisation, the same on every store.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MIGRATIONS } from '../../src/adapters/sql/migrations.ts';
import { toInt } from '../../src/adapters/sql/executor.ts';
import { CustodyError, isUniqueViolation } from '../../src/core/errors.ts';
import { nodeHash } from '../../src/core/tlog/hash.ts';
import { rejectsWithCode } from '../helpers.ts';
import { artifact } from './samples.ts';
import { forEachStore, openStore } from './stores.ts';

const entry = (n: number) => ({ type: 'test.entry', actor: 'tester@example.com', time: '2025-01-01T00:00:00.000Z', subject: `s${n}`, payload: { n } });

/** A promise with its resolve function, to hold one transaction open while another runs. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

forEachStore((h) => {
  it('commits what the transaction wrote and returns its value', async () => {
    const { store, open } = await h.fresh();
    const value = await store.transaction(async (tx) => {
      await tx.artifacts.insert(artifact(1));
      return (await tx.log.append(entry(1))).index;
    });
    assert.equal(value, 0);
    const other = await open();
    assert.equal((await other.read((tx) => tx.artifacts.byDigest(artifact(1).digest)))?.name, 'pkg:npm/app');
    assert.equal(await other.read((tx) => tx.log.size()), 1);
  });

  it('rolls back everything when the transaction throws, and rethrows the same error', async () => {
    const { store } = await h.fresh();
    const refusal = new CustodyError('ARTIFACT_CONFLICT', 'no');
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.artifacts.insert(artifact(1));
        await tx.log.append(entry(1));
        await tx.log.append(entry(2));
        throw refusal;
      }),
      (e) => e === refusal,
    );
    await store.read(async (tx) => {
      assert.equal(await tx.artifacts.byDigest(artifact(1).digest), undefined);
      assert.deepEqual(await tx.artifacts.list(), []);
      assert.equal(await tx.log.size(), 0);
    });
    // The rolled-back entries left no hole: the next append is index 0.
    assert.equal((await store.transaction((tx) => tx.log.append(entry(3)))).index, 0);
  });

  it('turns anything else thrown inside a transaction into STORE_ERROR, keeping the cause', async () => {
    const { store } = await h.fresh();
    const bug = new TypeError('a bug in a use case');
    const e = await rejectsWithCode(
      () =>
        store.transaction(async (tx) => {
          await tx.log.append(entry(1));
          throw bug;
        }),
      'STORE_ERROR',
    );
    assert.equal(e.cause, bug);
    assert.equal(await store.read((tx) => tx.log.size()), 0);
  });

  it('reports a unique violation as STORE_ERROR naming the table and columns, never the values', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    const sameVersion = artifact(2, { version: artifact(1).version });
    const e = await rejectsWithCode(() => store.transaction((tx) => tx.artifacts.insert(sameVersion)), 'STORE_ERROR');
    assert.ok(isUniqueViolation(e, 'artifacts'));
    assert.deepEqual(e.details, { violation: 'unique', table: 'artifacts', columns: ['name', 'version'] });
    assert.ok(!e.message.includes(sameVersion.digest) && !e.message.includes(sameVersion.version), e.message);
    const sameDigest = artifact(1, { version: '9.9.9' });
    const pk = await rejectsWithCode(() => store.transaction((tx) => tx.artifacts.insert(sameDigest)), 'STORE_ERROR');
    assert.deepEqual(pk.details, { violation: 'unique', table: 'artifacts', columns: ['digest'] });
    assert.equal(isUniqueViolation(new CustodyError('STORE_ERROR', 'other')), false);
  });

  it('lets a use case catch a unique violation and carry on: only the failed statement is undone', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    const caught = await store.transaction(async (tx) => {
      await tx.log.append(entry(1));
      let code = '';
      try {
        await tx.artifacts.insert(artifact(1));
      } catch (e) {
        code = isUniqueViolation(e) ? 'duplicate' : 'other';
      }
      await tx.artifacts.insert(artifact(2));
      await tx.log.append(entry(2));
      return code;
    });
    assert.equal(caught, 'duplicate');
    await store.read(async (tx) => {
      assert.equal((await tx.artifacts.list()).length, 2);
      assert.deepEqual((await tx.log.range(0, 10)).map((e) => e.index), [0, 1]);
    });
  });

  it('lets a use case turn a unique violation into its own code, committing nothing', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    await rejectsWithCode(
      () =>
        store.transaction(async (tx) => {
          await tx.log.append(entry(1));
          try {
            await tx.artifacts.insert(artifact(1));
          } catch (e) {
            if (isUniqueViolation(e)) throw new CustodyError('ARTIFACT_CONFLICT', 'already registered', { cause: e });
            throw e;
          }
        }),
      'ARTIFACT_CONFLICT',
    );
    assert.equal(await store.read((tx) => tx.log.size()), 0);
  });

  it('refuses writes inside read() with STORE_ERROR and changes nothing', async () => {
    const { store } = await h.fresh();
    await rejectsWithCode(() => store.read((tx) => tx.artifacts.insert(artifact(1))), 'STORE_ERROR');
    await rejectsWithCode(() => store.read((tx) => tx.log.append(entry(1))), 'STORE_ERROR');
    assert.deepEqual(await store.read((tx) => tx.artifacts.list()), []);
    // The store is still usable for writes afterwards.
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    assert.equal((await store.read((tx) => tx.artifacts.list())).length, 1);
  });

  it('gives read() a stable snapshot while another connection commits', async () => {
    const { store, open } = await h.fresh();
    const writer = await open();
    await writer.transaction((tx) => tx.log.append(entry(0)));
    const seen = await store.read(async (tx) => {
      const before = await tx.log.size();
      await writer.transaction(async (w) => {
        await w.log.append(entry(1));
        await w.artifacts.insert(artifact(1));
      });
      return { before, after: await tx.log.size(), artifact: await tx.artifacts.byDigest(artifact(1).digest) };
    });
    assert.deepEqual(seen, { before: 1, after: 1, artifact: undefined });
    assert.equal(await store.read((tx) => tx.log.size()), 2);
  });

  it('never shows a reader what a writer has not committed yet', async () => {
    const { store, open } = await h.fresh();
    const writer = await open();
    const inserted = gate();
    const checked = gate();
    const writing = writer.transaction(async (tx) => {
      await tx.artifacts.insert(artifact(1));
      await tx.log.append(entry(1));
      inserted.open();
      await checked.wait;
    });
    await inserted.wait;
    try {
      assert.equal(await store.read((tx) => tx.artifacts.byDigest(artifact(1).digest)), undefined);
      assert.equal(await store.read((tx) => tx.log.size()), 0);
    } finally {
      checked.open();
    }
    await writing;
    assert.equal(await store.read((tx) => tx.log.size()), 1);
  });

  it('answers a read() while a write transaction of the same store is open, from the last committed state', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.log.append(entry(0)));
    const appended = gate();
    const checked = gate();
    const writing = store.transaction(async (tx) => {
      await tx.log.append(entry(1));
      appended.open();
      await checked.wait;
    });
    await appended.wait;
    try {
      // A read queued behind the open write would never finish: the write waits for this read's answer.
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new CustodyError('INTERNAL', 'read() waited for the open write transaction')), 5_000).unref());
      assert.equal(await Promise.race([store.read((tx) => tx.log.size()), late]), 1);
    } finally {
      checked.open();
    }
    await writing;
    assert.equal(await store.read((tx) => tx.log.size()), 2);
  });

  it('serialises concurrent transactions: each sees the one before it', async () => {
    const { store } = await h.fresh();
    const n = 20;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.transaction(async (tx) => {
          const size = await tx.log.size();
          // Yield between the read and the write: a non-serialised store would interleave here.
          await new Promise((r) => setTimeout(r, 1));
          const e = await tx.log.append(entry(i));
          assert.equal(e.index, size);
          return e.index;
        }),
      ),
    );
    assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  });

  it('runs reads of one transaction concurrently, each getting its own answer', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      await tx.artifacts.insert(artifact(1));
      await tx.log.append(entry(1));
    });
    const [byDigest, size, list, missing] = await store.transaction((tx) =>
      Promise.all([tx.artifacts.byDigest(artifact(1).digest), tx.log.size(), tx.artifacts.list(), tx.keys.byKeyid('0'.repeat(64))]),
    );
    assert.deepEqual([byDigest?.digest, size, list.length, missing], [artifact(1).digest, 1, 1, undefined]);
    assert.equal(await store.transaction(() => Promise.resolve('no statement at all')), 'no statement at all');
  });

  it('keeps a transaction that fails from blocking the next one', async () => {
    const { store } = await h.fresh();
    const results = await Promise.allSettled([
      store.transaction(async (tx) => {
        await tx.log.append(entry(1));
        throw new CustodyError('INPUT_INVALID', 'refused');
      }),
      store.transaction((tx) => tx.log.append(entry(2))),
      store.read((tx) => tx.log.size()),
    ]);
    assert.equal(results[0].status, 'rejected');
    assert.deepEqual(results[1].status === 'fulfilled' ? results[1].value.index : -1, 0);
  });

  it('keeps concurrent transactions all-or-nothing one by one: the failed ones leave nothing, the log stays gap-free and its root right', async () => {
    // On SQLite, transactions asked for together share one commit (each in a
    // savepoint): a failure in the middle of a group must undo that one alone,
    // including the log's subtree hashes, and never a neighbour.
    const { store, open } = await h.fresh();
    const n = 24;
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.artifacts.insert(artifact(i));
          const first = await tx.log.append(entry(i * 2));
          await tx.log.append(entry(i * 2 + 1));
          if (i % 3 === 1) throw new CustodyError('INPUT_INVALID', `refused ${i}`);
          return first.index;
        }),
      ),
    );
    const kept = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.deepEqual(kept, Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 1));
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as CustodyError).code, 'INPUT_INVALID');
    assert.deepEqual(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])), kept.map((_, k) => k * 2));
    const other = await open();
    await other.read(async (tx) => {
      for (let i = 0; i < n; i++) assert.equal((await tx.artifacts.byDigest(artifact(i).digest)) !== undefined, i % 3 !== 1, `artifact ${i}`);
      assert.equal(await tx.log.size(), kept.length * 2);
      const leaves = await tx.log.leaves(0, 1000);
      assert.deepEqual(leaves.map((l) => (JSON.parse(l.body) as { payload: { n: number } }).payload.n), kept.flatMap((i) => [i * 2, i * 2 + 1]));
      const mth = (hashes: Uint8Array[]): Uint8Array => {
        if (hashes.length === 1) return hashes[0]!;
        let k = 1;
        while (k * 2 < hashes.length) k *= 2;
        return nodeHash(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
      };
      assert.deepEqual(Buffer.from(await tx.log.root()), Buffer.from(mth(leaves.map((l) => Buffer.from(l.leafHash)))));
    });
    // The next append, on either connection, continues the same tree.
    assert.equal((await store.transaction((tx) => tx.log.append(entry(999)))).index, kept.length * 2);
  });

  it('finishes transactions already asked for before close(), then refuses new ones', async () => {
    const { store, location } = await h.fresh();
    const pending = store.transaction(async (tx) => {
      await new Promise((r) => setTimeout(r, 20));
      return (await tx.log.append(entry(1))).index;
    });
    await store.close();
    assert.equal(await pending, 0);
    await rejectsWithCode(() => store.transaction((tx) => tx.log.size()), 'STORE_ERROR');
    await rejectsWithCode(() => store.read((tx) => tx.log.size()), 'STORE_ERROR');
    await store.close(); // twice is fine
    const again = await openStore(location);
    assert.equal(await again.read((tx) => tx.log.size()), 1);
  });

  it('applies every migration once, and opening a migrated database again changes nothing', async () => {
    const { store, open } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    const again = await open();
    const versions = await again.withSql(async (db) => (await db.all<{ version: unknown }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => toInt(r.version)));
    assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
    assert.equal((await again.read((tx) => tx.artifacts.list())).length, 1);
  });
});
