/**
 * bench/store: how fast Custody's stores commit, against the raw driver doing
 * the same inserts, on SQLite and PostgreSQL, in the same run. Method:
 * bench/README.md.
 */
import { ConfigSchema } from '../src/core/config.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { entryBody, subjectKey } from '../src/adapters/sql/log.ts';
import { PostgresStore } from '../src/adapters/store-postgres.ts';
import { commitSettings, SqliteStore } from '../src/adapters/store-sqlite.ts';
import { addArtifact } from '../src/app/artifacts.ts';
import { systemClock, type Context } from '../src/app/workspace.ts';
import type { LogEntryInput, Store } from '../src/core/ports.ts';
import { CompactRange, entryLeaf } from '../src/core/tlog/index.ts';
import { artifact } from '../test/contract/samples.ts';
import { createTempDatabase } from '../test/fixtures/postgres.ts';
import { median, report } from './lib.ts';

const TXNS = Number(process.env['BENCH_TXNS'] ?? 1000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const CONCURRENCY = 8;

// ---------------------------------------------------------------- the rows both contenders write

function logInput(n: number): LogEntryInput {
  return { type: 'bench.committed', actor: 'bench@example.com', time: new Date(Date.UTC(2025, 0, 1) + n).toISOString(), subject: `s${n}`, payload: { n } };
}

/**
 * The log rows Custody writes, in index order (each row carries the subtree
 * hashes its leaf completes, so a maker keeps the tree), precomputed so the raw
 * baseline pays only for the database.
 */
function logRows(): (index: number, e: LogEntryInput) => unknown[] {
  const tree = new CompactRange();
  return (index, e) => {
    const body = entryBody(index, e);
    const leaf = entryLeaf(body);
    const nodes: Uint8Array[] = [];
    tree.append(leaf, (level, _i, h) => {
      if (level > 0) nodes.push(h);
    });
    const s = e.subject === undefined ? undefined : subjectKey(e.subject);
    return [index, body, leaf, nodes.length ? Buffer.concat(nodes) : null, s?.bucket ?? null, s?.key ?? null];
  };
}

function artifactRow(n: number): unknown[] {
  const a = artifact(n, { size: null, stored: false, digests: { sha256: artifact(n).digests.sha256! }, name: 'pkg:oci/bench' });
  return [a.digest, a.name, a.version, a.size, JSON.stringify(a.digests), JSON.stringify(a.labels), null, 0, a.createdAt, a.createdBy];
}

const LOG_INSERT = 'INSERT INTO log_entries (idx, body, leaf_hash, nodes, subject_bucket, subject_key) VALUES (?, ?, ?, ?, ?, ?)';
const ARTIFACT_INSERT = 'INSERT INTO artifacts (digest, name, version, size, digests, labels, source, stored, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
const dollars = (sql: string) => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

// ---------------------------------------------------------------- contenders

interface Contender {
  /** Runs `count` commits starting at sequence number `from`; returns seconds. */
  commits: (from: number, count: number) => Promise<number>;
  /** Registers `count` artifacts by digest (artifact row + log row per transaction). */
  adds: (from: number, count: number) => Promise<number>;
  close: () => Promise<void>;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function custody(store: Store, ctx: Context, concurrency: number): Contender {
  const each = async (from: number, count: number, one: (n: number) => Promise<unknown>) => {
    let next = from;
    const worker = async () => {
      while (next < from + count) await one(next++);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  return {
    commits: (from, count) => timed(() => each(from, count, (n) => store.transaction((tx) => tx.log.append(logInput(n))))),
    adds: (from, count) =>
      timed(() =>
        each(from, count, (n) => addArtifact(ctx, { digest: artifact(n).digest, name: 'pkg:oci/bench', version: artifact(n).version })),
      ),
    close: () => ctx.close(),
  };
}

function rawSqlite(path: string): Contender {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  commitSettings(db);
  const log = db.prepare(LOG_INSERT);
  const art = db.prepare(ARTIFACT_INSERT);
  const logRow = logRows();
  let idx = 0;
  return {
    commits(from, count) {
      const rows = Array.from({ length: count }, (_, i) => logRow(idx + i, logInput(from + i)));
      return timed(() => {
        for (const row of rows) {
          db.exec('BEGIN IMMEDIATE');
          log.run(...(row as never[]));
          db.exec('COMMIT');
          idx++;
        }
        return Promise.resolve();
      });
    },
    adds(from, count) {
      const rows = Array.from({ length: count }, (_, i) => [artifactRow(from + i), logRow(idx + i, logInput(from + i))]);
      return timed(() => {
        for (const [a, l] of rows) {
          db.exec('BEGIN IMMEDIATE');
          art.run(...(a as never[]));
          log.run(...(l as never[]));
          db.exec('COMMIT');
          idx++;
        }
        return Promise.resolve();
      });
    },
    close: () => Promise.resolve(db.close()),
  };
}

function rawPg(url: string, concurrency: number): Contender {
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  const logRow = logRows();
  let idx = 0;
  const each = async <R>(rows: R[], one: (c: pg.PoolClient, row: R) => Promise<void>) => {
    let next = 0;
    const worker = async () => {
      const c = await pool.connect();
      try {
        while (next < rows.length) await one(c, rows[next++]!);
      } finally {
        c.release();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  return {
    commits(from, count) {
      const rows = Array.from({ length: count }, (_, i) => logRow(idx + i, logInput(from + i)));
      idx += count;
      return timed(() =>
        each(rows, async (c, row) => {
          await c.query('BEGIN');
          await c.query(dollars(LOG_INSERT), row);
          await c.query('COMMIT');
        }),
      );
    },
    adds(from, count) {
      const rows = Array.from({ length: count }, (_, i) => [artifactRow(from + i), logRow(idx + i, logInput(from + i))]);
      idx += count;
      return timed(() =>
        each(rows, async (c, [a, l]) => {
          await c.query('BEGIN');
          await c.query(dollars(ARTIFACT_INSERT), a);
          await c.query(dollars(LOG_INSERT), l);
          await c.query('COMMIT');
        }),
      );
    },
    close: () => pool.end(),
  };
}

/** A Custody context on an already-open store: the use case path without workspace files. */
function contextOn(store: Store): Context {
  return {
    home: '',
    config: ConfigSchema.parse({ version: 1, store: { driver: store.dialect }, log: { origin: 'bench' } }),
    store,
    blobs: undefined as never,
    clock: systemClock,
    actor: { identity: 'bench@example.com', roles: ['builder'] },
    close: () => store.close(),
  };
}

// ---------------------------------------------------------------- run

interface Pair {
  label: string;
  custody: Contender;
  raw: Contender;
}

const CHUNK = 50;

/**
 * Contenders alternate in chunks of CHUNK transactions, so a burst of fsync
 * latency on this shared VM's disk hits both alike; each side's chunks are summed.
 */
async function interleaved(custodySide: (from: number, n: number) => Promise<number>, rawSide: (from: number, n: number) => Promise<number>, from: number): Promise<[number, number]> {
  let c = 0;
  let r = 0;
  for (let done = 0; done < TXNS; done += CHUNK) {
    const n = Math.min(CHUNK, TXNS - done);
    c += await custodySide(from + done, n);
    r += await rawSide(from + done, n);
  }
  return [c, r];
}

async function measure(pairs: Pair[]): Promise<void> {
  const results = new Map<string, { c: number[]; r: number[] }>();
  const record = (key: string, [c, r]: [number, number]) => {
    const e = results.get(key) ?? { c: [], r: [] };
    e.c.push(c);
    e.r.push(r);
    results.set(key, e);
  };
  let seq = 0;
  for (let round = 0; round < RUNS; round++) {
    for (const p of pairs) {
      const from = (seq += TXNS * 4);
      record(`${p.label}: transaction commit`, await interleaved(p.custody.commits, p.raw.commits, from));
      record(`${p.label}: artifact add by digest`, await interleaved(p.custody.adds, p.raw.adds, from + TXNS));
    }
  }
  const rows: [string, string][] = [];
  for (const [key, { c, r }] of results) {
    const ratios = c.map((ci, i) => ci / (r[i] ?? ci));
    rows.push([
      key,
      `custody ${(TXNS / median(c)).toFixed(0)}/s, raw driver ${(TXNS / median(r)).toFixed(0)}/s: custody takes ${median(ratios).toFixed(2)}x the raw time (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
    ]);
  }
  report(`store commit rates: ${TXNS} transactions per contender and round, ${RUNS} rounds, medians`, rows);
}

const dir = await mkdtemp(join(tmpdir(), 'custody-bench-store-'));
const db = await createTempDatabase('custody_bench');
const closers: (() => Promise<void>)[] = [];
try {
  const sqliteStore = await SqliteStore.open(join(dir, 'custody.db'));
  // The raw baselines get the same tables, created by Custody's own migrations.
  await (await SqliteStore.open(join(dir, 'raw.db'))).close();
  const sqlite: Pair = { label: 'sqlite', custody: custody(sqliteStore, contextOn(sqliteStore), 1), raw: rawSqlite(join(dir, 'raw.db')) };

  const custodyUrl = await db.freshSchema();
  const rawUrl = await db.freshSchema();
  await (await PostgresStore.open(rawUrl)).close();
  const pgStore = await PostgresStore.open(custodyUrl);
  const postgres: Pair = { label: 'postgres', custody: custody(pgStore, contextOn(pgStore), 1), raw: rawPg(rawUrl, 1) };

  const concUrl = await db.freshSchema();
  const concRawUrl = await db.freshSchema();
  await (await PostgresStore.open(concRawUrl)).close();
  const pgConc = await PostgresStore.open(concUrl, { maxConnections: CONCURRENCY });
  const postgresConc: Pair = { label: `postgres, ${CONCURRENCY} concurrent clients`, custody: custody(pgConc, contextOn(pgConc), CONCURRENCY), raw: rawPg(concRawUrl, CONCURRENCY) };
  for (const p of [sqlite, postgres, postgresConc]) closers.push(() => p.custody.close(), () => p.raw.close());

  const settings = await db.query(async (c) => (await c.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'server_version')")).rows);
  console.log(`PostgreSQL over the Unix socket: ${settings.map((s) => `${s.name}=${s.setting}`).join(', ')}; SQLite: WAL, synchronous=FULL`);
  await measure([sqlite, postgres, postgresConc]);
} finally {
  for (const c of closers) await c().catch(() => undefined);
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
