/**
 * What only the SQLite store does (the shared contract is test/contract/store.test.ts):
 * group commit, and reads on a connection of their own.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS } from '../../src/adapters/sql/migrations.ts';
import { commitSettings, SqliteStore } from '../../src/adapters/store-sqlite.ts';
import { tempDir } from '../helpers.ts';

const entry = (n: number) => ({ type: 'test.entry', actor: 'tester@example.com', time: '2025-01-01T00:00:00.000Z', subject: `s${n}`, payload: { n } });

describe('SqliteStore', () => {
  const stores: SqliteStore[] = [];
  after(async () => {
    for (const s of stores) await s.close();
  });
  const fresh = async (): Promise<SqliteStore> => {
    const s = await SqliteStore.open(join(await tempDir('custody-sqlite-'), 'custody.db'));
    stores.push(s);
    return s;
  };

  it('commits with synchronous=FULL and leaves the WAL to grow to 4,000 pages before a checkpoint copies it back', async () => {
    const db = new DatabaseSync(':memory:');
    commitSettings(db);
    assert.equal(db.prepare('PRAGMA synchronous').get()?.['synchronous'], 2);
    assert.equal(db.prepare('PRAGMA wal_autocheckpoint').get()?.['wal_autocheckpoint'], 4000);
    db.close();
    // On the store's own connection: ~3,000 pages in 30 commits. A checkpoint at SQLite's default of 1,000 pages
    // would restart the WAL from its start, leaving the file near 4 MiB; here nothing is copied back yet.
    const path = join(await tempDir('custody-sqlite-'), 'custody.db');
    const store = await SqliteStore.open(path);
    stores.push(store);
    const big = 'x'.repeat(40_000);
    for (let t = 0; t < 30; t++) {
      await store.transaction(async (tx) => {
        for (let i = 0; i < 10; i++) await tx.log.append({ ...entry(t * 10 + i), payload: { n: t * 10 + i, big } });
      });
    }
    const wal = statSync(`${path}-wal`).size;
    assert.ok(wal > 2000 * 4096, `the WAL is ${wal} bytes`);
  });

  it('commits a lone transaction by itself', async () => {
    const store = await fresh();
    const before = { ...store.stats };
    await store.transaction((tx) => tx.log.append(entry(0)));
    assert.deepEqual(store.stats, { transactions: before.transactions + 1, commits: before.commits + 1 });
  });

  it('commits a lone caller\'s transaction at once, without waiting for a turn of the event loop', async () => {
    const store = await fresh();
    const order: string[] = [];
    setImmediate(() => order.push('next turn'));
    await store.transaction((tx) => tx.log.append(entry(0)));
    order.push('committed');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['committed', 'next turn']);
  });

  it('commits together, while a concurrent span is open, the transactions asked for by callers woken in one turn of the event loop', async () => {
    const store = await fresh();
    const before = { ...store.stats };
    const leave = [store.concurrent()];
    // Eight callbacks of one turn, as worker results or socket reads delivered together are.
    const asked = await new Promise<Promise<number>[]>((resolve) => {
      const out: Promise<number>[] = [];
      for (let i = 0; i < 8; i++) {
        setImmediate(() => {
          out.push(store.transaction(async (tx) => (await tx.log.append(entry(i))).index));
          if (out.length === 8) resolve(out);
        });
      }
    });
    const indexes = await Promise.all(asked);
    for (const l of leave) l();
    assert.deepEqual([...indexes].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(store.stats.transactions - before.transactions, 8);
    assert.equal(store.stats.commits - before.commits, 1, 'one COMMIT, one fsync, for all eight');
    assert.equal(await store.read((tx) => tx.log.size()), 8);
  });

  it('waits for the next turn only while a concurrent span is open', async () => {
    const store = await fresh();
    const orderWith = async (): Promise<string[]> => {
      const order: string[] = [];
      setImmediate(() => order.push('next turn'));
      await store.transaction((tx) => tx.log.append(entry(order.length)));
      order.push('committed');
      await new Promise((r) => setImmediate(r));
      return order;
    };
    const leave = store.concurrent();
    assert.deepEqual(await orderWith(), ['next turn', 'committed']);
    leave();
    assert.deepEqual(await orderWith(), ['committed', 'next turn']);
  });

  it('keeps a failing member of a group to itself: the others commit, it leaves nothing', async () => {
    const store = await fresh();
    const leave = [store.concurrent(), store.concurrent()];
    // Leaving twice counts once: one span is still open.
    leave[1]!();
    leave[1]!();
    const asked = await new Promise<Promise<unknown>[]>((resolve) => {
      const out: Promise<unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        setImmediate(() => {
          out.push(
            store.transaction(async (tx) => {
              await tx.log.append(entry(i));
              if (i === 2) throw new RangeError('member 2 fails');
            }),
          );
          if (out.length === 4) resolve(out);
        });
      }
    });
    const settled = await Promise.allSettled(asked);
    for (const l of leave) l();
    assert.equal(store.stats.commits, 1, 'the four were one group');
    assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const bodies = await store.read(async (tx) => (await tx.log.range(0, 10)).map((e) => (e.payload as { n: number }).n));
    assert.deepEqual(bodies, [0, 1, 3]);
  });

  it('reads on its own connection: a read made while a write is open does not see it, one made after its commit does', async () => {
    const store = await fresh();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let appended!: () => void;
    const didAppend = new Promise<void>((r) => (appended = r));
    const writing = store.transaction(async (tx) => {
      await tx.log.append(entry(0));
      appended();
      await held;
    });
    await didAppend;
    assert.equal(await store.read((tx) => tx.log.size()), 0);
    release();
    await writing;
    assert.equal(await store.read((tx) => tx.log.size()), 1);
  });

  it('moves the evidence subject index of a database made before migration 31 into one B-tree, keeping every entry', async () => {
    const path = join(await tempDir('custody-sqlite-'), 'custody.db');
    // The schema as it stood before 31, with a piece of evidence about two subjects.
    const old = new DatabaseSync(path);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of MIGRATIONS.filter((m) => m.version !== 31)) {
      old.exec(m.sqlite);
      old.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, '2026-01-01T00:00:00.000Z');
    }
    assert.ok(old.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'evidence_subjects_type'").get(), 'the old schema has the second index');
    const digest = `sha256:${'e'.repeat(64)}`;
    const subjects = [`sha256:${'a'.repeat(64)}`, `sha512:${'a'.repeat(128)}`];
    old
      .prepare('INSERT INTO evidence (digest, kind, format, media_type, predicate_type, signers, signed_at, stored_at, stored_by, source, expect, subjects, size, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(digest, 'attestation', 'bundle', null, 'https://slsa.dev/provenance/v1', '[]', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'ci', 'attested', null, JSON.stringify(subjects), 2, '{}');
    for (const s of subjects) old.prepare('INSERT INTO evidence_subjects (subject, evidence, predicate_type) VALUES (?, ?, ?)').run(s, digest, 'https://slsa.dev/provenance/v1');
    old.close();

    const store = await SqliteStore.open(path);
    stores.push(store);
    const schema = store.raw.prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name = 'evidence_subjects'").all() as { name: string; sql: string | null }[];
    // The primary key is the table itself: no second B-tree, no other index.
    assert.deepEqual(schema.map((r) => r.name), ['evidence_subjects']);
    assert.match(schema.find((r) => r.name === 'evidence_subjects')?.sql ?? '', /WITHOUT ROWID/);
    for (const s of subjects) {
      assert.deepEqual(await store.read((tx) => tx.evidence.digestsForSubjects([s])), [digest]);
      assert.deepEqual((await store.read((tx) => tx.evidence.forSubjects([s], 'https://slsa.dev/provenance/v1'))).map((e) => e.digest), [digest]);
    }
    assert.deepEqual(await store.read((tx) => tx.evidence.forSubjects([subjects[0]!], 'https://in-toto.io/attestation/vulns/v0.1')), []);
  });
});
