/**
 * bench/promote: end-to-end promotions on the embedded store, each over an
 * artifact with 5 pieces of evidence and a 10-gate policy (a published,
 * signed policy set), against, in the same run, the raw SQLite transaction
 * commit rate with the same durability settings and the raw crypto a
 * promotion needs (5 signature verifications and 1 receipt signature).
 * Then the latency of a whole `bin/custody promote` process, Node start-up
 * included. Method and results: bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { commitSettings } from '../src/adapters/store-sqlite.ts';
import { addArtifact } from '../src/app/artifacts.ts';
import { storeEvidence, toStored } from '../src/app/evidence.ts';
import { createKey, loadSigner } from '../src/app/keys.ts';
import { publishPolicies } from '../src/app/policy.ts';
import { promote } from '../src/app/promotion.ts';
import { initWorkspace, openWorkspace, type Context } from '../src/app/workspace.ts';
import { dsseBundle } from '../src/core/bundle.ts';
import { INTOTO_PAYLOAD_TYPE, pae, signEnvelope } from '../src/core/dsse.ts';
import { artifactSubject, buildStatement } from '../src/core/intoto.ts';
import { toTrustedKeys } from '../src/core/key.ts';
import type { Signer } from '../src/core/ports.ts';
import type { Artifact } from '../src/core/artifact.ts';
import type { StoredEvidence } from '../src/core/evidence.ts';
import { verifyEvidence } from '../src/core/verify/index.ts';
import { BIN, ensureBuilt, goal, median, percentile, report } from './lib.ts';

const PROMOTIONS = Number(process.env['BENCH_PROMOTIONS'] ?? 2000);
const CLI_RUNS = Number(process.env['BENCH_CLI_RUNS'] ?? 60);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
/** Promotions in flight at once in the concurrent rounds, each into its own environment (see promotions). */
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
/**
 * Concurrent promotions run before the rounds and not measured: JIT tiering in
 * the main thread and in the verification pool's workers (which only
 * concurrent promotions use) takes several hundred. Measured here, 350 at a
 * time from cold: 543, 830, 969, 971 promotions/s. A server runs warm.
 */
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 700);

const TYPES = {
  provenance: 'https://slsa.dev/provenance/v1',
  tests: 'https://in-toto.io/attestation/test-result/v0.1',
  vulns: 'https://in-toto.io/attestation/vulns/v0.1',
  sbom: 'https://cyclonedx.org/bom',
  review: 'https://acme.example/attestation/code-review/v1',
} as const;

/** Ten gates: five evidence requirements (four with CEL), versioning, a freeze window and three rules. */
const POLICY = `apiVersion: custody.dev/v1
kind: Policy
name: bench
gates:
  provenance:
    require:
      predicateType: ${TYPES.provenance}
      signers: [{ key: build-ci }]
      where: predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app" && predicate.runDetails.builder.id.startsWith("https://github.com/")
  tests:
    require:
      predicateType: ${TYPES.tests}
      signers: [{ key: build-ci }]
      where: predicate.result == "PASSED"
  vulnerabilities:
    require:
      predicateType: ${TYPES.vulns}
      signers: [{ key: scanner }]
      where: predicate.scanner.result.all(v, v.severity.all(s, !(s.score in ["HIGH", "CRITICAL"])))
  sbom:
    require:
      predicateType: ${TYPES.sbom}
      signers: [{ key: scanner }]
      where: predicate.bomFormat == "CycloneDX"
  review:
    require:
      predicateType: ${TYPES.review}
      signers: [{ key: build-ci }]
  versioning:
    versioning: { semver: true, noDowngrade: false }
  change-freeze:
    freeze: { timeZone: Europe/Berlin, dates: [{ from: 2020-12-24, to: 2020-12-27, reason: a past freeze }] }
  no-prerelease:
    rule: { expr: '!artifact.version.contains("-")' }
  team:
    rule: { expr: 'artifact.labels.team == "payments"' }
  source:
    rule: { expr: 'artifact.source.repository == "https://github.com/acme/app"' }
`;

function predicates(now: string): Record<keyof typeof TYPES, Record<string, unknown>> {
  return {
    provenance: {
      buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1', externalParameters: { workflow: { repository: 'https://github.com/acme/app', ref: 'refs/heads/main' } }, resolvedDependencies: [{ uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: '3f2c1e9'.padEnd(40, '0') } }] },
      runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' }, metadata: { invocationId: 'https://github.com/acme/app/actions/runs/1', startedOn: now, finishedOn: now } },
    },
    tests: { result: 'PASSED', configuration: [{ uri: 'https://github.com/acme/app/blob/main/.github/workflows/ci.yml' }], passedTests: ['unit', 'integration', 'e2e'], failedTests: [] },
    vulns: { scanner: { uri: 'pkg:github/aquasecurity/trivy@0.50.0', result: [{ id: 'CVE-2026-0001', severity: [{ method: 'nvd', score: '5.3' }] }] }, metadata: { scanStartedOn: now, scanFinishedOn: now } },
    sbom: { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [{ type: 'library', name: 'left-pad' }] },
    review: { reviewers: ['alice@acme.example'], approved: true },
  };
}

interface World {
  dir: string;
  ctx: Context;
  /** Artifacts ready to promote, each with its 5 pieces of evidence. */
  digests: string[];
  /** Raw crypto inputs: the PAEs and signatures of real evidence, and the receipt key. */
  crypto: { items: { pae: Buffer; sig: Buffer; key: KeyObject }[]; receiptKey: KeyObject };
}

async function attestAll(ctx: Context, signers: Record<string, Signer>, digests: string[], now: string): Promise<{ pae: Buffer; sig: Buffer; keyid: string }[]> {
  const keys = toTrustedKeys(await ctx.store.read((tx) => tx.keys.list()));
  const samples: { pae: Buffer; sig: Buffer; keyid: string }[] = [];
  const preds = predicates(now);
  for (let i = 0; i < digests.length; i += 100) {
    const batch = digests.slice(i, i + 100);
    const stored: { artifact: Artifact; evidence: StoredEvidence }[] = [];
    for (const d of batch) {
      const artifact = await ctx.store.read(async (tx) => (await tx.artifacts.byDigest(d as `sha256:${string}`))!);
      for (const [name, type] of Object.entries(TYPES) as [keyof typeof TYPES, string][]) {
        const signer = signers[name === 'vulns' || name === 'sbom' ? 'scanner' : 'build-ci']!;
        const statement = buildStatement([artifactSubject(artifact)], type, preds[name]);
        const payload = Buffer.from(JSON.stringify(statement));
        const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, signer);
        const body = JSON.stringify(dsseBundle(envelope));
        const result = verifyEvidence({ input: body, maxBytes: 1 << 20, artifact: { sha256: artifact.digests.sha256 ?? '' }, keys, signedAt: new Date(now) });
        if (!result.ok) throw new Error(`setup: evidence does not verify: ${JSON.stringify(result.reasons)}`);
        stored.push({ artifact, evidence: toStored({ body, result, source: 'attested', time: now, actor: ctx.actor.identity, expect: null }) });
        if (samples.length < 5) samples.push({ pae: pae(INTOTO_PAYLOAD_TYPE, payload), sig: envelope.signatures[0]!.sig, keyid: signer.keyid });
      }
    }
    await ctx.store.transaction(async (tx) => {
      for (const s of stored) await storeEvidence(ctx, tx, s.evidence, s.artifact);
    });
  }
  return samples;
}

/** `environments` adds lines under `environments:` (YAML, indented by two), e.g. `  prod: { policy: bench, from: [staging] }`. */
export async function setup(count: number, options: { environments?: string } = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'custody-bench-promote-'));
  const home = join(dir, '.custody');
  await writeFile(join(dir, 'kek'), randomBytes(32), { mode: 0o600 });
  process.env['CUSTODY_KEK_FILE'] = join(dir, 'kek');
  await initWorkspace(home, { identity: 'ci:deployer' });
  const config = join(home, 'custody.yaml');
  await writeFile(config, (await readFile(config, 'utf8')).replace('environments: {}\n', `environments:\n  bench: {}\n  bench-cli: { policy: bench }\n${options.environments ?? ''}`));
  await mkdir(join(home, 'policies'), { recursive: true });
  await writeFile(join(home, 'policies', 'bench.yaml'), POLICY);
  const ctx = await openWorkspace(home);
  for (const [name, purposes] of [['build-ci', ['attest']], ['scanner', ['attest']], ['receipts', ['promotion-receipt']], ['policy-signer', ['policy']]] as const) {
    await createKey(ctx, { name, purposes, owner: name === 'receipts' || name === 'policy-signer' ? 'ci:deployer' : `ci:${name}` });
  }
  await publishPolicies(ctx, { key: 'policy-signer' });
  const digests: string[] = [];
  for (let i = 0; i < count; i++) {
    const digest = `sha256:${createHash('sha256').update(`artifact ${i} ${dir}`).digest('hex')}`;
    await addArtifact(ctx, { digest, name: 'pkg:npm/acme-app', version: `1.${Math.floor(i / 1000)}.${i % 1000}`, labels: ['team=payments'], source: 'https://github.com/acme/app@3f2c1e9' });
    digests.push(digest);
  }
  const signers = { 'build-ci': (await loadSigner(ctx, 'build-ci', 'attest')).signer, scanner: (await loadSigner(ctx, 'scanner', 'attest')).signer };
  const samples = await attestAll(ctx, signers, digests, new Date().toISOString());
  const keys = toTrustedKeys(await ctx.store.read((tx) => tx.keys.list()));
  const { createPublicKey, generateKeyPairSync } = await import('node:crypto');
  return {
    dir,
    ctx,
    digests,
    crypto: {
      items: samples.map((s) => ({ pae: s.pae, sig: s.sig, key: createPublicKey(keys.byKeyid.get(s.keyid)!.publicKeyPem) })),
      receiptKey: generateKeyPairSync('ed25519').privateKey,
    },
  };
}

// ---------------------------------------------------------------- baselines

/** Raw SQLite: one small row per BEGIN IMMEDIATE … COMMIT, with the store's own commit settings (WAL, synchronous=FULL, its checkpoint interval). */
function rawCommits(dir: string, seconds: number): number {
  const db = new DatabaseSync(join(dir, `raw-${randomBytes(3).toString('hex')}.db`));
  db.exec('PRAGMA journal_mode = WAL');
  commitSettings(db);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  const row = 'x'.repeat(1024);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    db.exec('BEGIN IMMEDIATE');
    insert.run(row);
    db.exec('COMMIT');
    n++;
  }
  const rate = n / ((performance.now() - start) / 1000);
  db.close();
  return rate;
}

/** Raw crypto per promotion: the 5 evidence signatures verified and 1 receipt signed, with node:crypto directly. */
function rawCrypto(w: World, seconds: number): number {
  const receipt = Buffer.alloc(1500, 7);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    for (const i of w.crypto.items) if (!verify(null, i.pae, i.key, i.sig)) throw new Error('raw verify failed');
    sign(null, receipt, w.crypto.receiptKey);
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

// ---------------------------------------------------------------- runs

/**
 * Promotes `digests` with `callers` at once: caller k promotes every k-th
 * artifact, in version order, into `envOf(k)`. One caller is one `promote()`
 * after the other. Several are what a shared server sees, each into its own
 * environment (one promotion applies into an environment at a time, so callers
 * sharing one would mostly be superseded, by design); their write transactions
 * meet in the store's group commit and their evidence in the verification pool.
 */
async function promotions(w: World, digests: string[], callers: number, envOf: (caller: number) => string): Promise<{ rate: number; latencies: number[] }> {
  const latencies: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, k) => {
      for (let i = k; i < digests.length; i += callers) {
        const t = performance.now();
        const p = await promote(w.ctx, { artifact: digests[i]!, to: envOf(k) });
        latencies.push(performance.now() - t);
        if (p.state !== 'promoted') throw new Error(`bench promotion ${p.id} is ${p.state}: ${JSON.stringify(p.reasons)}`);
      }
    }),
  );
  return { rate: digests.length / ((performance.now() - start) / 1000), latencies };
}

const concurrentEnv = (k: number): string => `bench-c${k}`;

function cliLatencies(w: World, digests: string[]): number[] {
  const out: number[] = [];
  for (const d of digests) {
    const t = performance.now();
    const r = spawnSync(BIN, ['promote', d, '--to', 'bench-cli', '--home', w.ctx.home], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/', CUSTODY_KEK_FILE: process.env['CUSTODY_KEK_FILE'] ?? '' }, encoding: 'utf8' });
    out.push(performance.now() - t);
    if (r.status !== 0) throw new Error(`custody promote exited ${r.status}: ${r.stderr}`);
  }
  return out;
}

async function main(): Promise<void> {
  ensureBuilt();
  const perRound = Math.ceil(PROMOTIONS / RUNS);
  const total = 20 + WARMUP + perRound * RUNS * 2 + CLI_RUNS;
  console.log(`setting up ${total} artifacts with 5 signed attestations each…`);
  const concurrentEnvs = Array.from({ length: CONCURRENCY }, (_, k) => `  ${concurrentEnv(k)}: { policy: bench }\n`).join('');
  const w = await setup(total, { environments: concurrentEnvs });
  let closed = false;
  try {
    const rows: { rate: number; concurrent: number; commits: number; crypto: number }[] = [];
    const latencies: number[] = [];
    const concurrentLatencies: number[] = [];
    // Warm-up: compile the policy, load the keys, fill the statement caches.
    await promotions(w, w.digests.slice(0, 20), 1, () => 'bench-cli');
    if (WARMUP > 0) {
      const warm = await promotions(w, w.digests.slice(20, 20 + WARMUP), CONCURRENCY, concurrentEnv);
      console.log(`warm-up: ${WARMUP} promotions by ${CONCURRENCY} callers at ${warm.rate.toFixed(0)}/s (not counted)`);
    }
    for (let r = 0; r < RUNS; r++) {
      const from = 20 + WARMUP + r * 2 * perRound;
      const p = await promotions(w, w.digests.slice(from, from + perRound), 1, () => 'bench');
      latencies.push(...p.latencies);
      const c = await promotions(w, w.digests.slice(from + perRound, from + 2 * perRound), CONCURRENCY, concurrentEnv);
      concurrentLatencies.push(...c.latencies);
      rows.push({ rate: p.rate, concurrent: c.rate, commits: rawCommits(w.dir, 2), crypto: rawCrypto(w, 2) });
    }
    const rate = median(rows.map((x) => x.rate));
    const concurrent = median(rows.map((x) => x.concurrent));
    const commits = median(rows.map((x) => x.commits));
    const crypto = median(rows.map((x) => x.crypto));
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    // The CLI runs as in CI: alone on the workspace. While this process held a connection open, the WAL
    // outlived every CLI process and one in ~60 paid SQLite's auto-checkpoint of the others' pages; alone,
    // each pays its own checkpoint on close (measured inside its time).
    await w.ctx.close();
    closed = true;
    const cli = cliLatencies(w, w.digests.slice(-CLI_RUNS));
    const cliP50 = percentile(cli, 50);
    const cliP90 = percentile(cli, 90);
    const cliP99 = percentile(cli, 99);
    report('promote: library, embedded store (5 evidence, 10 gates, signed policy set, none target)', [
      ['rounds', `${RUNS} × ${perRound} promotions, each of a distinct artifact`],
      ['promotions/s, one caller', `${rate.toFixed(0)} (per round: ${rows.map((x) => x.rate.toFixed(0)).join(', ')})`],
      [`promotions/s, ${CONCURRENCY} callers`, `${concurrent.toFixed(0)} (per round: ${rows.map((x) => x.concurrent.toFixed(0)).join(', ')}; each into its own environment; call p50 / p99 ${percentile(concurrentLatencies, 50).toFixed(1)} / ${percentile(concurrentLatencies, 99).toFixed(1)} ms)`],
      ['raw SQLite commits/s', `${commits.toFixed(0)} (one 1 KiB row per transaction, WAL, synchronous=FULL, the store's checkpoint interval)`],
      ['raw crypto promotions/s', `${crypto.toFixed(0)} (5 Ed25519 verifications + 1 signature each)`],
      ['ratio to raw commits', `${(rate / commits).toFixed(3)} one caller, ${(concurrent / commits).toFixed(3)} ${CONCURRENCY} callers (with the none target a promotion is one write transaction: the plan, 5 transition log entries, the receipt and its entry, the pointer)`],
      ['ratio to raw crypto', `${(rate / crypto).toFixed(3)} one caller, ${(concurrent / crypto).toFixed(3)} ${CONCURRENCY} callers (raw crypto on one thread)`],
      ['library call p50 / p99', `${p50.toFixed(2)} ms / ${p99.toFixed(2)} ms`],
      ['CLI process p50 / p90 / p99', `${cliP50.toFixed(1)} ms / ${cliP90.toFixed(1)} ms / ${cliP99.toFixed(1)} ms over ${cli.length} runs of bin/custody promote (dist/, startup snapshot)`],
    ]);
    const best = Math.max(rate, concurrent);
    console.log(`  ${goal('throughput', best >= 1000, `${best.toFixed(0)} promotions/s with ${concurrent >= rate ? `${CONCURRENCY} callers` : 'one caller'} (goal ≥ 1,000); ${rate.toFixed(0)}/s one caller at a time`)}`);
    console.log(`  ${goal('library latency', p99 < 20, `p99 ${p99.toFixed(2)} ms (goal < 20 ms)`)}`);
    console.log(`  ${goal('CLI latency', cliP99 < 150, `p99 ${cliP99.toFixed(1)} ms (goal < 150 ms, Node start-up included)`)}`);
  } finally {
    if (!closed) await w.ctx.close();
    await rm(w.dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
