/**
 * bench/verify: 10,000 DSSE bundles (Ed25519, ~2 KB SLSA provenance predicate) through Custody's
 * verification pipeline, against raw node:crypto verify over the same PAE bytes
 * and against @sigstore/verify over the same bundles, single-threaded, in the
 * same run; then the same bundles through Custody's worker pool. Method:
 * bench/README.md.
 */
import { createHash, verify } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { bundleFromJSON } from '@sigstore/bundle';
import { PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { VerifyPool, type WireRequest } from '../src/adapters/verify-pool.ts';
import { pae } from '../src/core/dsse.ts';
import { PREDICATE_TYPES, buildStatement } from '../src/core/intoto.ts';
import { toTrustedKeys } from '../src/core/key.ts';
import { verifyEvidence } from '../src/core/verify/index.ts';
import { testKey } from '../test/fixtures/keys.ts';
import { attestationBundle, randomArtifact } from '../test/fixtures/evidence.ts';
import { goal, median, percentile, report } from './lib.ts';

const N = Number(process.env['BENCH_BUNDLES'] ?? 10_000);
// Many short, paired slices rather than a few long rounds (as bench/sign does).
const PAIRS = Number(process.env['BENCH_RUNS'] ?? 3) * 8;
const SLICE_MS = Number(process.env['BENCH_SLICE_MS'] ?? 150);
const MAX_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------- input

/** A SLSA Provenance v1 predicate shaped like GitHub Actions' (about 2 KB), different for every run. */
function provenance(run: number): Record<string, unknown> {
  const commit = createHash('sha1').update(String(run)).digest('hex');
  const repo = 'https://github.com/acme/app';
  return {
    buildDefinition: {
      buildType: 'https://actions.github.io/buildtypes/workflow/v1',
      externalParameters: { workflow: { ref: 'refs/heads/main', repository: repo, path: '.github/workflows/release.yml' } },
      internalParameters: {
        github: { event_name: 'push', repository_id: '123456789', repository_owner_id: '987654', runner_environment: 'github-hosted' },
      },
      resolvedDependencies: [
        { uri: `git+${repo}@refs/heads/main`, digest: { gitCommit: commit } },
        { uri: 'pkg:npm/left-pad@1.3.0', digest: { sha512: createHash('sha512').update(`dep${run}`).digest('hex') } },
        { uri: 'pkg:npm/lodash@4.17.21', digest: { sha512: createHash('sha512').update(`dep2${run}`).digest('hex') } },
        { uri: 'pkg:npm/semver@7.6.3', digest: { sha512: createHash('sha512').update(`dep3${run}`).digest('hex') } },
        { uri: 'pkg:github/actions/setup-node@v4', digest: { gitCommit: createHash('sha1').update(`action${run}`).digest('hex') } },
      ],
    },
    runDetails: {
      builder: { id: 'https://github.com/actions/runner/github-hosted' },
      metadata: { invocationId: `${repo}/actions/runs/${9_000_000_000 + run}/attempts/1`, startedOn: '2026-03-01T12:00:00Z', finishedOn: '2026-03-01T12:04:31Z' },
      byproducts: [
        { name: 'sbom.spdx.json', digest: { sha256: createHash('sha256').update(`sbom${run}`).digest('hex') } },
        { name: 'test-results.xml', digest: { sha256: createHash('sha256').update(`tests${run}`).digest('hex') } },
        { name: 'coverage.lcov', digest: { sha256: createHash('sha256').update(`cov${run}`).digest('hex') } },
      ],
    },
  };
}

const key = testKey({ algorithm: 'ed25519' });
const artifact = randomArtifact();
const digests = { sha256: artifact.sha256, sha512: artifact.sha512 };
const signedAt = new Date('2026-03-01T00:00:00Z');
console.log(`signing ${N} DSSE bundles (Ed25519, ~2 KB SLSA provenance predicate)…`);
const texts: string[] = [];
for (let i = 0; i < N; i++) texts.push(JSON.stringify(await attestationBundle(buildStatement([{ name: 'pkg:npm/acme-app@1.4.2', digest: digests }], PREDICATE_TYPES.provenance, provenance(i)), key.signer)));
// The raw baseline gets what the pipeline has to work out for itself: PAE bytes and signature, ready.
const raw = texts.map((t) => {
  const env = (JSON.parse(t) as { dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] } }).dsseEnvelope;
  return { pae: pae(env.payloadType, Buffer.from(env.payload, 'base64')), sig: Buffer.from(env.signatures[0]!.sig, 'base64') };
});
const avgBytes = texts.reduce((n, t) => n + t.length, 0) / N;
const avgPae = raw.reduce((n, r) => n + r.pae.length, 0) / N;

const trusted = toTrustedKeys([key.record]);
const root = TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] });
const sigstoreVerifier = new Verifier(
  toTrustMaterial(root, { [key.record.keyid]: { rawBytes: key.publicKey.export({ type: 'spki', format: 'der' }), keyDetails: PublicKeyDetails.PKIX_ED25519 } }),
  { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
);

// ---------------------------------------------------------------- modes

type Mode = (i: number) => boolean;

const single: Record<string, Mode> = {
  raw: (i) => verify(null, raw[i]!.pae, key.publicKey, raw[i]!.sig),
  custody: (i) => verifyEvidence({ input: texts[i]!, maxBytes: MAX_BYTES, artifact: digests, keys: trusted, signedAt, predicateType: PREDICATE_TYPES.provenance }).ok,
  sigstore: (i) => {
    sigstoreVerifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(texts[i]!))));
    return true;
  },
};

const requests: WireRequest[] = texts.map((input) => ({ input, maxBytes: MAX_BYTES, artifact: digests, signedAt: signedAt.toISOString(), predicateType: PREDICATE_TYPES.provenance }));

interface Slice {
  perSecond: number;
  latenciesUs: number[];
  /** CPU time of the whole process (every thread) per bundle: immune to a neighbour's load, unlike wall time. */
  cpuUs: number;
  /** CPU seconds per wall second over the slice. */
  cores: number;
}

function cpuNow(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

let cursor = 0;

/** One mode for one time slice, walking the bundles round-robin; every call is timed. */
function sliceSingle(fn: Mode, ms: number): Slice {
  const latenciesUs: number[] = [];
  const cpu0 = cpuNow();
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    const i = cursor++ % N;
    const t0 = performance.now();
    if (!fn(i)) throw new Error(`bundle ${i} did not verify`);
    now = performance.now();
    latenciesUs.push((now - t0) * 1000);
  }
  const cpu = cpuNow() - cpu0;
  return { perSecond: latenciesUs.length / ((now - start) / 1000), latenciesUs, cpuUs: cpu / latenciesUs.length, cores: cpu / 1000 / (now - start) };
}

/** The pool over a batch sized to take about one slice; in a batch the per-bundle latency is the amortised wall time. */
async function slicePool(pool: VerifyPool, count: number): Promise<Slice> {
  const from = cursor % N;
  cursor += count;
  const batch = Array.from({ length: count }, (_, k) => requests[(from + k) % N]!);
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const results = await pool.verifyMany([key.record], batch);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuNow() - cpu0;
  if (!results.every((r) => r.ok)) throw new Error('a bundle did not verify in the pool');
  return { perSecond: count / seconds, latenciesUs: [(seconds / count) * 1e6], cpuUs: cpu / count, cores: cpu / 1e6 / seconds };
}

// ---------------------------------------------------------------- run

const cpus = availableParallelism();
const poolStart = performance.now();
const pool = new VerifyPool(cpus);
await pool.verifyMany([key.record], requests.slice(0, 64));
const poolStartup = performance.now() - poolStart;

// 1. One full pass of all N bundles per mode (also the JIT warm-up).
const full: Record<string, number> = {};
for (const [name, fn] of Object.entries(single)) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) if (!fn(i)) throw new Error(`${name}: bundle ${i} did not verify`);
  full[name] = N / ((performance.now() - t0) / 1000);
}
{
  const t0 = performance.now();
  const results = await pool.verifyMany([key.record], requests);
  if (!results.every((r) => r.ok)) throw new Error('pool: a bundle did not verify');
  full['pool'] = N / ((performance.now() - t0) / 1000);
}
console.log(`full pass of ${N}: ${Object.entries(full).map(([k, v]) => `${k} ${v.toFixed(0)}/s`).join(', ')}`);

// 2. Paired short slices: every pair runs all four modes back to back, in a rotating order,
//    so a neighbour's CPU burst on this shared machine spoils a pair, not the median.
const names = ['raw', 'custody', 'sigstore', 'pool'];
const pairs: Record<string, Slice>[] = [];
for (let p = 0; p < PAIRS; p++) {
  const pair: Record<string, Slice> = {};
  for (let k = 0; k < names.length; k++) {
    const name = names[(p + k) % names.length]!;
    pair[name] = name === 'pool' ? await slicePool(pool, Math.max(256, Math.round((full['pool'] * SLICE_MS) / 1000))) : sliceSingle(single[name]!, SLICE_MS);
  }
  pairs.push(pair);
}
await pool.close();

const rate = (m: string) => median(pairs.map((p) => p[m]!.perSecond));
const cpuUs = (m: string) => median(pairs.map((p) => p[m]!.cpuUs));
const cores = (m: string) => median(pairs.map((p) => p[m]!.cores));
const p50 = (m: string) => percentile(pairs.flatMap((p) => p[m]!.latenciesUs), 50);
const ratios = (a: string, b: string) => pairs.map((p) => p[a]!.perSecond / p[b]!.perSecond).sort((x, y) => x - y);
const ratio = (a: string, b: string) => median(ratios(a, b));
const spread = (a: string, b: string) => {
  const r = ratios(a, b);
  return `${ratio(a, b).toFixed(2)}x (middle half ${percentile(r, 25).toFixed(2)}-${percentile(r, 75).toFixed(2)})`;
};

report(`verify DSSE bundles (Ed25519; bundle ~${(avgBytes / 1024).toFixed(1)} KiB, PAE ~${(avgPae / 1024).toFixed(1)} KiB); median of ${PAIRS} paired ${SLICE_MS} ms slices`, [
  ['raw node:crypto verify (PAE ready)', `${rate('raw').toFixed(0)}/s, p50 ${p50('raw').toFixed(1)} us  (full pass of ${N}: ${full['raw']!.toFixed(0)}/s)`],
  ['Custody pipeline, 1 thread', `${rate('custody').toFixed(0)}/s, p50 ${p50('custody').toFixed(1)} us  (full pass: ${full['custody']!.toFixed(0)}/s)`],
  ['@sigstore/verify, 1 thread', `${rate('sigstore').toFixed(0)}/s, p50 ${p50('sigstore').toFixed(1)} us  (full pass: ${full['sigstore']!.toFixed(0)}/s)`],
  [`Custody pool, ${cpus} workers`, `${rate('pool').toFixed(0)}/s, ${p50('pool').toFixed(1)} us per bundle amortised  (full pass: ${full['pool'].toFixed(0)}/s; start-up ${poolStartup.toFixed(0)} ms once per process)`],
  ['Custody 1 thread / raw', spread('custody', 'raw')],
  ['@sigstore/verify / raw', spread('sigstore', 'raw')],
  ['Custody pool / raw 1 thread', spread('pool', 'raw')],
  ['Custody pool / @sigstore/verify', spread('pool', 'sigstore')],
]);
// CPU per bundle does not depend on what else the machine runs: what a free machine of `cpus` cores would do.
const projected = (cpus * 1e6) / cpuUs('pool');
report('CPU time per bundle (all threads; unaffected by neighbours)', [
  ['raw node:crypto verify', `${cpuUs('raw').toFixed(1)} us`],
  ['Custody pipeline, 1 thread', `${cpuUs('custody').toFixed(1)} us  (${(cpuUs('raw') / cpuUs('custody')).toFixed(2)}x raw)`],
  ['@sigstore/verify, 1 thread', `${cpuUs('sigstore').toFixed(1)} us  (${(cpuUs('raw') / cpuUs('sigstore')).toFixed(2)}x raw)`],
  [`Custody pool, ${cpus} workers`, `${cpuUs('pool').toFixed(1)} us, on ${cores('pool').toFixed(2)} of ${cpus} cores this run`],
  [`pool on ${cpus} free cores (projected)`, `${projected.toFixed(0)}/s = ${(projected / (1e6 / cpuUs('raw'))).toFixed(2)}x raw, ${(projected / (1e6 / cpuUs('sigstore'))).toFixed(2)}x @sigstore/verify`],
]);

// Verdicts on the measures a neighbour's load cannot move: CPU time per bundle and p50 latency for
// one thread; for the pool, the wall-clock figure of this run and the projection on free cores.
const cpuRatio = cpuUs('raw') / cpuUs('custody');
const p50Ratio = p50('raw') / p50('custody');
console.log(`\n${goal('pipeline single-threaded at least 0.9x raw', cpuRatio >= 0.9 && p50Ratio >= 0.9, `${cpuRatio.toFixed(2)}x by CPU time, ${p50Ratio.toFixed(2)}x by p50 (wall-clock median ${ratio('custody', 'raw').toFixed(2)}x)`)}`);
const poolRaw = projected / (1e6 / cpuUs('raw'));
const poolSig = projected / (1e6 / cpuUs('sigstore'));
console.log(goal('pool at least 1.6x raw single-threaded', poolRaw >= 1.6, `${poolRaw.toFixed(2)}x projected on ${cpus} free cores; ${ratio('pool', 'raw').toFixed(2)}x measured on ${cores('pool').toFixed(2)} cores this run`));
console.log(goal('pool at least 1.8x @sigstore/verify', poolSig >= 1.8, `${poolSig.toFixed(2)}x projected; ${ratio('pool', 'sigstore').toFixed(2)}x measured this run`));
