/**
 * Several processes appending to one store at once end with one gap-free,
 * ordered log and no lost or failed writes: on PostgreSQL (several pools, as
 * several servers would have) and on one SQLite workspace (two CLI processes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { toInt } from '../../src/adapters/sql/executor.ts';
import { entryBody } from '../../src/adapters/sql/log.ts';
import { MIGRATIONS } from '../../src/adapters/sql/migrations.ts';
import { leafHash } from '../../src/core/tlog/hash.ts';
import { HARNESSES, openStore, type StoreLocation } from './stores.ts';

const WORKER = join(import.meta.dirname, 'append-worker.ts');

interface WorkerResult {
  worker: number;
  indexes: number[];
  errors: string[];
}

/** Starts the workers, lets them all open (and migrate) at once, then releases them together. */
async function runWorkers(location: StoreLocation, workers: number, count: number): Promise<WorkerResult[]> {
  const children = Array.from({ length: workers }, (_, w) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(location), String(w), String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const check = () => (out.startsWith('ready\n') ? resolve() : undefined);
      child.stdout.on('data', check);
      child.on('close', () => reject(new Error(`worker ${w} exited before it was ready: ${out} ${err}`)));
    });
    const done = new Promise<WorkerResult>((resolve, reject) =>
      child.on('close', (code) => {
        const last = out.trim().split('\n').at(-1) ?? '';
        try {
          resolve(JSON.parse(last) as WorkerResult);
        } catch {
          reject(new Error(`worker ${w} exited ${code}: ${out} ${err}`));
        }
      }),
    );
    // Rejections are awaited below; this only keeps a killed sibling's from going unhandled.
    ready.catch(() => undefined);
    done.catch(() => undefined);
    return { child, ready, done };
  });
  // A worker that fails to start must not leave the others waiting for "go" forever.
  const timer = setTimeout(() => children.forEach((c) => c.child.kill('SIGKILL')), 60_000);
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    return await Promise.all(children.map((c) => c.done));
  } catch (e) {
    for (const c of children) c.child.kill('SIGKILL');
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function assertGapFreeLog(location: StoreLocation, results: WorkerResult[], count: number): Promise<void> {
  for (const r of results) assert.deepEqual(r.errors, [], `worker ${r.worker} saw errors`);
  const total = results.length * count;
  const store = await openStore(location);
  const entries = await store.read((tx) => tx.log.range(0, total + 10));
  assert.equal(entries.length, total, 'no lost and no extra writes');
  assert.equal(await store.read((tx) => tx.log.size()), total);
  const next = new Map<number, number>();
  for (const [i, e] of entries.entries()) {
    assert.equal(e.index, i, 'indexes are 0..n-1 with no gap');
    const payload = e.payload as { worker: number; seq: number };
    // Each worker's entries appear in the order it appended them, none missing.
    assert.equal(payload.seq, next.get(payload.worker) ?? 0, `worker ${payload.worker} in order at index ${i}`);
    next.set(payload.worker, payload.seq + 1);
    assert.equal(e.body, entryBody(i, e), 'the body commits to its own index');
    assert.equal(e.leafHash, Buffer.from(leafHash(Buffer.from(e.body))).toString('hex'));
  }
  for (const r of results) {
    assert.equal(next.get(r.worker), count);
    // What each worker was told matches where its entries ended up.
    assert.deepEqual(r.indexes, entries.filter((e) => (e.payload as { worker: number }).worker === r.worker).map((e) => e.index));
  }
  const versions = await store.withSql(async (db) => (await db.all<{ version: unknown }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => toInt(r.version)));
  assert.deepEqual(versions, MIGRATIONS.map((m) => m.version), 'migrated exactly once');
}

const postgres = HARNESSES.find((h) => h.name === 'postgres')!;
const sqlite = HARNESSES.find((h) => h.name === 'sqlite')!;

describe('concurrent writers in separate processes', () => {
  it('postgres: 4 processes migrate a fresh database together and append 4 × 60 entries: gap-free, ordered, none lost', async () => {
    const location = await postgres.location();
    const results = await runWorkers(location, 4, 60);
    await assertGapFreeLog(location, results, 60);
  });

  it('sqlite: 2 processes on one workspace database append 2 × 100 entries with no SQLITE_BUSY reaching them', async () => {
    const location = await sqlite.location();
    const results = await runWorkers(location, 2, 100);
    await assertGapFreeLog(location, results, 100);
  });
});
