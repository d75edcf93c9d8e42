/**
 * Policy unit tests (`custody policy test`), like `opa test`: each case is an
 * input written compactly in YAML and the decision it must produce, down to
 * single gates. Evidence in a fixture is already "verified" (or not): the
 * cases test the policy, not the signature code.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical.ts';
import type { DigestString } from '../digest.ts';
import type { EvidenceItem, SignatureCheck } from '../evidence.ts';
import type { CompiledPolicy } from './compile.ts';
import { evaluate } from './engine.ts';
import type { ParsedTest } from './resolve.ts';
import type { CaseInput, TestCase } from './schema.ts';
import type { Decision, PolicyException, PolicyInput } from './types.ts';

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** A stable keyid for a key named in a fixture, so `keyid:` and `key:` fixtures can refer to the same key. */
export function fixtureKeyid(key: string): string {
  return sha256(`custody-fixture-key:${key}`);
}

export function fixtureInput(c: CaseInput, environment: string, from: readonly string[]): PolicyInput {
  const a = c.artifact;
  const digest: DigestString = (a.digest as DigestString | undefined) ?? `sha256:${sha256(`${a.name}@${a.version}`)}`;
  const hex = digest.slice('sha256:'.length);
  const evidence: EvidenceItem[] = (c.evidence ?? []).map((e, i) => {
    const subjectOk = e.subjectDigest === undefined || e.subjectDigest === digest;
    const signatures: SignatureCheck[] = e.signers.map((s) => {
      const at = s.key?.lastIndexOf('@') ?? -1;
      const keyName = s.key === undefined ? undefined : at > 0 ? s.key.slice(0, at) : s.key;
      const keyVersion = s.key !== undefined && at > 0 ? Number(s.key.slice(at + 1)) : undefined;
      const keyid = s.keyid ?? fixtureKeyid(s.key ?? `${s.identity ?? ''}|${s.issuer ?? ''}`);
      const ok = s.valid ?? true;
      return {
        signer: {
          keyid,
          ...(keyName === undefined ? {} : { keyName }),
          ...(keyVersion === undefined || Number.isNaN(keyVersion) ? {} : { keyVersion }),
          ...(s.identity === undefined ? {} : { certificateIdentity: s.identity }),
          ...(s.issuer === undefined ? {} : { certificateIssuer: s.issuer }),
          ...(s.owner === undefined ? {} : { owner: s.owner }),
        },
        ok,
        reasons: ok ? [] : [{ code: 'SIGNATURE_INVALID', message: s.reason ?? 'the signature did not verify' }],
        signedAt: c.time,
      };
    });
    const verified = subjectOk && signatures.some((s) => s.ok);
    const subject = e.subjectDigest ?? digest;
    return {
      digest: `sha256:${sha256(`${i}:${canonicalJson(e)}`)}`,
      predicateType: e.predicateType,
      statement: {
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: a.name, digest: { sha256: subject.slice('sha256:'.length) } }],
        predicateType: e.predicateType,
        predicate: e.predicate ?? {},
      },
      signatures,
      verified,
      reasons: subjectOk ? [] : [{ code: 'SUBJECT_MISMATCH', message: `the statement is about ${subject}, not ${digest}` }],
      storedAt: c.time,
    };
  });
  const exceptions: PolicyException[] = (c.exceptions ?? []).map((x, i) => {
    const approvedAt = x.approvedAt ?? x.createdAt ?? c.time;
    return {
      id: x.id ?? `ex-${i + 1}`,
      environment: x.environment ?? environment,
      gates: x.gates,
      artifact: x.artifact ?? digest,
      justification: x.justification ?? 'test fixture',
      requestedBy: x.requestedBy,
      createdAt: x.createdAt ?? approvedAt,
      expiresAt: x.expiresAt,
      approvedBy: x.approvedBy,
      approverRoles: x.approverRoles ?? ['approver'],
      approvedAt,
      revokedAt: x.revokedAt ?? null,
      revokedBy: x.revokedAt === undefined ? null : 'fixture',
    };
  });
  return {
    time: new Date(c.time),
    kind: c.kind ?? 'promotion',
    environment: { name: environment, from },
    artifact: {
      digest,
      name: a.name,
      version: a.version,
      digests: { sha256: hex },
      labels: a.labels ?? {},
      source: a.source ? { ...(a.source.repository === undefined ? {} : { repository: a.source.repository }), ...(a.source.commit === undefined ? {} : { commit: a.source.commit }) } : null,
      ...(a.createdBy === undefined ? {} : { createdBy: a.createdBy }),
    },
    actor: { identity: c.actor?.identity ?? 'ci@example.com', roles: c.actor?.roles ?? ['deployer'], groups: c.actor?.groups ?? [] },
    evidence,
    current: c.current ? { version: c.current.version, ...(c.current.digest === undefined ? {} : { digest: c.current.digest }), ...(c.current.since === undefined ? {} : { since: c.current.since }) } : null,
    history: (c.history ?? []).map((h) => ({ environment: h.environment, event: h.event, time: h.time, ...(h.version === undefined ? {} : { version: h.version }) })),
    approvals: (c.approvals ?? []).map((x) => ({ identity: x.identity, roles: x.roles ?? ['approver'], groups: x.groups ?? [], ...(x.time === undefined ? {} : { time: x.time }) })),
    exceptions,
  };
}

/** What differs between the decision and the case's expectations; empty when it passes. */
export function checkExpectations(t: TestCase, d: Decision): string[] {
  const out: string[] = [];
  const e = t.expect;
  if (d.outcome !== e.outcome) out.push(`outcome: expected ${e.outcome}, got ${d.outcome} (${d.summary})`);
  for (const [name, want] of Object.entries(e.gates ?? {})) {
    const g = d.gates.find((x) => x.name === name);
    if (!g) out.push(`gate ${name}: expected ${want}, but the decision has no such gate (it has ${d.gates.map((x) => x.name).join(', ')})`);
    else if (g.outcome !== want) out.push(`gate ${name}: expected ${want}, got ${g.outcome}${g.reasons.length ? ` (${g.reasons.map((r) => r.message).join('; ')})` : ''}`);
  }
  for (const [name, text] of Object.entries(e.reasons ?? {})) {
    const g = d.gates.find((x) => x.name === name);
    const all = g?.reasons.map((r) => r.message).join('; ') ?? '';
    if (!all.includes(text)) out.push(`gate ${name}: reasons should mention "${text}"; they are: ${all || '(none)'}`);
  }
  if (e.tier !== undefined && d.tier !== e.tier) out.push(`tier: expected ${String(e.tier)}, got ${String(d.tier)}`);
  if (e.fastTrack !== undefined) {
    const used = d.fastTrack.map((f) => f.name).sort();
    if (canonicalJson(used) !== canonicalJson([...e.fastTrack].sort())) out.push(`fast-tracks used: expected [${e.fastTrack.join(', ')}], got [${used.join(', ')}]`);
  }
  if (e.exceptions !== undefined) {
    const applied = d.exceptions.filter((x) => x.applied).map((x) => x.id).sort();
    if (canonicalJson(applied) !== canonicalJson([...e.exceptions].sort())) {
      out.push(`exceptions applied: expected [${e.exceptions.join(', ')}], got [${applied.join(', ')}] (${d.exceptions.map((x) => `${x.id}: ${x.reason}`).join('; ')})`);
    }
  }
  return out;
}

export interface CaseReport {
  name: string;
  ok: boolean;
  failures: string[];
  decision?: Decision;
}

export interface TestFileReport {
  file: string;
  name: string;
  policy: string;
  cases: CaseReport[];
}

export interface TestReport {
  files: TestFileReport[];
  passed: number;
  failed: number;
}

export function runPolicyTests(policies: ReadonlyMap<string, CompiledPolicy>, tests: readonly ParsedTest[], sourcesOf: (environment: string) => readonly string[]): TestReport {
  const files: TestFileReport[] = [];
  let passed = 0;
  let failed = 0;
  for (const t of tests) {
    const policy = policies.get(t.doc.policy);
    const environment = t.doc.environment ?? t.doc.policy;
    const from = t.doc.from ?? sourcesOf(environment);
    const cases: CaseReport[] = t.doc.cases.map((c) => {
      if (!policy) return { name: c.name, ok: false, failures: [`no policy named "${t.doc.policy}" in the set`] };
      const decision = evaluate(policy, fixtureInput(c.input, environment, from));
      const failures = checkExpectations(c, decision);
      return { name: c.name, ok: failures.length === 0, failures, decision };
    });
    for (const c of cases) if (c.ok) passed++;
    else failed++;
    files.push({ file: t.file, name: t.doc.name, policy: t.doc.policy, cases });
  }
  return { files, passed, failed };
}
