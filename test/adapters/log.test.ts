import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../src/adapters/store-sqlite.ts';
import { MIGRATIONS } from '../../src/adapters/sql/migrations.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import type { LogEntryInput } from '../../src/core/ports.ts';
import { entryLeaf } from '../../src/core/tlog/index.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';
import { recomputed } from '../contract/samples.ts';

// The contract every store keeps is in test/contract/tlog.test.ts; these are SQLite's own cases.

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function entry(i: number, subject?: string): LogEntryInput {
  return { type: 'test.appended', actor: 'tester@example.com', time: '2026-01-01T00:00:00.000Z', ...(subject === undefined ? {} : { subject }), payload: { i } };
}

async function openStore(file?: string): Promise<{ store: SqliteStore; file: string }> {
  const f = file ?? join(await tempDir(), 'custody.db');
  return { store: await SqliteStore.open(f), file: f };
}

describe('log repository (SQLite specifics)', () => {
  it('refuses to append to a tree whose stored frontier was removed', async () => {
    const { store, file } = await openStore();
    await store.transaction(async (tx) => {
      for (let i = 0; i < 4; i++) await tx.log.append(entry(i));
    });
    await store.close();
    const raw = new DatabaseSync(file);
    raw.exec('UPDATE log_entries SET nodes = NULL WHERE idx = 3'); // the subtree [0, 4) lives in the row of leaf 3
    raw.close();
    const { store: again } = await openStore(file);
    await rejectsWithCode(() => again.transaction((tx) => tx.log.append(entry(4))), 'LOG_TAMPERED');
    assert.equal(await again.read((tx) => tx.log.size()), 4, 'nothing was appended');
    await again.close();
  });

  it('builds the tree for entries written before it was stored (schema version 2), once', async () => {
    const file = join(await tempDir(), 'old.db');
    const raw = new DatabaseSync(file);
    raw.exec('PRAGMA journal_mode = WAL');
    raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
      raw.exec(m.sqlite);
      raw.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, '2026-01-01T00:00:00.000Z');
    }
    const insert = raw.prepare('INSERT INTO log_entries (idx, id, type, actor, time, subject, body, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const bodies: string[] = [];
    for (let i = 0; i < 13; i++) {
      const e = entry(i, i % 2 ? `sha256:${'b'.repeat(64)}` : undefined);
      const body = canonicalJson({ index: i, ...e });
      bodies.push(body);
      insert.run(i, `old-${i}`, e.type, e.actor, e.time, e.subject ?? null, body, entryLeaf(body));
    }
    raw.close();
    const { store } = await openStore(file);
    // Reads work before any append, and the tree is the one the bodies make.
    const { root } = await recomputed(store);
    assert.equal(hex(await store.read((tx) => tx.log.root())), hex(root));
    assert.deepEqual((await store.read((tx) => tx.log.bySubject(`sha256:${'b'.repeat(64)}`))).map((e) => e.index), [1, 3, 5, 7, 9, 11]);
    await store.transaction((tx) => tx.log.append(entry(13)));
    const after = await recomputed(store);
    assert.equal(after.size, 14);
    assert.equal(hex(await store.read((tx) => tx.log.root())), hex(after.root));
    assert.equal((await store.read((tx) => tx.log.byIndex(3)))?.body, bodies[3]);
    await store.close();
  });
});
