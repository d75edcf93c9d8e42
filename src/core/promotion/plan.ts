/**
 * `planPromotion(input) → Plan`: pure, synchronous, deterministic (after
 * changesets' assemble-release-plan). It runs the environment's policy over
 * evidence the verification pipeline has already checked (signature, key
 * validity at the signing time, revocation, subject digest, distinct-key
 * thresholds), decides apply / await-approval / reject, and records exactly
 * what it relied on: the evidence digests, the policy digest, the
 * environment's state and the source receipts. `applyPromotion` then only
 * carries out a plan; it never decides.
 *
 * Rules, cited where enforced:
 * - P1 The decision is the policy's, made at the one reference time of the
 *   operation, for this artifact and environment and the promotion's kind
 *   (a rollback is exempt from the versioning and from/soak gates, nothing else).
 * - P2 The plan relies on the evidence the passing and waived gates counted,
 *   and on nothing else.
 * - P3 Mix-and-match: every piece it relies on verified and names this
 *   artifact's digest as its subject (compared in constant time). Evidence
 *   about another artifact never counts, whatever a gate said.
 * - P4 Chain of custody: into an environment with sources, a promotion (or a
 *   rollback) continues a receipt of the same artifact in one of those
 *   sources; without one the receipt chain a deploy-time verifier walks
 *   would be broken, so the plan is rejected.
 * - P5 A failing gate or a broken rule rejects; a pending gate (approvals)
 *   waits; otherwise the plan applies.
 */
import { digestEquals } from '../digest.ts';
import type { Reason } from '../errors.ts';
import type { EvidenceItem } from '../evidence.ts';
import { evaluate, type CompiledPolicy, type PolicyInput } from '../policy/index.ts';
import type { CurrentState, Plan, PlanAction, PromotionKind, ReliedEvidence, ReliedSigner, SourceReceipt } from './types.ts';
import { slsaBuildLevel } from './receipt.ts';
import { fingerprintOf, seenState } from './votes.ts';

export interface PlanInput {
  promotion: { id: string; kind: PromotionKind };
  policy: CompiledPolicy;
  /** Built from the store: verified evidence, the current version, counted approvals, history, exceptions, keys, the reference time. */
  input: PolicyInput;
  environment: { name: string; from: readonly string[]; seq: number; current: CurrentState | null };
  /** Receipts of this artifact in source environments (promotions that reached them and were not rolled back). */
  sources: readonly SourceReceipt[];
}

export function planPromotion(p: PlanInput): Plan {
  const { input } = p;
  const artifact = { digest: input.artifact.digest, name: input.artifact.name, version: input.artifact.version };
  // P1
  const decision = evaluate(p.policy, { ...input, kind: p.promotion.kind, environment: { name: p.environment.name, from: p.environment.from } });
  const reasons: Reason[] = [];

  // P2
  const byDigest = new Map<string, EvidenceItem>(input.evidence.map((e) => [e.digest, e]));
  const gatesOf = new Map<string, string[]>();
  for (const g of decision.gates) {
    if (g.outcome === 'fail') continue;
    for (const d of g.evidence ?? []) gatesOf.set(d, [...(gatesOf.get(d) ?? []), g.name]);
  }
  const relied: ReliedEvidence[] = [];
  for (const [digest, gates] of gatesOf) {
    const e = byDigest.get(digest);
    // P3
    if (!e || !e.verified || !aboutArtifact(e, input.artifact.digest)) {
      reasons.push({ code: 'EVIDENCE_MISMATCH', message: `evidence ${short(digest)} counted by ${gates.join(', ')} is not verified evidence about ${artifact.name}@${artifact.version} (${short(artifact.digest)}); evidence about another artifact never counts` });
      continue;
    }
    relied.push(reliedOf(e, gates));
  }
  relied.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));

  // P4
  const sources = p.sources.filter((s) => p.environment.from.includes(s.environment));
  if (p.environment.from.length > 0 && sources.length === 0) {
    reasons.push({
      code: 'CHAIN_INCOMPLETE',
      message: `${artifact.name}@${artifact.version} has no receipt in ${p.environment.from.join(' or ')}: ${p.environment.name} continues a promotion from one of them, so the receipt chain would be broken`,
    });
  }

  // P5
  let action: PlanAction;
  if (decision.outcome === 'fail' || reasons.length > 0) {
    action = 'reject';
    for (const g of decision.gates) if (g.outcome === 'fail') for (const r of g.reasons) reasons.push({ code: r.code, message: `${g.name}: ${stripGate(r.message, g.name)}` });
  } else if (decision.outcome === 'pending') {
    action = 'await-approval';
    for (const g of decision.gates) if (g.outcome === 'pending') for (const r of g.reasons) reasons.push({ code: r.code, message: `${g.name}: ${stripGate(r.message, g.name)}` });
  } else action = 'apply';

  const seen = seenState(input.evidence, input.keys ?? []);
  const statements = new Map(input.evidence.map((e) => [e.digest, e.statement]));
  return {
    action,
    promotion: p.promotion.id,
    kind: p.promotion.kind,
    environment: p.environment.name,
    artifact,
    time: input.time.toISOString(),
    decision,
    reasons,
    relied: {
      evidence: relied,
      policy: decision.policy,
      environment: { name: p.environment.name, from: [...p.environment.from], seq: p.environment.seq, current: p.environment.current },
      sources: [...sources].sort((a, b) => (a.environment < b.environment ? -1 : a.environment > b.environment ? 1 : 0)),
      approvals: decision.inputs.approvals,
    },
    buildLevel: slsaBuildLevel(relied, statements),
    seen,
    fingerprint: fingerprintOf(seen),
  };
}

/** P3: the statement names the artifact's sha256 among its subjects. */
function aboutArtifact(e: EvidenceItem, digest: string): boolean {
  if (!e.statement) return false;
  for (const s of e.statement.subject) {
    const hex = s.digest['sha256'];
    if (hex !== undefined && digestEquals(`sha256:${hex}`, digest)) return true;
  }
  return false;
}

function reliedOf(e: EvidenceItem, gates: string[]): ReliedEvidence {
  const ok = e.signatures.filter((s) => s.ok);
  const signers: ReliedSigner[] = ok.map((s) => {
    const k = s.signer;
    const key = k.keyName === undefined ? undefined : k.keyName.includes('@') || k.keyVersion === undefined ? k.keyName : `${k.keyName}@${k.keyVersion}`;
    return {
      keyid: k.keyid,
      ...(key === undefined ? {} : { key }),
      ...(k.owner === undefined ? {} : { owner: k.owner }),
      ...(k.certificateIdentity === undefined ? {} : { certificateIdentity: k.certificateIdentity }),
      ...(k.certificateIssuer === undefined ? {} : { certificateIssuer: k.certificateIssuer }),
    };
  });
  return { digest: e.digest, predicateType: e.predicateType, signedAt: ok[0]?.signedAt || e.storedAt, signers, gates: [...gates].sort() };
}

/** Gate reasons often start with the gate's own name; the plan prefixes it once. */
function stripGate(message: string, gate: string): string {
  return message.startsWith(`${gate}: `) ? message.slice(gate.length + 2) : message;
}

function short(d: string): string {
  const c = d.indexOf(':');
  return c < 0 ? d.slice(0, 12) : d.slice(0, c + 13);
}
