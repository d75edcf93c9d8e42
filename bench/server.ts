/**
 * bench/server: `custody server` under load from a second process on loopback:
 * throughput, p50 and p99 latency and the server's peak RSS for each scenario,
 * 50 concurrent clients: reads and registrations of artifacts, the deploy-time
 * gate (`promotion.verify`) for a promoted artifact, and promotions, each of a
 * fresh artifact. Then the same use cases called in-process in this run, for
 * the overhead ratio of the HTTP layer. Method: bench/README.md.
 *
 * Scenarios are rows of SCENARIOS, each naming the seeded artifacts it uses.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { addArtifact, showArtifact } from '../src/app/artifacts.ts';
import { runOperation } from '../src/app/operations/index.ts';
import { promote } from '../src/app/promotion.ts';
import { verifyEnvironment } from '../src/app/receipts.ts';
import { actingAs, openWorkspace } from '../src/app/workspace.ts';
import { ROLES } from '../src/core/identity.ts';
import { BIN, ensureBuilt, percentile, report } from './lib.ts';
import { setup } from './promote.ts';
import type { LoadSpec } from './server-load-worker.ts';

ensureBuilt();

const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 50);
const DURATION_MS = Number(process.env['BENCH_SECONDS'] ?? 5) * 1000;
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const WARMUP_MS = 1000;
const SEEDED = 1000;
/**
 * Artifacts ready to promote (each with 5 signed attestations), half for the
 * promote scenario over HTTP and half for the same use case in-process, so
 * neither can use up the other's: at stop 14 the server got through all 4,000
 * in 4.4 s and left the in-process run none. A run that uses up its half
 * stops early, and its rate is over the time it ran.
 */
const PROMOTABLE = Number(process.env['BENCH_PROMOTIONS'] ?? 12000);
/** The deploy-time gate checks an artifact promoted staging → prod: a chain of two receipts, each with the evidence it relied on. */
const STAGING = 'bench-staging';
const PROD = 'bench-prod';
/** Promotions go into bench/promote's environment: a 10-gate policy over 5 pieces of evidence, the `none` target. */
const PROMOTE_INTO = 'bench';

interface Seed {
  /** Registered by digest, for the artifact routes. */
  artifacts: string[];
  /** Promoted into STAGING then PROD before the server starts. */
  promoted: string;
  /** Attested, never promoted: one promotion request each. */
  promotable: string[];
}

interface Scenario {
  name: string;
  load: LoadSpec['scenario'];
  route: string;
  environment?: string;
  digests(seed: Seed): string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'artifact.show', load: 'show', route: 'GET /v1/artifacts/{digest}', digests: (s) => s.artifacts },
  { name: 'artifact.list', load: 'list', route: 'GET /v1/artifacts?limit=20', digests: () => [] },
  { name: 'artifact.add', load: 'add', route: 'POST /v1/artifacts (by digest)', digests: () => [] },
  { name: 'artifact.upload', load: 'upload', route: 'POST /v1/artifacts/upload (4 KiB)', digests: () => [] },
  { name: 'promotion.verify', load: 'verify', route: `GET /v1/artifacts/{digest}/environments/${PROD}/verify`, environment: PROD, digests: (s) => [s.promoted] },
  { name: 'promotion.request', load: 'promote', route: `POST /v1/promotions (a fresh artifact each, into ${PROMOTE_INTO})`, environment: PROMOTE_INTO, digests: (s) => s.promotable.slice(0, s.promotable.length >> 1) },
];

interface LoadResult {
  requests: number;
  ok: number;
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
}

console.log(`setting up ${PROMOTABLE + 1} artifacts with 5 signed attestations each, and ${SEEDED} registered by digest…`);
const world = await setup(PROMOTABLE + 1, { environments: `  ${STAGING}: { policy: bench }\n  ${PROD}: { policy: bench, from: [${STAGING}] }\n` });
const home = world.ctx.home;
let seeding = true;
try {
  const [promoted = '', ...promotable] = world.digests;
  for (const to of [STAGING, PROD]) {
    const p = await promote(world.ctx, { artifact: promoted, to });
    if (p.state !== 'promoted') throw new Error(`setup: promotion into ${to} is ${p.state}: ${JSON.stringify(p.reasons)}`);
  }
  const gate = await verifyEnvironment(world.ctx, { artifact: promoted, environment: PROD });
  if (!gate.ok) throw new Error(`setup: the deploy-time gate refuses the promoted artifact: ${JSON.stringify(gate.reasons)}`);
  const artifacts: string[] = [];
  for (let i = 0; i < SEEDED; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    await addArtifact(world.ctx, { digest, name: `pkg:npm/seed-${i % 50}`, version: `1.0.${i}`, labels: ['tier=standard'] });
    artifacts.push(digest);
  }
  const seed: Seed = { artifacts, promoted, promotable };
  await world.ctx.close();
  seeding = false;

  // A load test measures the server, not the rate limiter: lift it for the one identity sending everything.
  await appendFile(join(home, 'custody.yaml'), 'server:\n  rateLimit: { perSecond: 1000000, burst: 1000000 }\n  storeQueue: 4096\n');
  const token = (JSON.parse(run(BIN, ['token', 'create', '--identity', 'bench@example.com', '--role', 'builder', '--role', 'deployer', '--home', home, '--json'])) as { token: string }).token;

  // The server inherits CUSTODY_KEK_FILE from setup(): it signs each promotion's receipt with the file-backed receipts key.
  const server = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', home], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await listening(server);
  const pid = server.pid ?? 0;
  console.log(`server pid ${pid} at ${url}; ${CONCURRENCY} clients, ${DURATION_MS / 1000}s per scenario after ${WARMUP_MS / 1000}s warm-up`);

  const results: { s: Scenario; r: LoadResult; rssMiB: number }[] = [];
  const loadOf = (s: Scenario) =>
    load({
      url,
      token,
      scenario: s.load,
      digests: s.digests(seed),
      ...(s.environment === undefined ? {} : { environment: s.environment }),
      concurrency: CONCURRENCY,
      warmupMs: WARMUP_MS,
      durationMs: DURATION_MS,
    });
  for (const s of SCENARIOS) {
    const sampler = rssSampler(pid);
    const r = await loadOf(s);
    results.push({ s, r, rssMiB: sampler.stop() });
  }

  // In-process baselines: the same use cases, same workspace, same concurrency, no HTTP.
  const ctx = await openWorkspace(home);
  const actor = actingAs(ctx, { identity: 'bench@example.com', roles: [...ROLES] });
  // The verify ratio alternates rounds over HTTP and in-process (the server up but idle meanwhile), so this
  // shared machine's moods hit both alike; the median round's ratio is reported.
  const verifyInput = { artifact: promoted, environment: PROD };
  const check = await runOperation(actor, 'promotion.verify', verifyInput);
  if (!check.ok) throw new Error(`the deploy-time gate refuses the promoted artifact in-process: ${JSON.stringify(check.reasons)}`);
  const verifyScenario = SCENARIOS.find((x) => x.load === 'verify');
  if (!verifyScenario) throw new Error('no verify scenario');
  const rounds: { http: LoadResult; registry: InProcessResult; direct: InProcessResult }[] = [];
  for (let round = 0; round < RUNS; round++) {
    const inProc = async () => ({
      registry: await inProcess(CONCURRENCY, DURATION_MS, () => runOperation(actor, 'promotion.verify', verifyInput)),
      direct: await inProcess(CONCURRENCY, DURATION_MS, () => verifyEnvironment(actor, verifyInput)),
    });
    if (round % 2 === 0) {
      const http = await loadOf(verifyScenario);
      rounds.push({ http, ...(await inProc()) });
    } else {
      const local = await inProc();
      rounds.push({ http: await loadOf(verifyScenario), ...local });
    }
  }
  const peakMiB = await vmHwmMiB(pid);
  server.kill('SIGTERM');
  await new Promise((r) => server.on('close', r));

  const showDirect = await inProcess(CONCURRENCY, DURATION_MS, (i) => showArtifact(actor, artifacts[i % artifacts.length] ?? ''));
  const showRegistry = await inProcess(CONCURRENCY, DURATION_MS, (i) => runOperation(actor, 'artifact.show', { ref: artifacts[i % artifacts.length] ?? '' }));
  // What the promote scenario left in the store, then promotions of the other half of the artifacts, in-process.
  const stored = await ctx.store.read((tx) => tx.promotions.list({ environment: PROMOTE_INTO, limit: 1_000_000 }));
  const reached = new Set<string>(stored.map((p) => p.artifact.digest));
  const rest = promotable.slice(promotable.length >> 1).filter((d) => !reached.has(d));
  const promotedInProcess: Record<string, number> = {};
  const promoteRegistry = await inProcess(CONCURRENCY, DURATION_MS, (i) => {
    const artifact = rest[i];
    if (artifact === undefined) return undefined;
    return runOperation(actor, 'promotion.request', { artifact, to: PROMOTE_INTO }).then((p) => {
      promotedInProcess[p.state] = (promotedInProcess[p.state] ?? 0) + 1;
    });
  });
  await ctx.close();

  report(`custody server, ${CONCURRENCY} concurrent clients on loopback (separate process)`, [
    ...results.map(({ s, r, rssMiB }): [string, string] => [
      `${s.route}`,
      `${r.throughput.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  server RSS ≤ ${rssMiB.toFixed(0)} MiB  ${nonOk(r)}`,
    ]),
    ['server peak RSS (VmHWM, whole run)', `${peakMiB.toFixed(0)} MiB`],
  ]);
  const verify = results.find((x) => x.s.name === 'promotion.verify')?.r;
  const promotions = results.find((x) => x.s.name === 'promotion.request')?.r;
  report(`promotions under load: what ${CONCURRENCY} clients were answered, and what the store holds`, [
    ['verify answers (measured)', tally(verify?.outcomes ?? {})],
    ['promote answers (measured)', `${tally(promotions?.outcomes ?? {})} in ${(promotions?.seconds ?? 0).toFixed(1)} s`],
    [`stored promotions into ${PROMOTE_INTO} (warm-up included)`, tally(countBy(stored, (p) => (p.outcome?.code === 'PROMOTION_SUPERSEDED' ? 'superseded' : p.state)))],
  ]);
  const byRatio = [...rounds].sort((a, b) => ratio(a.registry, a.http) - ratio(b.registry, b.http));
  const mid = byRatio[Math.floor(byRatio.length / 2)];
  report(`HTTP-layer overhead: the deploy-time gate (promotion.verify) over HTTP vs in-process, ${RUNS} alternating rounds`, [
    ...rounds.flatMap((r, i): [string, string][] => [
      [`round ${i + 1}: over HTTP (auth, limits, zod, JSON, loopback)`, `${r.http.throughput.toFixed(0)} req/s  p50 ${r.http.p50.toFixed(2)} ms  p99 ${r.http.p99.toFixed(2)} ms  ${tally(r.http.outcomes)}`],
      [`round ${i + 1}: in-process runOperation('promotion.verify')`, `${rate(r.registry)}  → ratio ${ratio(r.registry, r.http).toFixed(2)}x`],
      [`round ${i + 1}: in-process verifyEnvironment() (no zod)`, `${rate(r.direct)}  → ratio ${ratio(r.direct, r.http).toFixed(2)}x`],
    ]),
    ['overhead of the HTTP layer (median round, in-process / HTTP throughput)', mid ? `${ratio(mid.registry, mid.http).toFixed(2)}x (runOperation), ${ratio(mid.direct, mid.http).toFixed(2)}x (verifyEnvironment)` : '-'],
  ]);
  const show = results.find((x) => x.s.name === 'artifact.show')?.r;
  report('HTTP-layer overhead: artifact.show over HTTP vs in-process, same run', [
    ['in-process showArtifact()', rate(showDirect)],
    ['in-process runOperation() (+ zod in/out)', rate(showRegistry)],
    ['over HTTP (auth, limits, zod, JSON, loopback)', `${(show?.throughput ?? 0).toFixed(0)} req/s`],
    ['overhead ratio (in-process / HTTP throughput)', `${(showDirect.throughput / (show?.throughput || 1)).toFixed(2)}x`],
  ]);
  report('promotion.request over HTTP vs in-process (for context: a write, serialised by the store)', [
    ['in-process runOperation(), fresh artifacts', `${rate(promoteRegistry)}  (${tally(promotedInProcess)})`],
    ['over HTTP', `${(promotions?.throughput ?? 0).toFixed(0)} req/s  p50 ${(promotions?.p50 ?? 0).toFixed(2)} ms  p99 ${(promotions?.p99 ?? 0).toFixed(2)} ms`],
    ['ratio (in-process / HTTP throughput)', `${(promoteRegistry.throughput / (promotions?.throughput || 1)).toFixed(2)}x`],
  ]);
} finally {
  if (seeding) await world.ctx.close();
  await rm(world.dir, { recursive: true, force: true });
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
    const worker = spawn(process.execPath, [join(import.meta.dirname, 'server-load-worker.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
    worker.stdin.end(JSON.stringify(spec));
    let out = '';
    worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
    worker.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load worker exited ${code}`))));
  });
}

/**
 * `concurrency` loops calling `call` for `durationMs` after the warm-up, or
 * until it returns undefined (nothing left to do): throughput over the window
 * measured, and latency percentiles.
 */
interface InProcessResult {
  throughput: number;
  p50: number;
  p99: number;
}

async function inProcess(concurrency: number, durationMs: number, call: (i: number) => Promise<unknown> | undefined): Promise<InProcessResult> {
  let n = 0;
  const latencies: number[] = [];
  const warmEnd = performance.now() + WARMUP_MS;
  const end = warmEnd + durationMs;
  const loop = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const pending = call(n++);
      if (pending === undefined) return;
      await pending;
      if (t0 >= warmEnd) latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (Math.min(performance.now(), end) - warmEnd) / 1000;
  return { throughput: seconds > 0 ? latencies.length / seconds : 0, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

function ratio(inProc: InProcessResult, http: LoadResult): number {
  return inProc.throughput / (http.throughput || 1);
}

function rate(r: { throughput: number; p50: number; p99: number }): string {
  return `${r.throughput.toFixed(0)} calls/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`;
}

function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

function tally(counts: Record<string, number>): string {
  const parts = Object.entries(counts).sort(([, a], [, b]) => b - a);
  return parts.length ? parts.map(([k, c]) => `${k} ${c}`).join(', ') : 'none';
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
