/**
 * Receipts: the signed SLSA Verification Summary Attestation v1
 * (https://slsa.dev/spec/v1.0/verification_summary) a promotion issues, and the
 * signed environment head that says which receipt is current.
 *
 * The VSA's own fields carry what the spec defines: verifier.id,
 * timeVerified, resourceUri, policy.uri and policy.digest (the decision's
 * policy digest), inputAttestations (every piece of evidence used and the
 * source environment's receipt, by digest), verificationResult and
 * verifiedLevels (the SLSA build level the provenance shows, and
 * CUSTODY_ENV_<ENV>). Consumers ignore fields they do not know (in-toto
 * parsing rules), so what a deploy-time verifier needs beyond them (the
 * environment graph at promotion time, the signing time of each piece of
 * evidence and the keys that counted) travels in one `custody` field.
 */
import type { Statement } from '../evidence.ts';
import { artifactSubject, buildStatement } from '../intoto.ts';
import type { Artifact } from '../artifact.ts';
import type { DecisionPolicyRef } from '../policy/types.ts';
import type { Plan, PromotionKind, ReliedEvidence, SourceReceipt } from './types.ts';
import { RECEIPT_PREDICATE_TYPE } from './votes.ts';

export const VSA_PREDICATE_TYPE = RECEIPT_PREDICATE_TYPE;
export const PROVENANCE_PREDICATE_TYPE = 'https://slsa.dev/provenance/v1';
/** DSSE payload type of a signed environment head. */
export const HEAD_PAYLOAD_TYPE = 'application/vnd.custody.environment-head+json';

/** The `custody` field of a receipt: what the deploy-time gate reads besides the VSA fields. */
export interface ReceiptFacts {
  environment: string;
  /** The environment's sources when it was promoted into: where the chain continues. */
  from: string[];
  promotion: string;
  kind: PromotionKind;
  artifact: { digest: string; name: string; version: string };
  policy: { name: string; version: number | null; setDigest: string | null };
  evidence: ReliedEvidence[];
  sources: SourceReceipt[];
}

/** SLSA VSA v1 predicate, with Custody's facts beside the spec's fields. */
export interface ReceiptPredicate {
  verifier: { id: string; version?: Record<string, string> };
  timeVerified: string;
  resourceUri: string;
  policy: { uri: string; digest: Record<string, string> };
  inputAttestations: { uri: string; digest: Record<string, string> }[];
  verificationResult: 'PASSED' | 'FAILED';
  verifiedLevels: string[];
  slsaVersion: '1.0';
  custody: ReceiptFacts;
}

export interface ReceiptInput {
  plan: Plan;
  artifact: Artifact;
  /** Identifies this Custody (the log's origin): verifier.id. */
  verifierId: string;
  verifierVersion: string;
  /** The instant the promotion was verified: the plan's reference time. */
  time: string;
}

/** `CUSTODY_ENV_PROD_EU` for `prod-eu`: a verified level any VSA consumer can match. */
export function environmentLevel(environment: string): string {
  return `CUSTODY_ENV_${environment.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** A URI for the artifact: its package URL when it has one, else a generic purl. */
export function resourceUri(name: string, version: string): string {
  if (name.startsWith('pkg:')) return `${name}@${encodeURIComponent(version)}`;
  return `pkg:generic/${encodeURIComponent(name)}@${encodeURIComponent(version)}`;
}

export function policyUri(ref: DecisionPolicyRef): string {
  return `custody:policy/${encodeURIComponent(ref.name)}${ref.version === null ? '' : `?version=${ref.version}`}`;
}

function digestSet(d: string): Record<string, string> {
  const c = d.indexOf(':');
  return { [d.slice(0, c)]: d.slice(c + 1) };
}

/** Builders whose provenance SLSA rates Build L3 (hardened, isolated, non-forgeable provenance). */
const L3_BUILDERS = [/^https:\/\/github\.com\/slsa-framework\/slsa-github-generator\/\.github\/workflows\/[^@]+@refs\/tags\/v\d/];

/**
 * The SLSA build level the provenance a plan relied on shows: L1 when there is
 * verified provenance, L2 when it was signed by a key Custody trusts and names
 * a hosted builder (an https builder id), L3 for builders known to meet L3.
 * null when no provenance was relied on.
 */
export function slsaBuildLevel(relied: readonly ReliedEvidence[], statements: ReadonlyMap<string, Statement | null>): number | null {
  let best: number | null = null;
  for (const e of relied) {
    if (e.predicateType !== PROVENANCE_PREDICATE_TYPE) continue;
    const predicate = statements.get(e.digest)?.predicate;
    const builder = (predicate?.['runDetails'] as { builder?: { id?: unknown } } | undefined)?.builder?.id;
    let level = 1;
    if (typeof builder === 'string' && e.signers.length > 0 && builder.startsWith('https://')) level = L3_BUILDERS.some((r) => r.test(builder)) ? 3 : 2;
    best = Math.max(best ?? 0, level);
  }
  return best;
}

/** The in-toto Statement v1 of a receipt: subject is the artifact (name@version, every digest known). */
export function buildReceiptStatement(r: ReceiptInput): Statement {
  const { plan } = r;
  const ref = plan.relied.policy;
  const policyHex = ref.digest.startsWith('sha256:') ? ref.digest.slice(7) : ref.digest;
  const levels = [...(plan.buildLevel === null ? [] : [`SLSA_BUILD_LEVEL_${plan.buildLevel}`]), environmentLevel(plan.environment)];
  const predicate: ReceiptPredicate = {
    verifier: { id: r.verifierId, version: { custody: r.verifierVersion } },
    timeVerified: r.time,
    resourceUri: resourceUri(plan.artifact.name, plan.artifact.version),
    policy: { uri: policyUri(ref), digest: { sha256: policyHex } },
    inputAttestations: [
      ...plan.relied.evidence.map((e) => ({ uri: `custody:evidence/${e.digest}`, digest: digestSet(e.digest) })),
      ...plan.relied.sources.map((s) => ({ uri: `custody:receipt/${s.environment}/${s.promotion}`, digest: digestSet(s.receipt) })),
    ],
    verificationResult: 'PASSED',
    verifiedLevels: levels,
    slsaVersion: '1.0',
    custody: {
      environment: plan.environment,
      from: plan.relied.environment.from,
      promotion: plan.promotion,
      kind: plan.kind,
      artifact: plan.artifact,
      policy: { name: ref.name, version: ref.version, setDigest: ref.setDigest },
      evidence: plan.relied.evidence,
      sources: plan.relied.sources,
    },
  };
  return buildStatement([artifactSubject(r.artifact)], VSA_PREDICATE_TYPE, predicate as unknown as Record<string, unknown>);
}

// ---------------------------------------------------------------- environment heads

/**
 * A signed statement of which receipt is current in an environment, valid
 * until `expiresAt`: the deploy-time gate's defence against an old receipt
 * replayed to claim the environment (rollback) and against a status that
 * stopped being refreshed (freeze), as TUF's timestamp role defends clients.
 */
export interface EnvironmentHead {
  environment: string;
  artifact: { digest: string; name: string; version: string };
  promotion: string;
  receipt: string;
  /** The environment state's sequence number when the head was signed. */
  seq: number;
  issuedAt: string;
  expiresAt: string;
}
