/**
 * `evaluate(policy, input) → Decision`: every gate of the environment's policy
 * (with the artifact's tier overlay) is evaluated against the input, then
 * failing gates may be waived by a rollback exemption, an exception or a
 * fast-track, each recorded. Deterministic, no I/O, one reference time.
 *
 * Gate outcomes: pass, fail, waived, and pending for approvals that are not
 * yet in (the promotion work turns that into awaiting-approval).
 */
import semver from 'semver';
import { digestEquals, isDigestString } from '../digest.ts';
import type { Reason } from '../errors.ts';
import type { EvidenceItem, SignatureCheck, SignerIdentity } from '../evidence.ts';
import { newInputStats, toCel, type CelBindings, type CelInputStats } from './cel.ts';
import type { ApproverMatcher, CompiledGate, CompiledPolicy, SignerMatcher } from './compile.ts';
import { describeLocal, frozenAt } from './freeze.ts';
import { compilePattern } from './match.ts';
import { humanDuration } from '../time.ts';
import type { Decision, GateResult, PolicyException, PolicyInput, Waiver } from './types.ts';

const ROLLBACK_EXEMPT = new Set(['versioning', 'from']);

interface CelContext {
  stats: CelInputStats;
  global: CelBindings;
  /** Converted statements, by evidence index. */
  statements: Map<number, { statement: unknown; predicate: unknown }>;
}

export function evaluate(policy: CompiledPolicy, input: PolicyInput): Decision {
  const now = input.time;
  const nowMs = now.getTime();
  const kind = input.kind ?? 'promotion';
  const labels = input.artifact.labels;
  const tierLabel = policy.resolved.tierLabel;
  const tier = Object.hasOwn(labels, tierLabel) ? (labels[tierLabel] ?? null) : null;
  const results: GateResult[] = [];
  let gates: readonly CompiledGate[] = policy.base;
  if (tier !== null) {
    const t = policy.tiers.get(tier);
    if (t) gates = t;
    else if (policy.tiers.size > 0 && policy.resolved.unknownTier === 'deny') {
      results.push({
        name: 'tier',
        kind: 'tier',
        outcome: 'fail',
        requirement: `a tier this policy defines (${[...policy.tiers.keys()].join(', ')})`,
        reasons: [{ code: 'TIER_UNKNOWN', message: `the artifact's ${tierLabel} label is "${tier}", which policy ${policy.resolved.name} does not define (it has ${[...policy.tiers.keys()].join(', ')}); unknown tiers are denied` }],
      });
    }
  }

  let cel: CelContext | undefined;
  const celContext = (): CelContext => (cel ??= buildCel(policy, input, now, kind));

  for (const g of gates) results.push(evaluateGate(g, input, nowMs, kind, celContext));

  // Waivers, in order: a rollback's exemptions, then exceptions (explicit data), then fast-tracks.
  const open = () => results.filter((r) => r.outcome === 'fail' || r.outcome === 'pending');
  if (kind === 'rollback') {
    for (const r of open()) if (ROLLBACK_EXEMPT.has(r.kind)) waive(r, { kind: 'rollback', id: 'rollback' }, 'a rollback is exempt from this gate');
  }
  const exceptions = applyExceptions(policy, input, nowMs, results, open);
  const fastTrack: Decision['fastTrack'] = [];
  for (const ft of policy.fastTrack) {
    const who = ft.identities === undefined || ft.identities.some((p) => p.test(input.actor.identity));
    const team = ft.teams === undefined || (labels['team'] !== undefined && ft.teams.includes(labels['team']));
    if (!who || !team) continue;
    const waived: string[] = [];
    for (const r of open()) {
      if (!ft.relax.has(r.name) || r.kind === 'freeze') continue;
      waive(r, { kind: 'fast-track', id: ft.name }, `relaxed by fast-track ${ft.name} for ${input.actor.identity}`);
      waived.push(r.name);
    }
    if (waived.length > 0) fastTrack.push({ name: ft.name, waived });
  }

  const failed = results.filter((r) => r.outcome === 'fail');
  const pending = results.filter((r) => r.outcome === 'pending');
  const outcome = failed.length > 0 ? 'fail' : pending.length > 0 ? 'pending' : 'pass';
  const count = (o: string) => results.filter((r) => r.outcome === o).length;
  const summary =
    outcome === 'pass'
      ? `pass: ${results.length} gates (${count('pass')} passed${count('waived') ? `, ${count('waived')} waived` : ''})`
      : outcome === 'pending'
        ? `pending: ${pending.map((r) => r.name).join(', ')} awaiting approval`
        : `fail: ${failed.map((r) => r.name).join(', ')}`;
  return {
    outcome,
    allowed: outcome === 'pass',
    environment: input.environment.name,
    artifact: { digest: input.artifact.digest, name: input.artifact.name, version: input.artifact.version },
    policy: policy.ref,
    time: now.toISOString(),
    kind,
    tier,
    gates: results,
    fastTrack,
    exceptions,
    inputs: {
      actor: input.actor.identity,
      evidence: input.evidence.map((e) => ({ digest: e.digest, predicateType: e.predicateType, verified: e.verified })),
      approvals: [...new Set(input.approvals.map((a) => a.identity))],
      current: input.current?.version ?? null,
      history: input.history.length,
      exceptions: input.exceptions.filter((e) => e.environment === input.environment.name).map((e) => e.id),
    },
    summary,
  };
}

function waive(r: GateResult, by: Waiver, why: string): void {
  r.outcome = 'waived';
  r.waivedBy = by;
  r.reasons = [...r.reasons, { code: 'WAIVED', message: why }];
}

function evaluateGate(g: CompiledGate, input: PolicyInput, nowMs: number, kind: string, cel: () => CelContext): GateResult {
  const base = { name: g.name, kind: g.gate.kind, requirement: g.requirement };
  switch (g.gate.kind) {
    case 'require':
      return { ...base, ...evaluateRequire(g, input, cel) };
    case 'from': {
      // Sources left to custody.yaml are known only now.
      const f = g.gate.from;
      const requirement = f.environments !== undefined ? g.requirement : `promoted from ${input.environment.from.join(' or ') || 'a source environment (none defined)'}${f.soak === undefined ? '' : `, at least ${f.soak} ago`}`;
      return { ...base, requirement, ...evaluateFrom(g, input, nowMs) };
    }
    case 'approvals':
      return { ...base, ...evaluateApprovals(g, input, nowMs) };
    case 'freeze': {
      const hit = frozenAt(g.gate.freeze, input.time);
      if (!hit) return { ...base, outcome: 'pass', reasons: [] };
      const why = hit.reason === undefined ? '' : `${hit.reason}: `;
      return {
        ...base,
        outcome: 'fail',
        reasons: [{ code: 'FROZEN', message: `frozen: ${why}window ${hit.window} ${g.gate.freeze.timeZone}; local time is ${describeLocal(hit.local)}. Only an exception overrides a freeze` }],
      };
    }
    case 'versioning':
      return { ...base, ...evaluateVersioning(g.gate.versioning, input, kind) };
    case 'rule': {
      const program = g.program;
      if (!program) return { ...base, outcome: 'fail', reasons: [{ code: 'CEL_ERROR', message: 'the rule did not compile' }] };
      const c = cel();
      const r = program.run(c.global, c.stats);
      if (!r.ok) return { ...base, outcome: 'fail', reasons: [{ code: 'CEL_ERROR', message: `rule ${g.name}: ${r.error}` }] };
      if (r.value) return { ...base, outcome: 'pass', reasons: [] };
      return { ...base, outcome: 'fail', reasons: [{ code: 'RULE_FALSE', message: g.gate.rule.message ?? `rule ${g.name} is false: ${g.gate.rule.expr.replace(/\s+/g, ' ').trim()}` }] };
    }
  }
}

// ---------------------------------------------------------------- require

function signerMatches(m: SignerMatcher, s: SignerIdentity): boolean {
  if (m.keyid !== undefined) return s.keyid === m.keyid;
  if (m.keyName !== undefined) {
    const { name, version } = keyNameOf(s);
    return name === m.keyName && (m.keyVersion === undefined || version === m.keyVersion);
  }
  if (m.identity && m.issuer) {
    return s.certificateIdentity !== undefined && s.certificateIssuer !== undefined && m.identity.test(s.certificateIdentity) && m.issuer.test(s.certificateIssuer);
  }
  return false;
}

function keyNameOf(s: SignerIdentity): { name: string | undefined; version: number | undefined } {
  if (s.keyName === undefined) return { name: undefined, version: s.keyVersion };
  const at = s.keyName.lastIndexOf('@');
  if (at > 0 && /^\d+$/.test(s.keyName.slice(at + 1))) return { name: s.keyName.slice(0, at), version: Number(s.keyName.slice(at + 1)) };
  return { name: s.keyName, version: s.keyVersion };
}

function signerLabel(s: SignerIdentity): string {
  const { name, version } = keyNameOf(s);
  if (name !== undefined) return version === undefined ? name : `${name}@${version}`;
  if (s.certificateIdentity !== undefined) return `${s.certificateIdentity} (issuer ${s.certificateIssuer ?? '?'})`;
  return `keyid ${s.keyid.slice(0, 12)}…`;
}

function evaluateRequire(g: CompiledGate, input: PolicyInput, cel: () => CelContext): Pick<GateResult, 'outcome' | 'reasons' | 'evidence'> {
  if (g.gate.kind !== 'require') return { outcome: 'fail', reasons: [] };
  const r = g.gate.require;
  const signers = g.signers ?? [];
  const trustedText = signers.map((s) => s.text).join(' or ');
  const head = `${g.name}: ${r.predicateType} signed by ${trustedText} required`;
  const invalid: string[] = [];
  const untrusted = new Set<string>();
  const whereFailures: string[] = [];
  const qualifying: string[] = [];
  const keyids = new Set<string>();
  const keyLabels = new Map<string, string>();
  let found = 0;
  for (let i = 0; i < input.evidence.length; i++) {
    const e = input.evidence[i] as EvidenceItem;
    if (e.predicateType !== r.predicateType) continue;
    found++;
    const matching: SignatureCheck[] = [];
    for (const s of e.signatures) {
      if (!signers.some((m) => signerMatches(m, s.signer))) {
        if (s.ok) untrusted.add(signerLabel(s.signer));
        continue;
      }
      if (s.ok && e.verified) matching.push(s);
      else invalid.push(...(s.reasons.length > 0 ? s.reasons.map((x) => x.message) : [`signature by ${signerLabel(s.signer)} did not verify`]));
    }
    if (!e.verified) for (const x of e.reasons) if (!invalid.includes(x.message)) invalid.push(x.message);
    if (matching.length === 0 || !e.statement) continue;
    if (g.program) {
      const c = cel();
      const st = c.statements.get(i);
      const bindings: CelBindings = { ...c.global, statement: st?.statement ?? null, predicate: st?.predicate ?? null, signers: toCel(matching.map((s) => signerCel(s.signer)), c.stats) };
      const out = g.program.run(bindings, c.stats);
      if (!out.ok) {
        whereFailures.push(`where failed on ${short(e.digest)}: ${out.error}`);
        continue;
      }
      if (!out.value) {
        whereFailures.push(`where is false for ${short(e.digest)} (signed by ${matching.map((s) => signerLabel(s.signer)).join(', ')})`);
        continue;
      }
    }
    qualifying.push(e.digest);
    for (const s of matching) {
      keyids.add(s.signer.keyid);
      keyLabels.set(s.signer.keyid, signerLabel(s.signer));
    }
  }
  if (keyids.size >= r.threshold) return { outcome: 'pass', reasons: [], evidence: qualifying };
  const reasons: Reason[] = [];
  if (found === 0) {
    reasons.push({ code: 'EVIDENCE_MISSING', message: `${head}; found no ${r.predicateType} evidence` });
  } else if (qualifying.length === 0) {
    const why = [...new Set(invalid)];
    const parts: string[] = [];
    if (why.length > 0) parts.push(why.join('; '));
    if (untrusted.size > 0) parts.push(`signed only by ${[...untrusted].join(', ')}, which this gate does not trust`);
    parts.push(...whereFailures);
    const code = whereFailures.some((w) => w.startsWith('where failed')) ? 'CEL_ERROR' : whereFailures.length > 0 ? 'WHERE_FALSE' : why.length > 0 ? 'SIGNATURE_INVALID' : 'SIGNER_UNTRUSTED';
    reasons.push({ code, message: `${head}; found none valid: ${parts.join('; ') || 'no signature from a trusted signer'}` });
  } else {
    reasons.push({ code: 'THRESHOLD', message: `${head}; ${r.threshold} distinct trusted keys needed, found ${keyids.size} (${[...keyLabels.values()].join(', ')})` });
  }
  for (const m of signers) {
    if (m.keyName !== undefined && input.keys && !input.keys.some((k) => k.name === m.keyName && (m.keyVersion === undefined || k.version === m.keyVersion))) {
      reasons.push({ code: 'KEY_UNKNOWN', message: `no key named ${m.spec.key ?? m.keyName} is known to this workspace` });
    }
  }
  return { outcome: 'fail', reasons, evidence: qualifying };
}

function signerCel(s: SignerIdentity): Record<string, unknown> {
  const { name, version } = keyNameOf(s);
  return {
    keyid: s.keyid,
    key: name === undefined ? null : version === undefined ? name : `${name}@${version}`,
    identity: s.certificateIdentity ?? null,
    issuer: s.certificateIssuer ?? null,
    owner: s.owner ?? null,
  };
}

function short(d: string): string {
  const c = d.indexOf(':');
  return c < 0 ? d.slice(0, 12) : d.slice(0, c + 13);
}

// ---------------------------------------------------------------- from + soak

function evaluateFrom(g: CompiledGate, input: PolicyInput, nowMs: number): Pick<GateResult, 'outcome' | 'reasons'> {
  if (g.gate.kind !== 'from') return { outcome: 'fail', reasons: [] };
  const sources = g.gate.from.environments ?? input.environment.from;
  if (sources.length === 0) {
    return { outcome: 'fail', reasons: [{ code: 'FROM_NONE', message: `${g.name}: ${input.environment.name} has no source environments to be promoted from` }] };
  }
  const soakMs = g.soakMs ?? 0;
  const history = input.history.filter((h) => Date.parse(h.time) <= nowMs);
  const notes: string[] = [];
  let best = -1;
  for (const env of sources) {
    const inEnv = history.filter((h) => h.environment === env).sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    for (let i = 0; i < inEnv.length; i++) {
      const h = inEnv[i];
      if (h?.event !== 'promoted') continue;
      const start = Date.parse(h.time);
      const next = inEnv.slice(i + 1).find((x) => x.event !== 'promoted' || x.time !== h.time);
      if (next?.event === 'rolled-back') {
        notes.push(`rolled back from ${env} at ${next.time}`);
        continue;
      }
      const end = next?.event === 'replaced' ? Date.parse(next.time) : nowMs;
      const spent = end - start;
      best = Math.max(best, spent);
      if (spent >= soakMs) return { outcome: 'pass', reasons: [] };
      const left = soakMs - spent;
      notes.push(
        next?.event === 'replaced'
          ? `spent ${humanDuration(spent)} in ${env} before it was replaced; ${g.gate.from.soak ?? '0'} soak required`
          : `in ${env} for ${humanDuration(spent)} since ${h.time}; ${g.gate.from.soak ?? '0'} soak required (passes at ${new Date(nowMs + left).toISOString()})`,
      );
    }
  }
  if (notes.length === 0) {
    return { outcome: 'fail', reasons: [{ code: 'NOT_PROMOTED', message: `${g.name}: must be promoted to ${sources.join(' or ')} first; it has not been` }] };
  }
  return { outcome: 'fail', reasons: [{ code: best >= 0 ? 'SOAK' : 'ROLLED_BACK', message: `${g.name}: ${notes.join('; ')}` }] };
}

// ---------------------------------------------------------------- approvals

function approverOk(m: ApproverMatcher, identity: string, roles: readonly string[], groups: readonly string[]): boolean {
  if (m.spec.role !== undefined) return roles.includes(m.spec.role);
  if (m.spec.group !== undefined) return groups.includes(m.spec.group);
  return m.identity?.test(identity) ?? false;
}

function signerIdentities(input: PolicyInput): Set<string> {
  const out = new Set<string>();
  for (const e of input.evidence) {
    for (const s of e.signatures) {
      if (!s.ok) continue;
      if (s.signer.owner !== undefined) out.add(s.signer.owner);
      if (s.signer.certificateIdentity !== undefined) out.add(s.signer.certificateIdentity);
    }
  }
  return out;
}

function evaluateApprovals(g: CompiledGate, input: PolicyInput, nowMs: number): Pick<GateResult, 'outcome' | 'reasons'> {
  if (g.gate.kind !== 'approvals') return { outcome: 'fail', reasons: [] };
  const a = g.gate.approvals;
  const approvers = g.approvers ?? [];
  const signers = a.distinctFrom.includes('signers') ? signerIdentities(input) : new Set<string>();
  const seen = new Set<string>();
  const valid: string[] = [];
  const refused: string[] = [];
  for (const v of input.approvals) {
    if (seen.has(v.identity)) continue; // one vote per identity
    seen.add(v.identity);
    if (v.time !== undefined && Date.parse(v.time) > nowMs) continue;
    if (!approvers.some((m) => approverOk(m, v.identity, v.roles, v.groups ?? []))) {
      refused.push(`${v.identity} is not ${approvers.map((m) => m.text).join(' or ')}`);
    } else if (a.distinctFrom.includes('requester') && v.identity === input.actor.identity) {
      refused.push(`${v.identity} is the requester`);
    } else if (signers.has(v.identity)) {
      refused.push(`${v.identity} signed the artifact's evidence`);
    } else if (a.distinctFrom.includes('creator') && input.artifact.createdBy !== undefined && v.identity === input.artifact.createdBy) {
      refused.push(`${v.identity} created the artifact`);
    } else valid.push(v.identity);
  }
  if (valid.length >= a.count) return { outcome: 'pass', reasons: [] };
  const have = valid.length === 0 ? 'none yet' : `${valid.length} (${valid.join(', ')})`;
  const reasons: Reason[] = [{ code: 'APPROVALS_NEEDED', message: `${g.name}: ${g.requirement}; have ${have}` }];
  for (const r of refused) reasons.push({ code: 'APPROVAL_NOT_COUNTED', message: `vote not counted: ${r}` });
  return { outcome: 'pending', reasons };
}

// ---------------------------------------------------------------- versioning

function evaluateVersioning(v: { semver: boolean; noDowngrade: boolean; mustBeNewer: boolean; allowPrerelease: boolean }, input: PolicyInput, kind: string): Pick<GateResult, 'outcome' | 'reasons'> {
  const version = input.artifact.version;
  const parsed = semver.valid(version);
  const reasons: Reason[] = [];
  if (v.semver && parsed === null) reasons.push({ code: 'VERSION_NOT_SEMVER', message: `version "${version}" is not semver` });
  if (!v.allowPrerelease && parsed !== null && semver.prerelease(version) !== null) reasons.push({ code: 'VERSION_PRERELEASE', message: `prerelease ${version} is not allowed here` });
  const current = input.current?.version;
  if (parsed !== null && current !== undefined && semver.valid(current) !== null) {
    const cmp = semver.compare(version, current);
    if (v.noDowngrade && cmp < 0 && kind !== 'rollback') reasons.push({ code: 'DOWNGRADE', message: `${version} is older than the current ${current}; only a rollback may go back` });
    if (v.mustBeNewer && cmp <= 0) reasons.push({ code: 'NOT_NEWER', message: `${version} must be newer than the current ${current}` });
  }
  return reasons.length === 0 ? { outcome: 'pass', reasons } : { outcome: 'fail', reasons };
}

// ---------------------------------------------------------------- exceptions

function exceptionMatches(e: PolicyException, input: PolicyInput): boolean {
  const a = input.artifact;
  if (isDigestString(e.artifact)) return digestEquals(e.artifact, a.digest);
  const p = compilePattern(e.artifact);
  return p.test(a.digest) || p.test(`${a.name}@${a.version}`);
}

/** Why an exception cannot apply at `nowMs`, or undefined when it may. */
export function exceptionProblem(e: PolicyException, policy: CompiledPolicy, nowMs: number): string | undefined {
  if (e.revokedAt !== null && Date.parse(e.revokedAt) <= nowMs) return `revoked at ${e.revokedAt}${e.revokedBy ? ` by ${e.revokedBy}` : ''}`;
  if (e.approvedBy === null || e.approvedAt === null) return 'not approved yet';
  if (e.approvedBy === e.requestedBy) return `approved by its own requester (${e.requestedBy})`;
  if (!policy.exceptionApprovers.some((m) => approverOk(m, e.approvedBy ?? '', e.approverRoles, []))) {
    return `approved by ${e.approvedBy}, who is not ${policy.exceptionApprovers.map((m) => m.text).join(' or ')}`;
  }
  const start = Date.parse(e.approvedAt);
  const expires = Date.parse(e.expiresAt);
  if (nowMs < start) return `not approved until ${e.approvedAt}`;
  if (nowMs >= expires) return `expired at ${e.expiresAt}`;
  if (expires - Date.parse(e.createdAt) > policy.maxExceptionMs) return `lasts longer than the policy allows (${policy.resolved.exceptions.maxDuration})`;
  return undefined;
}

function applyExceptions(policy: CompiledPolicy, input: PolicyInput, nowMs: number, results: GateResult[], open: () => GateResult[]): Decision['exceptions'] {
  const out: Decision['exceptions'] = [];
  for (const e of input.exceptions) {
    if (e.environment !== input.environment.name || !exceptionMatches(e, input)) continue;
    const problem = exceptionProblem(e, policy, nowMs);
    if (problem) {
      out.push({ id: e.id, gates: e.gates, applied: false, reason: problem });
      continue;
    }
    const names = new Set(results.map((r) => r.name));
    const unknown = e.gates.filter((g) => !names.has(g));
    const waived: string[] = [];
    for (const r of open()) {
      if (!e.gates.includes(r.name)) continue;
      waive(r, { kind: 'exception', id: e.id }, `waived by exception ${e.id} until ${e.expiresAt} (approved by ${e.approvedBy ?? '?'}): ${e.justification}`);
      waived.push(r.name);
    }
    const note = unknown.length > 0 ? `; not gates of this policy: ${unknown.join(', ')}` : '';
    out.push(
      waived.length > 0
        ? { id: e.id, gates: e.gates, applied: true, reason: `waived ${waived.join(', ')}${note}` }
        : { id: e.id, gates: e.gates, applied: false, reason: `not needed: the gates it names did not fail${note}` },
    );
  }
  return out;
}

// ---------------------------------------------------------------- the CEL input

/** The documented CEL input (README, "The CEL input"), built once per decision and only when an expression needs it. */
function buildCel(policy: CompiledPolicy, input: PolicyInput, now: Date, kind: string): CelContext {
  const stats = newInputStats();
  const statements = new Map<number, { statement: unknown; predicate: unknown }>();
  const evidence: unknown[] = [];
  for (let i = 0; i < input.evidence.length; i++) {
    const e = input.evidence[i] as EvidenceItem;
    if (!e.verified || !e.statement) continue; // CEL sees verified statements only
    const statement = toCel(e.statement, stats) as Map<string, unknown>;
    const predicate = statement.get('predicate') ?? new Map();
    statements.set(i, { statement, predicate });
    evidence.push(
      new Map<string, unknown>([
        ['digest', e.digest],
        ['predicateType', e.predicateType],
        ['subject', statement.get('subject') ?? []],
        ['predicate', predicate],
        ['signers', toCel(e.signatures.filter((s) => s.ok).map((s) => signerCel(s.signer)), stats)],
        ['storedAt', toCel(new Date(e.storedAt), stats)],
      ]),
    );
  }
  const a = input.artifact;
  const global: CelBindings = {
    artifact: toCel(
      {
        digest: a.digest,
        name: a.name,
        version: a.version,
        digests: a.digests ?? {},
        labels: a.labels,
        source: a.source ?? null,
        createdAt: a.createdAt === undefined ? null : new Date(a.createdAt),
        createdBy: a.createdBy ?? null,
      },
      stats,
    ),
    evidence,
    environment: toCel({ name: input.environment.name, from: input.environment.from }, stats),
    current: toCel(input.current === null ? null : { version: input.current.version, digest: input.current.digest ?? null, since: input.current.since === undefined ? null : new Date(input.current.since) }, stats),
    actor: toCel({ identity: input.actor.identity, roles: input.actor.roles, groups: input.actor.groups ?? [] }, stats),
    request: toCel({ time: now, kind }, stats),
    history: toCel(input.history.map((h) => ({ environment: h.environment, event: h.event, version: h.version ?? null, time: new Date(h.time) })), stats),
    approvals: toCel(input.approvals.map((x) => ({ identity: x.identity, roles: x.roles, groups: x.groups ?? [], time: x.time === undefined ? null : new Date(x.time) })), stats),
    params: toCel(policy.resolved.params, stats),
  };
  if (evidence.length > stats.largest) stats.largest = evidence.length;
  return { stats, global, statements };
}
