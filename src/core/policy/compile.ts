/**
 * A resolved policy made ready to evaluate: CEL expressions compiled and
 * planned, glob patterns compiled, durations parsed. Done once per policy
 * version; `evaluate` then only runs the result.
 */
import { positionOf, type SourceProblem } from '../yaml.ts';
import { parseDuration } from '../time.ts';
import { compileCel, DEFAULT_CEL_LIMITS, INPUT_VARIABLES, WHERE_VARIABLES, type CelLimits, type CelProgram } from './cel.ts';
import { compilePattern, type Pattern } from './match.ts';
import { policyDigest, type GateOrigin, type NamedGate, type ResolvedPolicy } from './resolve.ts';
import type { ApproverSpec, Gate, SignerSpec } from './schema.ts';
import { signerText } from './tighten.ts';
import type { DecisionPolicyRef } from './types.ts';

export interface SignerMatcher {
  spec: SignerSpec;
  text: string;
  keyName?: string;
  keyVersion?: number;
  keyid?: string;
  identity?: Pattern;
  issuer?: Pattern;
}

export interface ApproverMatcher {
  spec: ApproverSpec;
  text: string;
  identity?: Pattern;
}

export interface CompiledGate {
  name: string;
  gate: Gate;
  requirement: string;
  program?: CelProgram;
  signers?: SignerMatcher[];
  approvers?: ApproverMatcher[];
  soakMs?: number;
}

export interface CompiledFastTrack {
  name: string;
  identities: Pattern[] | undefined;
  teams: readonly string[] | undefined;
  relax: ReadonlySet<string>;
}

export interface CompiledPolicy {
  resolved: ResolvedPolicy;
  ref: DecisionPolicyRef;
  /** Whether any expression reads the CEL input: if none does, it is never built. */
  usesCel: boolean;
  base: CompiledGate[];
  tiers: ReadonlyMap<string, CompiledGate[]>;
  fastTrack: CompiledFastTrack[];
  exceptionApprovers: ApproverMatcher[];
  maxExceptionMs: number;
}

export interface CompileMeta {
  version?: number | null;
  setDigest?: string | null;
  source?: 'published' | 'files';
  celLimits?: CelLimits;
  /** Where each gate's CEL was written, to locate compile errors. */
  origins?: ReadonlyMap<string, GateOrigin>;
}

export type CompileResult = { ok: true; policy: CompiledPolicy } | { ok: false; problems: SourceProblem[] };

export function compilePolicy(resolved: ResolvedPolicy, meta: CompileMeta = {}): CompileResult {
  const limits = meta.celLimits ?? DEFAULT_CEL_LIMITS;
  const problems: SourceProblem[] = [];
  const programs = new Map<string, CelProgram>();
  const compileGates = (gates: readonly NamedGate[], scope: string): CompiledGate[] =>
    gates.map(({ name, ...gate }) => {
      const compiled: CompiledGate = { name, gate, requirement: requirementOf(gate) };
      const source = gate.kind === 'require' ? gate.require.where : gate.kind === 'rule' ? gate.rule.expr : undefined;
      if (source !== undefined) {
        const vars = gate.kind === 'require' ? WHERE_VARIABLES : INPUT_VARIABLES;
        const key = `${gate.kind}\u0000${source}`;
        let program = programs.get(key);
        if (!program) {
          const r = compileCel(source, vars, limits);
          if (r.ok) {
            program = r.program;
            programs.set(key, program);
          } else {
            const origin = meta.origins?.get(`${resolved.name}/${scope}/${name}`);
            const where = r.error.line === undefined ? '' : ` (line ${r.error.line}, column ${r.error.column ?? 0} of the expression)`;
            const field = gate.kind === 'require' ? 'require.where' : 'rule.expr';
            const label = `${scope === 'gates' ? '' : `${scope}.`}gates.${name}.${field}`;
            problems.push({
              file: origin?.file ?? `policy ${resolved.name}`,
              ...(origin ? positionOf(origin.parsed, origin.path) : { line: 1, col: 1 }),
              path: origin?.path.join('.') ?? label,
              message: `${origin?.path.join('.') ?? label}: CEL: ${r.error.message}${where}`,
            });
          }
        }
        if (program) compiled.program = program;
      }
      if (gate.kind === 'require') compiled.signers = gate.require.signers.map(signerMatcher);
      if (gate.kind === 'approvals') compiled.approvers = gate.approvals.approvers.map(approverMatcher);
      if (gate.kind === 'from' && gate.from.soak !== undefined) compiled.soakMs = parseDuration(gate.from.soak);
      return compiled;
    });
  const base = compileGates(resolved.gates, 'gates');
  const tiers = new Map(Object.entries(resolved.tiers).map(([t, v]) => [t, compileGates(v.gates, `tiers.${t}`)] as const));
  if (problems.length > 0) return { ok: false, problems };
  const fastTrack = Object.entries(resolved.fastTrack).map(([name, f]) => ({
    name,
    identities: f.identities?.map(compilePattern),
    teams: f.teams,
    relax: new Set(f.relax),
  }));
  return {
    ok: true,
    policy: {
      resolved,
      ref: { name: resolved.name, digest: policyDigest(resolved), version: meta.version ?? null, setDigest: meta.setDigest ?? null, source: meta.source ?? 'files' },
      usesCel: programs.size > 0,
      base,
      tiers,
      fastTrack,
      exceptionApprovers: resolved.exceptions.approvers.map(approverMatcher),
      maxExceptionMs: parseDuration(resolved.exceptions.maxDuration),
    },
  };
}

function signerMatcher(spec: SignerSpec): SignerMatcher {
  const m: SignerMatcher = { spec, text: signerText(spec) };
  if (spec.key !== undefined) {
    const at = spec.key.lastIndexOf('@');
    const version = at > 0 ? Number(spec.key.slice(at + 1)) : Number.NaN;
    if (at > 0 && Number.isInteger(version)) {
      m.keyName = spec.key.slice(0, at);
      m.keyVersion = version;
    } else m.keyName = spec.key;
  }
  if (spec.keyid !== undefined) m.keyid = spec.keyid;
  if (spec.identity !== undefined) m.identity = compilePattern(spec.identity);
  if (spec.issuer !== undefined) m.issuer = compilePattern(spec.issuer);
  return m;
}

export function approverMatcher(spec: ApproverSpec): ApproverMatcher {
  const text = spec.role !== undefined ? `role ${spec.role}` : spec.group !== undefined ? `group ${spec.group}` : `identity ${spec.identity ?? ''}`;
  return { spec, text, ...(spec.identity === undefined ? {} : { identity: compilePattern(spec.identity) }) };
}

function requirementOf(gate: Gate): string {
  switch (gate.kind) {
    case 'require': {
      const r = gate.require;
      const who = r.signers.map(signerText).join(' or ');
      const n = r.threshold > 1 ? `${r.threshold} distinct keys among ` : '';
      return `${r.predicateType} signed by ${n}${who}${r.where === undefined ? '' : `, where ${r.where.replace(/\s+/g, ' ').trim()}`}`;
    }
    case 'from':
      return `promoted from ${gate.from.environments?.join(' or ') ?? 'a source environment'}${gate.from.soak === undefined ? '' : `, at least ${gate.from.soak} ago`}`;
    case 'approvals': {
      const a = gate.approvals;
      const sod = a.distinctFrom.length === 0 ? '' : `; not ${a.distinctFrom.map((d) => (d === 'requester' ? 'the requester' : d === 'signers' ? 'a signer of the evidence' : "the artifact's creator")).join(' or ')}`;
      return `${a.count} approval${a.count === 1 ? '' : 's'} from ${a.approvers.map((x) => approverMatcher(x).text).join(' or ')}${sod}`;
    }
    case 'freeze':
      return `outside freeze windows (${gate.freeze.timeZone})`;
    case 'versioning': {
      const v = gate.versioning;
      const parts = [v.semver ? 'semver' : undefined, v.noDowngrade ? 'no downgrade' : undefined, v.mustBeNewer ? 'newer than current' : undefined, v.allowPrerelease ? undefined : 'no prereleases'];
      return parts.filter(Boolean).join(', ') || 'any version';
    }
    case 'rule':
      return gate.rule.message ?? gate.rule.expr.replace(/\s+/g, ' ').trim();
  }
}
