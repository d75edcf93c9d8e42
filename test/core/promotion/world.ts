/**
 * A small, real world for the pure promotion tests: generated keys, evidence
 * signed as DSSE bundles and verified by the real pipeline, plans, receipts
 * signed like applyPromotion signs them, log entry bodies and signed heads.
 */
import { createHash } from 'node:crypto';
import { entryBody } from '../../../src/adapters/sql/log.ts';
import type { Artifact } from '../../../src/core/artifact.ts';
import { dsseBundle } from '../../../src/core/bundle.ts';
import type { DigestString } from '../../../src/core/digest.ts';
import { INTOTO_PAYLOAD_TYPE, envelopeToJson, signEnvelope } from '../../../src/core/dsse.ts';
import type { EvidenceItem } from '../../../src/core/evidence.ts';
import { artifactSubject, buildStatement } from '../../../src/core/intoto.ts';
import { toTrustedKeys, type KeyRecord, type TrustedKeys } from '../../../src/core/key.ts';
import type { CompiledPolicy, PolicyInput } from '../../../src/core/policy/index.ts';
import {
  buildReceiptStatement,
  HEAD_PAYLOAD_TYPE,
  planPromotion,
  type CurrentState,
  type EnvironmentHead,
  type LogRecord,
  type Plan,
  type PromotionKind,
  type SourceReceipt,
} from '../../../src/core/promotion/index.ts';
import { verifyEvidence } from '../../../src/core/verify/index.ts';
import { testKey, type TestKey } from '../../fixtures/keys.ts';
import { compileGates } from '../policy/helpers.ts';

export const T0 = '2026-03-10T09:00:00.000Z';
export const PROVENANCE = 'https://slsa.dev/provenance/v1';
export const TESTS = 'https://in-toto.io/attestation/test-result/v0.1';

export function sha256(text: string): DigestString {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

export function artifactOf(name: string, version: string, bytes = `${name}@${version}`): Artifact {
  const hex = createHash('sha256').update(bytes).digest('hex');
  return {
    digest: `sha256:${hex}`,
    name,
    version,
    size: bytes.length,
    digests: { sha256: hex },
    labels: {},
    source: null,
    stored: true,
    createdAt: T0,
    createdBy: 'ci:builder',
  };
}

export const provenancePredicate = {
  buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1', externalParameters: { workflow: { repository: 'https://github.com/acme/app' } } },
  runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' } },
};

export interface Signed {
  digest: DigestString;
  body: string;
}

export async function attest(key: TestKey, subject: Artifact, predicateType: string, predicate: Record<string, unknown>): Promise<Signed> {
  const st = buildStatement([artifactSubject(subject)], predicateType, predicate);
  const env = await signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st)), key.signer);
  const body = JSON.stringify(dsseBundle(env));
  return { digest: sha256(body), body };
}

/** What `evidenceFor` gives the planner: each piece through the real pipeline, judged at its recording time. */
export function verified(pieces: readonly Signed[], artifact: Artifact, keys: TrustedKeys, signedAt = T0): EvidenceItem[] {
  return pieces.map((p) => {
    const { statement, ...r } = verifyEvidence({ input: p.body, maxBytes: 1 << 20, artifact: { sha256: artifact.digests.sha256 ?? '' }, keys, signedAt: new Date(signedAt) });
    return { digest: p.digest, predicateType: r.predicateType ?? '', statement, signatures: r.signatures, verified: r.ok, reasons: r.reasons, storedAt: signedAt, kind: 'attestation' as const };
  });
}

export const POLICY = `  provenance:
    require:
      predicateType: ${PROVENANCE}
      signers: [{ key: build-ci }]
  approvals:
    approvals:
      count: 1
      approvers: [{ role: approver }]
      distinctFrom: [requester, signers]`;

export function policy(gates = POLICY): CompiledPolicy {
  return compileGates(gates);
}

export function input(artifact: Artifact, evidence: EvidenceItem[], keys: readonly KeyRecord[], over: Partial<PolicyInput> = {}): PolicyInput {
  return {
    time: new Date('2026-03-11T10:00:00Z'),
    kind: 'promotion',
    environment: { name: 'prod', from: ['staging'] },
    artifact: { digest: artifact.digest, name: artifact.name, version: artifact.version, labels: artifact.labels, source: null, createdBy: artifact.createdBy },
    actor: { identity: 'ci:deployer', roles: ['deployer'] },
    evidence,
    current: null,
    history: [],
    approvals: [],
    exceptions: [],
    keys: keys.map((k) => ({ keyid: k.keyid, name: k.name, version: k.version, status: k.status, revokedAt: k.revokedAt, compromisedSince: k.compromisedSince })),
    ...over,
  };
}

export interface Planned {
  plan: Plan;
  receipt: Signed;
  log: LogRecord;
}

export interface World {
  buildCi: TestKey;
  receiptKey: TestKey;
  keys: () => KeyRecord[];
  trusted: () => TrustedKeys;
  artifact: Artifact;
  evidence: Signed[];
  receipts: Map<string, string>;
  evidenceTexts: Map<string, string>;
  log: Map<string, LogRecord>;
  graph: Record<string, string[]>;
  /** Plans and, when the plan applies, signs the receipt and logs it. */
  promote(env: string, options?: { kind?: PromotionKind; approvals?: string[]; artifact?: Artifact; evidence?: Signed[]; id?: string; time?: string; gates?: string }): Promise<Planned>;
  /** Signs and logs a receipt for any plan (a forger with the receipt key, in tests). */
  issue(plan: Plan, artifact: Artifact, time: string, record?: boolean): Promise<{ receipt: Signed; log: LogRecord }>;
  head(env: string, receipt: string, options?: { artifact?: Artifact; issuedAt?: string; expiresAt?: string; key?: TestKey; environment?: string }): Promise<string>;
  /** Replaces a key record (e.g. revoked) in the trust material. */
  setKey(k: KeyRecord): void;
}

export async function world(): Promise<World> {
  const buildCi = testKey({ name: 'build-ci', purposes: ['attest'], owner: 'ci:acme', notBefore: '2026-01-01T00:00:00.000Z' });
  const receiptKey = testKey({ name: 'receipts', purposes: ['promotion-receipt'], owner: 'custody@acme', notBefore: '2026-01-01T00:00:00.000Z' });
  const records = new Map<string, KeyRecord>([buildCi, receiptKey].map((k) => [k.record.keyid, k.record]));
  const keys = () => [...records.values()];
  const trusted = () => toTrustedKeys(keys());
  const artifact = artifactOf('pkg:npm/app', '1.4.2');
  const evidence = [await attest(buildCi, artifact, PROVENANCE, provenancePredicate)];
  const receipts = new Map<string, string>();
  const evidenceTexts = new Map<string, string>(evidence.map((e) => [e.digest, e.body]));
  const log = new Map<string, LogRecord>();
  const graph: Record<string, string[]> = { dev: [], staging: ['dev'], prod: ['staging'] };
  const reached = new Map<string, SourceReceipt[]>();
  let index = 100;
  let n = 0;
  const w: World = {
    buildCi,
    receiptKey,
    keys,
    trusted,
    artifact,
    evidence,
    receipts,
    evidenceTexts,
    log,
    graph,
    async promote(env, o = {}) {
      const a = o.artifact ?? artifact;
      const ev = o.evidence ?? evidence;
      for (const e of ev) evidenceTexts.set(e.digest, e.body);
      const items = verified(ev, a, trusted());
      const id = o.id ?? `pr_${String(++n).padStart(16, '0')}`;
      const time = o.time ?? '2026-03-11T10:00:00.000Z';
      const plan = planPromotion({
        promotion: { id, kind: o.kind ?? 'promotion' },
        policy: policy(o.gates ?? POLICY),
        input: input(a, items, keys(), { time: new Date(time), approvals: (o.approvals ?? ['carol@acme']).map((identity) => ({ identity, roles: ['approver'] })) }),
        environment: { name: env, from: graph[env] ?? [], seq: 1, current: null as CurrentState | null },
        sources: (graph[env] ?? []).flatMap((src) => reached.get(`${a.digest}/${src}`) ?? []),
      });
      const issued = await w.issue(plan, a, time, plan.action === 'apply');
      if (plan.action === 'apply') reached.set(`${a.digest}/${env}`, [{ environment: env, promotion: id, receipt: issued.receipt.digest }]);
      return { plan, ...issued };
    },
    async issue(plan, a, time, record = true) {
      const statement = buildReceiptStatement({ plan, artifact: a, verifierId: 'https://custody.example/test', verifierVersion: '0.1.0', time });
      const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), receiptKey.signer);
      const body = JSON.stringify(dsseBundle(envelope));
      const receipt = { digest: sha256(body), body };
      const i = index++;
      const log: LogRecord = {
        index: i,
        body: entryBody(i, { type: 'promotion.promoted', actor: 'ci:deployer', time, subject: a.digest, payload: { promotion: plan.promotion, environment: plan.environment, kind: plan.kind, version: a.version, receipt: receipt.digest } }),
      };
      if (record) {
        receipts.set(receipt.digest, body);
        w.log.set(receipt.digest, log);
      }
      return { receipt, log };
    },
    async head(env, receipt, o = {}) {
      const a = o.artifact ?? artifact;
      const head: EnvironmentHead = {
        environment: o.environment ?? env,
        artifact: { digest: a.digest, name: a.name, version: a.version },
        promotion: 'pr_head',
        receipt,
        seq: 7,
        issuedAt: o.issuedAt ?? '2026-03-12T00:00:00.000Z',
        expiresAt: o.expiresAt ?? '2026-03-13T00:00:00.000Z',
      };
      const env2 = await signEnvelope(HEAD_PAYLOAD_TYPE, Buffer.from(JSON.stringify(head)), (o.key ?? receiptKey).signer);
      return JSON.stringify(envelopeToJson(env2));
    },
    setKey(k) {
      records.set(k.keyid, k);
    },
  };
  return w;
}
