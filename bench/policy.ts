/**
 * bench/policy: `evaluate()` of a 20-gate policy over 50 verified statements,
 * 100,000 decisions, against raw @bufbuild/cel evaluation of the same CEL
 * expressions with the same bindings, in the same run. Method: bench/README.md.
 */
import { createHash } from 'node:crypto';
import { celEnv, parse, plan, type CelInput } from '@bufbuild/cel';
import { compilePolicy, evaluate, resolvePolicySet, type PolicyInput } from '../src/core/policy/index.ts';
import { newInputStats, toCel } from '../src/core/policy/cel.ts';
import type { EvidenceItem } from '../src/core/evidence.ts';
import { goal, median, percentile, report } from './lib.ts';

const DECISIONS = Number(process.env['BENCH_DECISIONS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

// ---------------------------------------------------------------- the policy: 20 gates, 15 CEL expressions

const TYPES = {
  provenance: 'https://slsa.dev/provenance/v1',
  tests: 'https://in-toto.io/attestation/test-result/v0.1',
  vulns: 'https://in-toto.io/attestation/vulns/v0.1',
  spdx: 'https://spdx.dev/Document/v2.3',
  cyclonedx: 'https://cyclonedx.org/bom',
  vsa: 'https://slsa.dev/verification_summary/v1',
  link: 'https://in-toto.io/attestation/link/v0.3',
  release: 'https://in-toto.io/attestation/release/v0.1',
  scai: 'https://in-toto.io/attestation/scai/attribute-report/v0.2',
  trace: 'https://in-toto.io/attestation/runtime-trace/v0.1',
} as const;

const WHERE: Record<keyof typeof TYPES, string> = {
  provenance: 'predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app" && predicate.runDetails.builder.id.startsWith("https://github.com/")',
  tests: 'predicate.result == "PASSED" && size(predicate.failedTests) == 0',
  vulns: 'predicate.scanner.result.all(v, v.severity.all(s, !(s.score in ["HIGH", "CRITICAL"])))',
  spdx: 'predicate.spdxVersion.startsWith("SPDX-2.") && size(predicate.packages) > 0',
  cyclonedx: 'predicate.bomFormat == "CycloneDX" && predicate.components.exists(c, c.name == "app")',
  vsa: 'predicate.verificationResult == "PASSED" && "SLSA_BUILD_LEVEL_3" in predicate.verifiedLevels',
  link: 'predicate.name == "build" && size(predicate.materials) >= 1',
  release: 'predicate.purl.startsWith("pkg:npm/") && predicate.version.matches("^[0-9]+\\\\.[0-9]+\\\\.[0-9]+$")',
  scai: 'predicate.attributes.exists(a, a.attribute == "REPRODUCIBLE")',
  trace: 'predicate.monitor.type == "tetragon" && !predicate.monitoredProcesses.exists(p, p.name == "nc")',
};

const RULES = [
  'artifact.labels.tier == "critical" && artifact.labels.team == "payments"',
  'artifact.source.repository == "https://github.com/acme/app"',
  'evidence.exists(e, e.predicateType == "https://slsa.dev/provenance/v1")',
  'actor.identity.startsWith("ci:") && "deployer" in actor.roles',
  '!artifact.version.contains("-") && environment.name == "prod"',
];

function policyYaml(): string {
  const gates: string[] = [];
  for (const [name, type] of Object.entries(TYPES)) {
    gates.push(`  ${name}:\n    require:\n      predicateType: ${type}\n      signers: [{ key: signer-${name} }]\n      where: '${WHERE[name as keyof typeof TYPES].replace(/'/g, "''")}'`);
  }
  RULES.forEach((expr, i) => gates.push(`  rule-${i + 1}:\n    rule:\n      expr: '${expr.replace(/'/g, "''")}'`));
  gates.push('  soak:\n    from: { soak: 24h }');
  gates.push('  approvals:\n    approvals: { count: 1 }');
  gates.push('  freeze:\n    freeze: { timeZone: Europe/Berlin, weekly: [{ from: "fri 16:00", to: "mon 07:00" }] }');
  gates.push('  versioning:\n    versioning: { mustBeNewer: true }');
  gates.push(`  second-provenance:\n    require:\n      predicateType: ${TYPES.provenance}\n      signers: [{ key: signer-provenance }, { key: signer-release }]\n      threshold: 1`);
  return `apiVersion: custody.dev/v1\nkind: Policy\nname: bench\ngates:\n${gates.join('\n')}\n`;
}

// ---------------------------------------------------------------- 50 verified statements, 5 per type

const PREDICATES: Record<keyof typeof TYPES, (i: number) => Record<string, unknown>> = {
  provenance: () => ({
    buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1', externalParameters: { workflow: { repository: 'https://github.com/acme/app', ref: 'refs/heads/main', path: '.github/workflows/release.yml' } } },
    runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' }, metadata: { invocationId: 'https://github.com/acme/app/actions/runs/1' } },
  }),
  tests: (i) => ({ result: 'PASSED', configuration: [{ uri: 'https://github.com/acme/app/blob/main/ci.yml' }], passedTests: Array.from({ length: 20 }, (_, j) => `test-${i}-${j}`), failedTests: [] }),
  vulns: (i) => ({
    scanner: { uri: 'pkg:github/aquasecurity/trivy@0.50.0', result: Array.from({ length: 10 }, (_, j) => ({ id: `CVE-2026-${i}${j}`, severity: [{ method: 'nvd', score: j % 2 ? 'LOW' : 'MEDIUM' }] })) },
    metadata: { scanStartedOn: '2026-03-10T00:00:00Z', scanFinishedOn: '2026-03-10T00:01:00Z' },
  }),
  spdx: () => ({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'app', packages: Array.from({ length: 10 }, (_, j) => ({ name: `dep-${j}`, versionInfo: '1.0.0' })) }),
  cyclonedx: () => ({ bomFormat: 'CycloneDX', specVersion: '1.5', components: Array.from({ length: 10 }, (_, j) => ({ type: 'library', name: j === 9 ? 'app' : `dep-${j}` })) }),
  vsa: () => ({ verifier: { id: 'https://custody.dev' }, verificationResult: 'PASSED', verifiedLevels: ['SLSA_BUILD_LEVEL_3', 'CUSTODY_ENV_STAGING'] }),
  link: () => ({ name: 'build', command: ['npm', 'run', 'build'], materials: [{ uri: 'git+https://github.com/acme/app', digest: { sha1: 'abc' } }] }),
  release: () => ({ purl: 'pkg:npm/acme-app@1.4.2', version: '1.4.2' }),
  scai: () => ({ attributes: [{ attribute: 'REPRODUCIBLE' }, { attribute: 'HERMETIC' }] }),
  trace: () => ({ monitor: { type: 'tetragon' }, monitoredProcesses: Array.from({ length: 5 }, (_, j) => ({ name: `proc-${j}` })) }),
};

function statements(digest: string): EvidenceItem[] {
  const out: EvidenceItem[] = [];
  for (const [name, type] of Object.entries(TYPES) as [keyof typeof TYPES, string][]) {
    for (let i = 0; i < 5; i++) {
      const predicate = PREDICATES[name](i);
      out.push({
        digest: `sha256:${createHash('sha256').update(`${name}${i}`).digest('hex')}`,
        predicateType: type,
        statement: { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'app', digest: { sha256: digest.slice(7) } }], predicateType: type, predicate },
        signatures: [{ signer: { keyid: createHash('sha256').update(`signer-${name}`).digest('hex'), keyName: `signer-${name}`, keyVersion: 1, owner: 'ci:acme' }, ok: true, reasons: [], signedAt: '2026-03-10T00:00:00.000Z' }],
        verified: true,
        reasons: [],
        storedAt: '2026-03-10T00:00:00.000Z',
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------- setup

const resolved = resolvePolicySet([{ path: 'bench.yaml', text: policyYaml() }]);
if (resolved.problems.length > 0) throw new TypeError(resolved.problems.map((p) => p.message).join('\n'));
const compiled = compilePolicy(resolved.policies['bench'] ?? (undefined as never));
if (!compiled.ok) throw new TypeError(compiled.problems.map((p) => p.message).join('\n'));
const policy = compiled.policy;
const digest = `sha256:${'ab'.repeat(32)}` as const;
const evidence = statements(digest);
const input: PolicyInput = {
  time: new Date('2026-03-11T10:00:00Z'),
  kind: 'promotion',
  environment: { name: 'prod', from: ['staging'] },
  artifact: { digest, name: 'pkg:npm/acme-app', version: '1.4.2', labels: { tier: 'critical', team: 'payments' }, source: { repository: 'https://github.com/acme/app', commit: 'abcdef1' }, createdBy: 'ci:acme' },
  actor: { identity: 'ci:acme/app', roles: ['deployer'] },
  evidence,
  current: { version: '1.4.1' },
  history: [{ environment: 'staging', event: 'promoted', time: '2026-03-09T10:00:00Z' }],
  approvals: [{ identity: 'bob@acme.example', roles: ['approver'] }],
  exceptions: [],
};
const check = evaluate(policy, input);
if (check.outcome !== 'pass' || check.gates.length !== 20) throw new TypeError(`the benchmark decision should pass 20 gates: ${check.summary}`);

// The raw baseline: the same expressions, planned by the same library, over the
// same bindings, evaluated as many times as one decision evaluates them
// (every where once per statement of its type, every rule once).
const env = celEnv();
const stats = newInputStats();
const global: Record<string, unknown> = {
  artifact: toCel({ ...input.artifact, createdAt: null }, stats),
  evidence: evidence.map((e) => toCel({ digest: e.digest, predicateType: e.predicateType, subject: e.statement?.subject, predicate: e.statement?.predicate, signers: [], storedAt: null }, stats)),
  environment: toCel(input.environment, stats),
  current: toCel(input.current, stats),
  actor: toCel({ ...input.actor, groups: [] }, stats),
  request: toCel({ time: input.time, kind: 'promotion' }, stats),
  history: toCel(input.history, stats),
  approvals: toCel(input.approvals, stats),
  params: toCel({}, stats),
};
const raw: { run: (b: Record<string, CelInput>) => unknown; bindings: Record<string, CelInput> }[] = [];
for (const [name, type] of Object.entries(TYPES) as [keyof typeof TYPES, string][]) {
  const p = plan(env, parse(WHERE[name]));
  for (const e of evidence.filter((x) => x.predicateType === type)) {
    const statement = toCel(e.statement, stats) as Map<string, unknown>;
    raw.push({ run: p, bindings: { ...global, statement, predicate: statement.get('predicate'), signers: toCel([], stats) } as Record<string, CelInput> });
  }
}
for (const expr of RULES) raw.push({ run: plan(env, parse(expr)), bindings: global as Record<string, CelInput> });
for (const r of raw) if (r.run(r.bindings) !== true) throw new TypeError('every raw expression should be true');

// ---------------------------------------------------------------- measure

function decisions(n: number): number[] {
  const times = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    evaluate(policy, input);
    times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return times;
}

function rawSets(n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) for (const r of raw) r.run(r.bindings);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

decisions(2000);
rawSets(2000);
const rounds: { p50: number; p99: number; decisionRate: number; rawRate: number }[] = [];
for (let round = 0; round < RUNS; round++) {
  // Interleaved, so drift on a shared machine hits both alike.
  const t0 = process.hrtime.bigint();
  const times = decisions(DECISIONS);
  const engineSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rawSeconds = rawSets(DECISIONS);
  rounds.push({ p50: percentile(times, 50), p99: percentile(times, 99), decisionRate: DECISIONS / engineSeconds, rawRate: DECISIONS / rawSeconds });
}
const p50 = median(rounds.map((r) => r.p50));
const p99 = median(rounds.map((r) => r.p99));
const decisionRate = median(rounds.map((r) => r.decisionRate));
const rawRate = median(rounds.map((r) => r.rawRate));
const ratio = median(rounds.map((r) => r.decisionRate / r.rawRate));

report(`policy evaluate: 20 gates, 50 verified statements, ${DECISIONS.toLocaleString('en')} decisions × ${RUNS} rounds (median)`, [
  ['CEL evaluations per decision', `${raw.length} (10 where × 5 statements, 5 rules)`],
  ['decision latency', `p50 ${(p50 * 1000).toFixed(0)} µs, p99 ${(p99 * 1000).toFixed(0)} µs`],
  ['decisions/s', decisionRate.toFixed(0)],
  ['raw @bufbuild/cel sets/s', `${rawRate.toFixed(0)} (the same ${raw.length} evaluations, bindings prepared once)`],
  ['ratio to raw', `${ratio.toFixed(2)}x`],
]);
console.log(`\n${goal('p50 under 2 ms per decision', p50 < 2, `${(p50 * 1000).toFixed(0)} µs`)}`);
console.log(goal('at least 0.5x the raw CEL rate', ratio >= 0.5, `${ratio.toFixed(2)}x`));
