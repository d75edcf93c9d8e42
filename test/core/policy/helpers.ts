/** Builds compiled policies from YAML text, and engine inputs, for the policy tests. */
import { createHash } from 'node:crypto';
import { compilePolicy, resolvePolicySet, type CompiledPolicy, type PolicyInput, type ResolveResult } from '../../../src/core/policy/index.ts';
import type { EvidenceItem } from '../../../src/core/evidence.ts';
import type { DigestString } from '../../../src/core/digest.ts';
import { CustodyError } from '../../../src/core/errors.ts';

export function resolveFiles(files: Record<string, string>): ResolveResult {
  return resolvePolicySet(Object.entries(files).map(([path, text]) => ({ path, text })));
}

/** Resolves and compiles; throws (with every problem) if the set does not check. */
export function compileFiles(files: Record<string, string>, name: string): CompiledPolicy {
  const r = resolveFiles(files);
  if (r.problems.length > 0) throw new CustodyError('POLICY_INVALID', r.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join('\n'));
  const p = r.policies[name];
  if (!p) throw new CustodyError('POLICY_NOT_FOUND', name);
  const c = compilePolicy(p, { origins: r.origins });
  if (!c.ok) throw new CustodyError('POLICY_INVALID', c.problems.map((x) => x.message).join('\n'));
  return c.policy;
}

/** One policy document with the given gates (YAML, indented under `gates:`) and extra top-level YAML. */
export function policyYaml(gates: string, extra = ''): string {
  return `apiVersion: custody.dev/v1\nkind: Policy\nname: p\ngates:\n${gates}\n${extra}`;
}

export function compileGates(gates: string, extra = ''): CompiledPolicy {
  return compileFiles({ 'p.yaml': policyYaml(gates, extra) }, 'p');
}

export const DIGEST = `sha256:${'ab'.repeat(32)}` as const;
export const PROVENANCE = 'https://slsa.dev/provenance/v1';

export function keyid(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

export interface SigSpec {
  key?: string;
  version?: number;
  keyid?: string;
  ok?: boolean;
  reason?: string;
  owner?: string;
  identity?: string;
  issuer?: string;
}

export function evidence(predicateType: string, predicate: Record<string, unknown>, sigs: SigSpec[], options: { subject?: string; digest?: string } = {}): EvidenceItem {
  const signatures = sigs.map((s) => ({
    signer: {
      keyid: s.keyid ?? keyid(`${s.key ?? s.identity ?? 'k'}@${s.version ?? 1}`),
      ...(s.key === undefined ? {} : { keyName: s.key, keyVersion: s.version ?? 1 }),
      ...(s.owner === undefined ? {} : { owner: s.owner }),
      ...(s.identity === undefined ? {} : { certificateIdentity: s.identity }),
      ...(s.issuer === undefined ? {} : { certificateIssuer: s.issuer }),
    },
    ok: s.ok ?? true,
    reasons: s.ok === false ? [{ code: 'KEY_REVOKED', message: s.reason ?? 'the signature does not verify' }] : [],
    signedAt: '2026-03-10T00:00:00.000Z',
  }));
  const subjectOk = (options.subject ?? DIGEST) === DIGEST;
  return {
    digest: (options.digest ?? `sha256:${createHash('sha256').update(JSON.stringify([predicateType, predicate, sigs])).digest('hex')}`) as DigestString,
    predicateType,
    statement: { _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: (options.subject ?? DIGEST).slice(7) } }], predicateType, predicate },
    signatures,
    verified: subjectOk && signatures.some((s) => s.ok),
    reasons: subjectOk ? [] : [{ code: 'SUBJECT_MISMATCH', message: 'the statement is about another artifact' }],
    storedAt: '2026-03-10T00:00:00.000Z',
  };
}

export function input(over: Partial<PolicyInput> = {}): PolicyInput {
  return {
    time: new Date('2026-03-11T10:00:00Z'),
    kind: 'promotion',
    environment: { name: 'prod', from: ['staging'] },
    artifact: { digest: DIGEST, name: 'pkg:npm/app', version: '1.4.2', labels: {}, source: null, createdBy: 'ci:builder' },
    actor: { identity: 'ci:deployer', roles: ['deployer'] },
    evidence: [],
    current: null,
    history: [],
    approvals: [],
    exceptions: [],
    ...over,
  };
}

export function gate(d: { gates: { name: string; outcome: string; reasons: { code: string; message: string }[] }[] }, name: string): { outcome: string; codes: string[]; text: string } {
  const g = d.gates.find((x) => x.name === name);
  if (!g) throw new CustodyError('INTERNAL', `no gate ${name} in the decision (${d.gates.map((x) => x.name).join(', ')})`);
  return { outcome: g.outcome, codes: g.reasons.map((r) => r.code), text: g.reasons.map((r) => r.message).join(' | ') };
}
