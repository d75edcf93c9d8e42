/**
 * bench/hash: `custody artifact add` of a 1 GiB file (sha256 + sha512 + blob
 * write) against `openssl dgst` on the same file in the same run, plus the peak
 * RSS of adding a 2 GiB file. Method: bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ensureBuilt, goal, median, report, timeCommand } from './lib.ts';

ensureBuilt();

const GiB = 1024 * 1024 * 1024;
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

async function makeFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  const chunk = randomBytes(16 * 1024 * 1024);
  for (let off = 0; off < size; off += chunk.length) {
    // Vary each chunk so no layer can deduplicate or compress it away.
    chunk.writeUInt32LE(off / chunk.length, 0);
    await fh.write(chunk, 0, Math.min(chunk.length, size - off));
  }
  await fh.sync();
  await fh.close();
}

const dir = await mkdtemp(join(tmpdir(), 'custody-bench-hash-'));
try {
  const file = join(dir, 'one.bin');
  console.log('generating 1 GiB of random data…');
  await makeFile(file, GiB);
  timeCommand('cat', [file]); // warm the page cache for every contender alike

  // Rounds interleave every contender, so this VM's noisy disk hits them alike.
  const rounds: { sha256: number; sha512: number; dd: number; add: number; rss: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const sha256 = timeCommand('openssl', ['dgst', '-sha256', file]).seconds;
    const sha512 = timeCommand('openssl', ['dgst', '-sha512', file]).seconds;
    // Not a goal, but context every reader needs: this disk's own write speed with fsync.
    const dd = timeCommand('dd', [`if=${file}`, `of=${file}.copy`, 'bs=4M', 'conv=fsync', 'status=none']).seconds;
    await rm(`${file}.copy`);
    const home = join(dir, `ws-${i}`);
    timeCommand(BIN, ['init', '--home', home]);
    timeCommand('sync', []);
    const add = timeCommand(BIN, ['artifact', 'add', file, '--name', 'bench', '--version', '1.0.0', '--home', home, '--json']);
    rounds.push({ sha256, sha512, dd, add: add.seconds, rss: add.maxRssKiB });
    await rm(home, { recursive: true, force: true });
    timeCommand('sync', []);
  }
  const sha256 = median(rounds.map((r) => r.sha256));
  const sha512 = median(rounds.map((r) => r.sha512));
  const dd = median(rounds.map((r) => r.dd));
  const add = median(rounds.map((r) => r.add));
  const ratios = rounds.map((r) => r.add / Math.max(r.sha256, r.sha512));
  const ratio = median(ratios);
  const bestRatio = Math.min(...ratios);

  await rm(file);
  const big = join(dir, 'two.bin');
  console.log('generating 2 GiB of random data…');
  await makeFile(big, 2 * GiB);
  const home = join(dir, 'ws-big');
  timeCommand(BIN, ['init', '--home', home]);
  const bigAdd = timeCommand(BIN, ['artifact', 'add', big, '--name', 'bench', '--version', '2.0.0', '--home', home, '--json']);
  const rssMiB = bigAdd.maxRssKiB / 1024;

  report('artifact add, 1 GiB (median of ' + String(RUNS) + ')', [
    ['openssl dgst -sha256', `${sha256.toFixed(2)} s  (${(1024 / sha256).toFixed(0)} MiB/s)`],
    ['openssl dgst -sha512', `${sha512.toFixed(2)} s  (${(1024 / sha512).toFixed(0)} MiB/s)`],
    ['dd conv=fsync (disk)', `${dd.toFixed(2)} s  (${(1024 / dd).toFixed(0)} MiB/s)`],
    ['custody artifact add', `${add.toFixed(2)} s  (${(1024 / add).toFixed(0)} MiB/s, both digests + blob write + fsync, whole CLI process)`],
    ['ratio to slower openssl', `${ratio.toFixed(2)}x median, ${bestRatio.toFixed(2)}x best round`],
    ['peak RSS, 1 GiB add', `${(median(rounds.map((r) => r.rss)) / 1024).toFixed(0)} MiB`],
    ['peak RSS, 2 GiB add', `${rssMiB.toFixed(0)} MiB (${bigAdd.seconds.toFixed(2)} s)`],
  ]);
  console.log(`\n${goal('add within 1.25x of the slower openssl digest', ratio <= 1.25, `${ratio.toFixed(2)}x`)}`);
  console.log(goal('peak RSS under 100 MiB for a 2 GiB add', rssMiB < 100, `${rssMiB.toFixed(0)} MiB`));
} finally {
  await rm(dir, { recursive: true, force: true });
}
