/**
 * bench/tlog: the tamper-evident log on the embedded store, against raw SQLite
 * writing the very same rows in the same run: batched appends up to 1M entries,
 * single-entry commits, proof latency at 1M, and `custody audit verify` over
 * the whole log (time and peak RSS, at a quarter of the size and at full size).
 * Method: bench/README.md.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { commitSettings } from '../src/adapters/store-sqlite.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signWorkspaceCheckpoint, proveEntry } from '../src/app/log.ts';
import { initWorkspace, openWorkspace } from '../src/app/workspace.ts';
import type { LogEntryInput } from '../src/core/ports.ts';
import { subjectKey } from '../src/adapters/sql/log.ts';
import { CompactRange, entryBody, entryLeaf, parseCheckpointText, parseNote, verifyInclusion } from '../src/core/tlog/index.ts';
import { testKey } from '../test/fixtures/keys.ts';
import { BIN, ensureBuilt, goal, median, percentile, report, timeCommand } from './lib.ts';

ensureBuilt();

const N = Number(process.env['BENCH_TLOG_N'] ?? 1_000_000);
const BATCH = 1000;
const SEGMENTS = 10;
const SINGLE = Number(process.env['BENCH_TLOG_SINGLE'] ?? 300);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
/** Single commits are dominated by fsync, which this VM's disk makes noisy: many short paired rounds, the median counts. */
const SINGLE_ROUNDS = RUNS * 3;
const PROOFS = 2000;
/** Checkpoints are signed after a batch at most this often, as `log.checkpointInterval` (default 1s) asks. */
const CHECKPOINT_INTERVAL_MS = 1000;

/** What a busy Custody records: an artifact added, with a distinct digest as subject and digests in the payload. */
function entry(i: number): LogEntryInput {
  const hex = i.toString(16).padStart(64, '0');
  return {
    type: 'artifact.added',
    actor: 'ci@example.com',
    time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
    subject: `sha256:${hex}`,
    payload: { name: 'pkg:npm/app', version: `1.${Math.floor(i / 1000)}.${i % 1000}`, size: 1048576 + i, digests: { sha256: hex }, labels: {}, source: null, stored: true },
  };
}

const dir = await mkdtemp(join(tmpdir(), 'custody-bench-tlog-'));
try {
  // ---------------------------------------------------------------- setup: a workspace with a log key, and a raw database
  const home = join(dir, 'ws');
  await initWorkspace(home, { identity: 'bench@example.com' });
  const ctx = await openWorkspace(home);
  const { record: key, signer } = testKey({ name: 'log', purposes: ['log-checkpoint'], owner: 'bench@example.com' });
  await ctx.store.transaction((tx) => tx.keys.insert(key, null));
  const sign = () => signWorkspaceCheckpoint(ctx, { signer: { key, signer } });

  // The raw baseline: a table with the same columns, written with the very bytes Custody writes
  // (body, leaf hash, subtree hashes, subject key), precomputed so it pays for the database alone.
  const raw = new DatabaseSync(join(dir, 'raw.db'));
  raw.exec('PRAGMA journal_mode = WAL');
  commitSettings(raw);
  raw.exec('CREATE TABLE raw (idx INTEGER PRIMARY KEY, body TEXT NOT NULL, leaf_hash BLOB NOT NULL, nodes BLOB, subject_bucket INTEGER, subject_key INTEGER)');
  const rawInsert = raw.prepare('INSERT INTO raw (idx, body, leaf_hash, nodes, subject_bucket, subject_key) VALUES (?, ?, ?, ?, ?, ?)');
  const rawTree = new CompactRange();
  let rawNext = 0;

  type RawRow = [string, Uint8Array, Uint8Array | null, number, number];
  function rawRows(from: number, count: number): RawRow[] {
    const rows: RawRow[] = [];
    for (let i = from; i < from + count; i++) {
      const e = entry(i);
      const body = entryBody(i, e);
      const leaf = entryLeaf(body);
      const parts: Uint8Array[] = [];
      rawTree.append(leaf, (level, _index, h) => {
        if (level > 0) parts.push(h);
      });
      const s = subjectKey(e.subject ?? '');
      rows.push([body, leaf, parts.length ? Buffer.concat(parts) : null, s.bucket, s.key]);
    }
    return rows;
  }
  function rawBatched(rows: RawRow[], batch: number): number {
    const t = performance.now();
    for (let k = 0; k < rows.length; k += batch) {
      raw.exec('BEGIN IMMEDIATE');
      for (let j = k; j < Math.min(rows.length, k + batch); j++) rawInsert.run(rawNext++, ...rows[j]!);
      raw.exec('COMMIT');
    }
    return (performance.now() - t) / 1000;
  }

  // ---------------------------------------------------------------- batched appends, interleaved with raw, segment by segment
  let next = 0;
  let lastSigned = performance.now();
  let checkpoints = 0;
  const segments: { raw: number; custody: number }[] = [];
  let custodySeconds = 0;
  let rawSeconds = 0;
  let quarterVerify: ReturnType<typeof timeCommand> | undefined;
  let quarterSize = 0;
  const perSegment = Math.ceil(N / SEGMENTS / BATCH) * BATCH;
  console.log(`appending ${N} entries in batches of ${BATCH}, ${SEGMENTS} segments…`);
  while (next < N) {
    const count = Math.min(perSegment, N - next);
    const rows = rawRows(rawNext, count);
    const r = rawBatched(rows, BATCH);
    // What the use cases hand to the log, built before the clock starts (the raw rows are too).
    const inputs = Array.from({ length: count }, (_, k) => entry(next + k));
    const t = performance.now();
    for (let k = 0; k < count; k += BATCH) {
      await ctx.store.transaction(async (tx) => {
        for (let j = k; j < Math.min(count, k + BATCH); j++) {
          await tx.log.append(inputs[j]!);
          next++;
        }
      });
      if (performance.now() - lastSigned >= CHECKPOINT_INTERVAL_MS) {
        await sign();
        checkpoints++;
        lastSigned = performance.now();
      }
    }
    const c = (performance.now() - t) / 1000;
    segments.push({ raw: count / r, custody: count / c });
    rawSeconds += r;
    custodySeconds += c;
    console.log(`  ${next}: custody ${(count / c).toFixed(0)}/s, raw ${(count / r).toFixed(0)}/s, ratio ${(r / c).toFixed(2)}`);
    if (quarterVerify === undefined && next >= N / 4) {
      await sign();
      checkpoints++;
      quarterVerify = timeCommand(BIN, ['audit', 'verify', '--home', home, '--json']);
      quarterSize = next;
      console.log(`  audit verify at ${next}: ${quarterVerify.seconds.toFixed(2)} s, ${(quarterVerify.maxRssKiB / 1024).toFixed(0)} MiB`);
    }
  }
  await sign();
  checkpoints++;
  const ratios = segments.map((s) => s.custody / s.raw);

  // ---------------------------------------------------------------- single-entry commits, interleaved rounds
  const single: { raw: number; custody: number }[] = [];
  // One round to warm both up (statement caches, JIT), then the rounds that count.
  for (let round = -1; round < SINGLE_ROUNDS; round++) {
    const rows = rawRows(rawNext, SINGLE);
    const r = rawBatched(rows, 1);
    const inputs = Array.from({ length: SINGLE }, (_, k) => entry(next + k));
    const t = performance.now();
    for (const input of inputs) {
      await ctx.store.transaction((tx) => tx.log.append(input));
      next++;
    }
    const c = (performance.now() - t) / 1000;
    if (round >= 0) single.push({ raw: SINGLE / r, custody: SINGLE / c });
  }
  await sign();
  checkpoints++;
  const singleRatios = single.map((s) => s.custody / s.raw);

  // ---------------------------------------------------------------- proof latency at full size
  const size = await ctx.store.read((tx) => tx.log.size());
  const anchor = (await ctx.store.read((tx) => tx.log.latestCheckpoint()))!;
  const signedRoot = parseCheckpointText(parseNote(anchor.note).text).root;
  const latencies: number[] = [];
  const proveLatencies: number[] = [];
  let bad = 0;
  for (let k = 0; k < PROOFS; k++) {
    const index = Math.floor(Math.random() * size);
    const t = performance.now();
    const proof = await ctx.store.read((tx) => tx.log.inclusionProof(index, anchor.size));
    latencies.push(performance.now() - t);
    const e = await ctx.store.read((tx) => tx.log.byIndex(index));
    if (!verifyInclusion(index, anchor.size, Buffer.from(e!.leafHash, 'hex'), proof, signedRoot).ok) bad++;
    if (k % 4 === 0) {
      const t2 = performance.now();
      await proveEntry(ctx, String(index));
      proveLatencies.push(performance.now() - t2);
    }
  }
  if (bad > 0) throw new Error(`${bad} proofs did not verify`);
  await ctx.close();
  raw.close();

  // ---------------------------------------------------------------- audit verify over everything, in its own process
  const verify = timeCommand(BIN, ['audit', 'verify', '--home', home, '--json']);
  const dbBytes = (await stat(join(home, 'custody.db'))).size + (await stat(join(home, 'custody.db-wal')).catch(() => ({ size: 0 }))).size;
  const rawBytes = (await stat(join(dir, 'raw.db'))).size + (await stat(join(dir, 'raw.db-wal')).catch(() => ({ size: 0 }))).size;

  const batchedRate = N / custodySeconds;
  const ratio = median(ratios);
  const p50 = percentile(latencies, 50);
  const singleRatio = median(singleRatios);
  const rss = verify.maxRssKiB / 1024;
  const quarterRss = (quarterVerify?.maxRssKiB ?? 0) / 1024;
  report(`tlog: ${N} entries, batches of ${BATCH}, synchronous=FULL (${SEGMENTS} segments, interleaved with raw)`, [
    ['custody appends, batched', `${batchedRate.toFixed(0)} entries/s (${custodySeconds.toFixed(1)} s, ${checkpoints} checkpoints signed)`],
    ['raw SQLite, same rows, batched', `${(N / rawSeconds).toFixed(0)} rows/s (${rawSeconds.toFixed(1)} s)`],
    ['ratio to raw', `${ratio.toFixed(2)}x median of segments (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`],
    ['custody single-entry commits', `${median(single.map((s) => s.custody)).toFixed(0)}/s (median of ${SINGLE_ROUNDS} rounds of ${SINGLE})`],
    ['raw single-row commits', `${median(single.map((s) => s.raw)).toFixed(0)}/s`],
    ['single-commit ratio', `${singleRatio.toFixed(2)}x median of rounds (${Math.min(...singleRatios).toFixed(2)}–${Math.max(...singleRatios).toFixed(2)})`],
    ['inclusion proof at ' + String(size), `p50 ${p50.toFixed(3)} ms, p90 ${percentile(latencies, 90).toFixed(3)} ms, p99 ${percentile(latencies, 99).toFixed(3)} ms (${PROOFS} random entries)`],
    ['audit proof (entry + proof + checkpoint, verified)', `p50 ${percentile(proveLatencies, 50).toFixed(3)} ms`],
    ['custody audit verify, ' + String(size) + ' entries', `${verify.seconds.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MiB (whole CLI process)`],
    ['custody audit verify at ' + String(quarterSize), `${quarterVerify?.seconds.toFixed(2) ?? '-'} s, peak RSS ${quarterRss.toFixed(0)} MiB`],
    ['database size', `${(dbBytes / 1048576).toFixed(0)} MiB (raw rows alone: ${(rawBytes / 1048576).toFixed(0)} MiB)`],
  ]);
  console.log(`\n${goal('batched appends at least 50,000 entries/s', batchedRate >= 50_000, `${batchedRate.toFixed(0)}/s`)}`);
  console.log(goal('batched appends at least 0.3x raw inserts', ratio >= 0.3, `${ratio.toFixed(2)}x`));
  console.log(goal('single-entry commits at least 0.8x raw single-row commits', singleRatio >= 0.8, `${singleRatio.toFixed(2)}x`));
  console.log(goal('proof p50 under 1 ms at 1M', p50 < 1, `${p50.toFixed(3)} ms`));
  console.log(goal('audit verify under 10 s', verify.seconds < 10, `${verify.seconds.toFixed(2)} s`));
  console.log(goal('audit verify memory flat in n', quarterRss > 0 && rss < quarterRss * 1.25, `${quarterRss.toFixed(0)} → ${rss.toFixed(0)} MiB`));
} finally {
  await rm(dir, { recursive: true, force: true });
}
