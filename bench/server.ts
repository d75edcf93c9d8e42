/**
 * bench/server: `custody server` under load from a second process on loopback:
 * throughput, p50 and p99 latency and the server's peak RSS for each scenario,
 * 50 concurrent clients; then the same read use case called in-process in this
 * run, for the overhead ratio of the HTTP layer. Method: bench/README.md.
 *
 * Scenarios are rows of SCENARIOS: the verify and promotion routes join as rows
 * (with a seed step) when those operations exist.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { showArtifact, addArtifact } from '../src/app/artifacts.ts';
import { runOperation } from '../src/app/operations/index.ts';
import { actingAs, openWorkspace } from '../src/app/workspace.ts';
import { ROLES } from '../src/core/identity.ts';
import { BIN, ensureBuilt, percentile, report } from './lib.ts';
import type { LoadSpec } from './server-load-worker.ts';

ensureBuilt();

const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 50);
const DURATION_MS = Number(process.env['BENCH_SECONDS'] ?? 5) * 1000;
const WARMUP_MS = 1000;
const SEEDED = 1000;

interface Scenario {
  name: string;
  load: LoadSpec['scenario'];
  route: string;
}

const SCENARIOS: Scenario[] = [
  { name: 'artifact.show', load: 'show', route: 'GET /v1/artifacts/{digest}' },
  { name: 'artifact.list', load: 'list', route: 'GET /v1/artifacts?limit=20' },
  { name: 'artifact.add', load: 'add', route: 'POST /v1/artifacts (by digest)' },
  { name: 'artifact.upload', load: 'upload', route: 'POST /v1/artifacts/upload (4 KiB)' },
];

interface LoadResult {
  requests: number;
  ok: number;
  statuses: Record<string, number>;
  throughput: number;
  p50: number;
  p99: number;
}

const dir = await mkdtemp(join(tmpdir(), 'custody-bench-server-'));
try {
  const home = join(dir, '.custody');
  run(BIN, ['init', '--home', home, '--identity', 'bench@example.com']);
  // A load test measures the server, not the rate limiter: lift it for the one identity sending everything.
  await appendFile(join(home, 'custody.yaml'), 'server:\n  rateLimit: { perSecond: 1000000, burst: 1000000 }\n  storeQueue: 4096\n');
  const token = (JSON.parse(run(BIN, ['token', 'create', '--identity', 'bench@example.com', '--role', 'builder', '--home', home, '--json'])) as { token: string }).token;

  const seedCtx = await openWorkspace(home);
  const digests: string[] = [];
  for (let i = 0; i < SEEDED; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    await addArtifact(seedCtx, { digest, name: `pkg:npm/seed-${i % 50}`, version: `1.0.${i}`, labels: ['tier=standard'] });
    digests.push(digest);
  }
  await seedCtx.close();

  const server = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', home], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await listening(server);
  const pid = server.pid ?? 0;
  console.log(`server pid ${pid} at ${url}; ${CONCURRENCY} clients, ${DURATION_MS / 1000}s per scenario after ${WARMUP_MS / 1000}s warm-up`);

  const results: { s: Scenario; r: LoadResult; rssMiB: number }[] = [];
  for (const s of SCENARIOS) {
    const sampler = rssSampler(pid);
    const r = await load({ url, token, scenario: s.load, digests, concurrency: CONCURRENCY, warmupMs: WARMUP_MS, durationMs: DURATION_MS });
    results.push({ s, r, rssMiB: sampler.stop() });
  }
  const peakMiB = await vmHwmMiB(pid);
  server.kill('SIGTERM');
  await new Promise((r) => server.on('close', r));

  // In-process baseline: the same read use case, same workspace, same concurrency, no HTTP.
  const ctx = await openWorkspace(home);
  const actor = actingAs(ctx, { identity: 'bench@example.com', roles: [...ROLES] });
  const direct = await inProcess(CONCURRENCY, DURATION_MS, (i) => showArtifact(actor, digests[i % digests.length] ?? ''));
  const viaRegistry = await inProcess(CONCURRENCY, DURATION_MS, (i) => runOperation(actor, 'artifact.show', { ref: digests[i % digests.length] ?? '' }));
  await ctx.close();

  report(`custody server, ${CONCURRENCY} concurrent clients on loopback (separate process)`, [
    ...results.map(({ s, r, rssMiB }): [string, string] => [
      `${s.route}`,
      `${r.throughput.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  server RSS ≤ ${rssMiB.toFixed(0)} MiB  ${nonOk(r)}`,
    ]),
    ['server peak RSS (VmHWM, whole run)', `${peakMiB.toFixed(0)} MiB`],
  ]);
  const show = results.find((x) => x.s.name === 'artifact.show')?.r;
  report('HTTP-layer overhead: artifact.show over HTTP vs in-process, same run', [
    ['in-process showArtifact()', `${direct.throughput.toFixed(0)} calls/s  p50 ${direct.p50.toFixed(2)} ms  p99 ${direct.p99.toFixed(2)} ms`],
    ['in-process runOperation() (+ zod in/out)', `${viaRegistry.throughput.toFixed(0)} calls/s  p50 ${viaRegistry.p50.toFixed(2)} ms  p99 ${viaRegistry.p99.toFixed(2)} ms`],
    ['over HTTP (auth, limits, zod, JSON, loopback)', `${(show?.throughput ?? 0).toFixed(0)} req/s`],
    ['overhead ratio (in-process / HTTP throughput)', `${(direct.throughput / (show?.throughput ?? 1)).toFixed(2)}x`],
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function listening(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
      if (m?.[1]) resolve(m[1]);
      // Keep only the tail: the server logs every request.
      if (buf.length > 4096) buf = buf.slice(-1024);
    });
    child.on('close', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
}

function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = spawn(process.execPath, [join(import.meta.dirname, 'server-load-worker.ts'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
    worker.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load worker exited ${code}`))));
  });
}

async function inProcess(concurrency: number, durationMs: number, call: (i: number) => Promise<unknown>): Promise<{ throughput: number; p50: number; p99: number }> {
  let n = 0;
  const latencies: number[] = [];
  const warmEnd = performance.now() + WARMUP_MS;
  const end = warmEnd + durationMs;
  const loop = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      await call(n++);
      if (t0 >= warmEnd) latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { throughput: latencies.length / (durationMs / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

function nonOk(r: LoadResult): string {
  const other = Object.entries(r.statuses).filter(([s]) => s !== '200');
  return other.length ? `(non-200: ${other.map(([s, c]) => `${s}×${c}`).join(', ')})` : '';
}

/** Samples the server's resident set every 50 ms; `stop` gives the peak seen, in MiB. */
function rssSampler(pid: number): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    void readFile(`/proc/${pid}/status`, 'utf8')
      .then((s) => {
        const kib = Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
        peak = Math.max(peak, kib / 1024);
      })
      .catch(() => undefined);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

async function vmHwmMiB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
}
