/**
 * The deploy-time gate, as a pure function over values: may this artifact run
 * in this environment? The same function answers `custody verify <artifact>
 * --env E` against a workspace and `--offline --receipts DIR --keys DIR`
 * without one; only where the values come from differs. It returns
 * `{ ok, reasons }` and never throws.
 *
 * Rules, cited where enforced (the attacks are TUF's, mapped to promotions):
 * - D1 Current: the receipt is the environment's current one, per the store
 *   or per a head signed by a receipt key and not expired. An old receipt
 *   replayed to claim the environment fails here (rollback attack); a head
 *   that stopped being refreshed fails on its expiry (freeze attack).
 * - D2 Integrity: a receipt, and every piece of evidence, is the exact bytes
 *   its digest names.
 * - D3 In the log: a `promotion.promoted` entry names the receipt's digest,
 *   for this environment and artifact, and (where a checkpoint is required)
 *   its inclusion proof verifies against a checkpoint signed by a log key.
 *   The entry's time is the receipt's signing time: a compromised key cannot
 *   backdate a receipt past the log.
 * - D4 Signed: the receipt is a VSA in DSSE, signed by a key trusted for
 *   `promotion-receipt`, valid at the signing time, and not revoked today
 *   (a currently trusted key).
 * - D5 About this: subject is the artifact's digest, verificationResult is
 *   PASSED, the environment is the one asked, and verifiedLevels names it.
 * - D6 Not invalidated: every piece of evidence the receipt relied on still
 *   verifies at the time Custody recorded it, against today's keys, and every
 *   key that counted then still counts (a key revoked with compromisedSince
 *   before the signature breaks it). Evidence about another artifact fails
 *   its subject check (mix-and-match).
 * - D7 Chain: unless the environment is a root of the graph, some receipt of
 *   the same artifact in one of its sources satisfies D2–D7 in turn.
 */
import { createHash } from 'node:crypto';
import { digestEquals } from '../digest.ts';
import { isObject, parseEnvelopeWithPae } from '../dsse.ts';
import { CustodyError, type Reason, type VerificationResult } from '../errors.ts';
import type { KeyRecord, TrustedKeys } from '../key.ts';
import { entryLeaf, logNoteVerifierFor, parseCheckpointText, parseNote, verifyCheckpoint, verifyInclusion } from '../tlog/index.ts';
import { verifyEnvelopeSignatures, verifyEvidence } from '../verify/index.ts';
import { environmentLevel, HEAD_PAYLOAD_TYPE, VSA_PREDICATE_TYPE, type EnvironmentHead, type ReceiptFacts } from './receipt.ts';
import type { InclusionRecord } from './types.ts';

/** The log entry that records a receipt, with its proof where there is one. */
export interface LogRecord {
  index: number;
  /** The entry's canonical JSON, exactly as hashed into its leaf. */
  body: string;
  inclusion?: InclusionRecord;
}

export type CurrentSource =
  /** Online: the workspace's environment pointer (the store is the authority). */
  | { source: 'store'; receipt: string | null; artifact: string | null; version?: string }
  /** Offline: a signed environment head (DSSE JSON text), if one was found. */
  | { source: 'head'; head: string | undefined };

export interface DeployRequest {
  /** `sha256:<hex>` of the artifact about to run. */
  artifact: string;
  environment: string;
  /** The one reference time. */
  now: Date;
  keys: TrustedKeys;
  maxBytes: number;
  current: CurrentSource;
  /** Receipt bundles by digest. */
  receipts: ReadonlyMap<string, string>;
  /** Evidence bundles by digest. */
  evidence: ReadonlyMap<string, string>;
  /** The log entry of each receipt, by receipt digest. */
  log: ReadonlyMap<string, LogRecord>;
  /** Checks an entry's inclusion proof and checkpoint (D3); absent when the store vouches for its own entries. */
  checkInclusion?: (entry: LogRecord) => Reason | undefined;
  /** The environment graph (environment → sources) to walk instead of the one each receipt recorded. */
  graph?: Readonly<Record<string, readonly string[]>>;
}

export interface ChainLink {
  environment: string;
  receipt: string;
  promotion: string | null;
  version: string | null;
  kind: string | null;
  timeVerified: string | null;
  logIndex: number | null;
  ok: boolean;
}

export interface DeployVerification extends VerificationResult {
  chain: ChainLink[];
  head?: EnvironmentHead;
}

const MAX_DEPTH = 32;

export function verifyDeployment(req: DeployRequest): DeployVerification {
  try {
    return run(req);
  } catch (e) {
    return { ok: false, reasons: [{ code: 'VERIFY_INTERNAL', message: `deploy verification failed unexpectedly: ${e instanceof Error ? e.message : String(e)}` }], chain: [] };
  }
}

function run(req: DeployRequest): DeployVerification {
  if (!/^sha256:[0-9a-f]{64}$/.test(req.artifact)) return fail([{ code: 'ARTIFACT_DIGEST_INVALID', message: `"${req.artifact.slice(0, 80)}" is not a sha256 digest` }], []);
  // D1
  const current = resolveCurrent(req);
  if (!current.ok) return fail(current.reasons, [], current.head);
  const chain: ChainLink[] = [];
  const reasons = verifyReceipt(req, current.receipt, req.environment, 0, new Set(), chain);
  return { ok: reasons.length === 0, reasons, chain, ...(current.head ? { head: current.head } : {}) };
}

function fail(reasons: Reason[], chain: ChainLink[], head?: EnvironmentHead): DeployVerification {
  return { ok: false, reasons, chain, ...(head ? { head } : {}) };
}

// ---------------------------------------------------------------- D1: which receipt is current

type Current = { ok: true; receipt: string; head?: EnvironmentHead } | { ok: false; reasons: Reason[]; head?: EnvironmentHead };

function resolveCurrent(req: DeployRequest): Current {
  const env = req.environment;
  if (req.current.source === 'store') {
    const c = req.current;
    if (c.receipt === null || c.artifact === null) return { ok: false, reasons: [{ code: 'NO_RECEIPT', message: `nothing has been promoted into ${env}` }] };
    if (!digestEquals(c.artifact, req.artifact)) {
      return { ok: false, reasons: [{ code: 'RECEIPT_NOT_CURRENT', message: `${env} runs ${c.version === undefined ? '' : `version ${c.version}, `}${short(c.artifact)}, not ${short(req.artifact)}: only the current receipt of an environment admits an artifact` }] };
    }
    return { ok: true, receipt: c.receipt };
  }
  if (req.current.head === undefined) return { ok: false, reasons: [{ code: 'HEAD_MISSING', message: `no signed head for ${env}: export one with custody receipts export --env ${env}` }] };
  const head = verifyHead(req, req.current.head);
  if (!head.ok) return head;
  const h = head.head;
  if (!digestEquals(h.artifact.digest, req.artifact)) {
    return { ok: false, head: h, reasons: [{ code: 'RECEIPT_NOT_CURRENT', message: `${env} runs ${h.artifact.name}@${h.artifact.version} (${short(h.artifact.digest)}) per its head signed ${h.issuedAt}, not ${short(req.artifact)}: an older receipt does not admit an artifact` }] };
  }
  return { ok: true, receipt: h.receipt, head: h };
}

function verifyHead(req: DeployRequest, text: string): { ok: true; head: EnvironmentHead } | { ok: false; reasons: Reason[] } {
  const bad = (code: string, message: string) => ({ ok: false as const, reasons: [{ code, message }] });
  if (text.length > req.maxBytes) return bad('HEAD_INVALID', 'the environment head is larger than the limit');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('HEAD_INVALID', 'the environment head is not JSON');
  }
  const env = parseEnvelopeWithPae(value, 'head');
  if (!env.ok) return bad('HEAD_INVALID', `the environment head is not a DSSE envelope: ${env.reason.message}`);
  if (env.value.envelope.payloadType !== HEAD_PAYLOAD_TYPE) return bad('HEAD_INVALID', `the head's payload type is not ${HEAD_PAYLOAD_TYPE}`);
  let head: EnvironmentHead;
  try {
    head = parseHead(JSON.parse(env.value.envelope.payload.toString('utf8')));
  } catch (e) {
    return bad('HEAD_INVALID', `the head's payload is malformed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const issued = Date.parse(head.issuedAt);
  const sigs = verifyEnvelopeSignatures(env.value.envelope, { keys: req.keys, signedAt: new Date(issued), purpose: 'promotion-receipt' });
  if (!sigs.ok) return { ok: false, reasons: [{ code: 'HEAD_SIGNATURE_INVALID', message: `the head of ${req.environment} is not signed by a trusted receipt key: ${sigs.reasons.map((r) => r.message).join('; ')}` }] };
  const revoked = revokedSigner(req.keys, sigs.signers);
  if (revoked) return bad('HEAD_SIGNATURE_INVALID', `the head of ${req.environment} is signed by ${revoked}, which is revoked`);
  if (head.environment !== req.environment) return bad('HEAD_WRONG_ENVIRONMENT', `the head is for ${head.environment}, not ${req.environment}`);
  const now = req.now.getTime();
  if (issued > now + 5 * 60_000) return bad('HEAD_INVALID', `the head claims to be issued ${head.issuedAt}, in the future`);
  if (now >= Date.parse(head.expiresAt)) {
    return bad('HEAD_EXPIRED', `the head of ${req.environment} expired ${head.expiresAt} (issued ${head.issuedAt}): a stale status is never trusted; export a fresh one`);
  }
  return { ok: true, head };
}

function parseHead(v: unknown): EnvironmentHead {
  if (!isObject(v) || !isObject(v['artifact'])) throw new CustodyError('INPUT_INVALID', 'not an object');
  const a = v['artifact'];
  const str = (o: Record<string, unknown>, k: string): string => {
    const x = o[k];
    if (typeof x !== 'string' || x.length > 2048) throw new CustodyError('INPUT_INVALID', `${k} must be a string`);
    return x;
  };
  const instant = (k: string): string => {
    const s = str(v, k);
    if (Number.isNaN(Date.parse(s))) throw new CustodyError('INPUT_INVALID', `${k} is not a time`);
    return s;
  };
  const seq = v['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) throw new CustodyError('INPUT_INVALID', 'seq must be an integer');
  return {
    environment: str(v, 'environment'),
    artifact: { digest: str(a, 'digest'), name: str(a, 'name'), version: str(a, 'version') },
    promotion: str(v, 'promotion'),
    receipt: str(v, 'receipt'),
    seq,
    issuedAt: instant('issuedAt'),
    expiresAt: instant('expiresAt'),
  };
}


// ---------------------------------------------------------------- D2–D7: one receipt and its chain

function verifyReceipt(req: DeployRequest, digest: string, environment: string, depth: number, visited: Set<string>, chain: ChainLink[]): Reason[] {
  const link: ChainLink = { environment, receipt: digest, promotion: null, version: null, kind: null, timeVerified: null, logIndex: null, ok: false };
  chain.push(link);
  const at = `${environment} receipt ${short(digest)}`;
  if (depth > MAX_DEPTH || visited.has(digest)) return [{ code: 'CHAIN_INVALID', message: `${at}: the receipt chain loops or is deeper than ${MAX_DEPTH}` }];
  visited.add(digest);

  // D2
  const text = req.receipts.get(digest);
  if (text === undefined) return [{ code: 'RECEIPT_MISSING', message: `${at}: no such receipt` }];
  if (!digestEquals(sha256Of(text), digest)) return [{ code: 'RECEIPT_TAMPERED', message: `${at}: its bytes do not hash to its digest` }];

  // D3
  const entry = req.log.get(digest);
  if (!entry) return [{ code: 'NOT_IN_LOG', message: `${at}: no log entry records it` }];
  link.logIndex = entry.index;
  const logged = readEntry(entry.body);
  if (!logged || logged.type !== 'promotion.promoted' || typeof logged.payload['receipt'] !== 'string' || !digestEquals(logged.payload['receipt'], digest)) {
    return [{ code: 'NOT_IN_LOG', message: `${at}: log entry #${entry.index} does not record this receipt` }];
  }
  if (logged.payload['environment'] !== environment || typeof logged.subject !== 'string' || !digestEquals(logged.subject, req.artifact)) {
    return [{ code: 'NOT_IN_LOG', message: `${at}: log entry #${entry.index} records a promotion of another artifact or environment` }];
  }
  const inclusion = req.checkInclusion?.(entry);
  if (inclusion) return [{ code: inclusion.code, message: `${at}: ${inclusion.message}` }];
  const signedAt = new Date(logged.time);
  if (Number.isNaN(signedAt.getTime())) return [{ code: 'NOT_IN_LOG', message: `${at}: log entry #${entry.index} has no valid time` }];

  // D4, D5 (subject and predicate type in the pipeline)
  const result = verifyEvidence({ input: text, maxBytes: req.maxBytes, artifact: { sha256: req.artifact.slice(7) }, keys: req.keys, signedAt, purpose: 'promotion-receipt', predicateType: VSA_PREDICATE_TYPE });
  if (!result.ok) return [{ code: 'RECEIPT_INVALID', message: `${at}: ${result.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}` }];
  const revoked = revokedSigner(req.keys, result.signers);
  if (revoked) return [{ code: 'RECEIPT_KEY_REVOKED', message: `${at}: signed by ${revoked}, which is revoked: no receipt it signed is trusted any more` }];
  const predicate = result.statement?.predicate;
  const facts = readFacts(predicate?.['custody']);
  if (!predicate || !facts) return [{ code: 'RECEIPT_INVALID', message: `${at}: not a Custody receipt (no custody facts)` }];
  link.promotion = facts.promotion;
  link.version = facts.artifact.version;
  link.kind = facts.kind;
  link.timeVerified = typeof predicate['timeVerified'] === 'string' ? predicate['timeVerified'] : null;
  // D5
  const levels = Array.isArray(predicate['verifiedLevels']) ? (predicate['verifiedLevels'] as unknown[]) : [];
  if (predicate['verificationResult'] !== 'PASSED') return [{ code: 'RECEIPT_INVALID', message: `${at}: verificationResult is not PASSED` }];
  if (facts.environment !== environment || !levels.includes(environmentLevel(environment))) {
    return [{ code: 'RECEIPT_WRONG_ENVIRONMENT', message: `${at}: the receipt is for ${facts.environment} (${levels.filter((l) => typeof l === 'string' && l.startsWith('CUSTODY_ENV_')).join(', ') || 'no environment level'}), not ${environment}` }];
  }
  if (!digestEquals(facts.artifact.digest, req.artifact)) return [{ code: 'RECEIPT_WRONG_ARTIFACT', message: `${at}: the receipt is about ${short(facts.artifact.digest)}` }];
  const inputs = inputDigests(predicate['inputAttestations']);

  // D6
  const reasons: Reason[] = [];
  for (const e of facts.evidence) {
    const where = `${at}: evidence ${short(e.digest)} (${e.predicateType})`;
    if (!inputs.has(e.digest)) {
      reasons.push({ code: 'RECEIPT_INVALID', message: `${where} is not among the receipt's inputAttestations` });
      continue;
    }
    const body = req.evidence.get(e.digest);
    if (body === undefined) {
      reasons.push({ code: 'EVIDENCE_UNAVAILABLE', message: `${where} is not available to re-verify` });
      continue;
    }
    if (!digestEquals(sha256Of(body), e.digest)) {
      reasons.push({ code: 'EVIDENCE_TAMPERED', message: `${where}: its bytes do not hash to its digest` });
      continue;
    }
    const keyless = e.signers.some((s) => s.certificateIdentity !== undefined);
    if (keyless) continue; // verified against the trusted root when stored; Custody's keys cannot revoke a certificate
    const v = verifyEvidence({ input: body, maxBytes: req.maxBytes, artifact: { sha256: req.artifact.slice(7) }, keys: req.keys, signedAt: new Date(e.signedAt), predicateType: e.predicateType });
    const lost = e.signers.filter((s) => !v.signers.includes(s.keyid));
    if (!v.ok || lost.length > 0) {
      const why = v.signatures.flatMap((s) => s.reasons.map((r) => r.message));
      reasons.push({
        code: 'EVIDENCE_INVALIDATED',
        message: `${where} no longer verifies: ${[...new Set([...why, ...v.reasons.filter((r) => !why.includes(r.message)).map((r) => r.message)])].join('; ') || `signature by ${lost.map((s) => s.key ?? s.keyid.slice(0, 12)).join(', ')} no longer counts`}`,
      });
    }
  }
  if (reasons.length > 0) return reasons;

  // D7
  const from = req.graph?.[environment] ?? facts.from;
  if (from.length > 0) {
    const tried: Reason[] = [];
    let found = false;
    for (const s of facts.sources) {
      if (!from.includes(s.environment)) continue;
      if (!inputs.has(s.receipt)) {
        tried.push({ code: 'RECEIPT_INVALID', message: `${at}: source receipt ${short(s.receipt)} is not among its inputAttestations` });
        continue;
      }
      const sub = verifyReceipt(req, s.receipt, s.environment, depth + 1, visited, chain);
      if (sub.length === 0) {
        found = true;
        break;
      }
      tried.push(...sub);
    }
    if (!found) {
      return [{ code: 'CHAIN_INCOMPLETE', message: `${at}: no valid receipt of this artifact in ${from.join(' or ')}, where ${environment} is promoted from` }, ...tried];
    }
  }
  link.ok = true;
  return [];
}

// ---------------------------------------------------------------- D3: inclusion in the log

/**
 * D3 with a Merkle proof: the entry's leaf (RFC 6962 over its canonical body)
 * proves into a checkpoint signed by a trusted log-checkpoint key. With
 * `required`, an entry without a proof fails (offline: the files prove
 * nothing by themselves); without it, an entry no checkpoint covers yet is
 * taken on the store's word (online).
 */
export function inclusionChecker(keys: Iterable<KeyRecord>, options: { required: boolean; origin?: string }): (entry: LogRecord) => Reason | undefined {
  const logKeys = [...keys].filter((k) => k.purposes.includes('log-checkpoint'));
  return (entry) => {
    const inc = entry.inclusion;
    if (!inc) return options.required ? { code: 'NOT_IN_LOG', message: `log entry #${entry.index} comes with no inclusion proof and signed checkpoint` } : undefined;
    let origin: string;
    try {
      origin = parseCheckpointText(parseNote(inc.checkpoint).text).origin;
    } catch (e) {
      return { code: 'CHECKPOINT_INVALID', message: `the checkpoint of log entry #${entry.index} does not parse: ${e instanceof Error ? e.message : String(e)}` };
    }
    const verifiers = logKeys.flatMap((k) => logNoteVerifierFor(k, origin) ?? []);
    const cp = verifyCheckpoint(inc.checkpoint, verifiers, { origin: options.origin ?? origin });
    if (!cp.ok || !cp.value) return { code: 'CHECKPOINT_INVALID', message: `the checkpoint of log entry #${entry.index} is not signed by a trusted log key: ${cp.reasons.map((r) => r.message).join('; ') || 'no trusted signature'}` };
    const { size, root } = cp.value.checkpoint;
    if (inc.index !== entry.index || inc.size !== size) return { code: 'INCLUSION_INVALID', message: `the proof is for entry #${inc.index} in a tree of ${inc.size}, not entry #${entry.index} in the checkpoint's ${size}` };
    if (inc.hashes.length > 64 || inc.hashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) return { code: 'INCLUSION_INVALID', message: 'the inclusion proof is malformed' };
    const r = verifyInclusion(entry.index, size, entryLeaf(entry.body), inc.hashes.map((h) => Buffer.from(h, 'hex')), root);
    if (!r.ok) return { code: 'INCLUSION_INVALID', message: `log entry #${entry.index} does not prove into the checkpoint of ${size} entries: ${r.reason ?? 'proof mismatch'}` };
    return undefined;
  };
}

function readEntry(body: string): { type: string; time: string; subject?: unknown; payload: Record<string, unknown> } | undefined {
  try {
    const v: unknown = JSON.parse(body);
    if (!isObject(v) || typeof v['type'] !== 'string' || typeof v['time'] !== 'string' || !isObject(v['payload'])) return undefined;
    return { type: v['type'], time: v['time'], subject: v['subject'], payload: v['payload'] };
  } catch {
    return undefined;
  }
}

/** The receipt's `custody` field, read defensively: it is signed, but by a key that could be compromised. */
function readFacts(v: unknown): ReceiptFacts | undefined {
  if (!isObject(v) || !isObject(v['artifact']) || !Array.isArray(v['from']) || !Array.isArray(v['evidence']) || !Array.isArray(v['sources'])) return undefined;
  const a = v['artifact'];
  if (typeof v['environment'] !== 'string' || typeof v['promotion'] !== 'string' || typeof a['digest'] !== 'string' || typeof a['version'] !== 'string' || typeof a['name'] !== 'string') return undefined;
  if (!v['from'].every((x) => typeof x === 'string')) return undefined;
  const evidence: ReceiptFacts['evidence'] = [];
  for (const e of v['evidence'] as unknown[]) {
    if (!isObject(e) || typeof e['digest'] !== 'string' || typeof e['predicateType'] !== 'string' || typeof e['signedAt'] !== 'string' || !Array.isArray(e['signers'])) return undefined;
    if (Number.isNaN(Date.parse(e['signedAt']))) return undefined;
    const signers = (e['signers'] as unknown[]).filter(isObject).filter((s) => typeof s['keyid'] === 'string') as unknown as ReceiptFacts['evidence'][number]['signers'];
    evidence.push({ digest: e['digest'] as ReceiptFacts['evidence'][number]['digest'], predicateType: e['predicateType'], signedAt: e['signedAt'], signers, gates: [] });
  }
  const sources: ReceiptFacts['sources'] = [];
  for (const s of v['sources'] as unknown[]) {
    if (!isObject(s) || typeof s['environment'] !== 'string' || typeof s['receipt'] !== 'string' || typeof s['promotion'] !== 'string') return undefined;
    sources.push({ environment: s['environment'], receipt: s['receipt'] as ReceiptFacts['sources'][number]['receipt'], promotion: s['promotion'] });
  }
  const kind = v['kind'] === 'rollback' ? 'rollback' : 'promotion';
  const policy = isObject(v['policy']) ? v['policy'] : {};
  return {
    environment: v['environment'],
    from: v['from'],
    promotion: v['promotion'],
    kind,
    artifact: { digest: a['digest'], name: a['name'], version: a['version'] },
    policy: { name: typeof policy['name'] === 'string' ? policy['name'] : '', version: typeof policy['version'] === 'number' ? policy['version'] : null, setDigest: typeof policy['setDigest'] === 'string' ? policy['setDigest'] : null },
    evidence,
    sources,
  };
}

function inputDigests(v: unknown): Set<string> {
  const out = new Set<string>();
  if (!Array.isArray(v)) return out;
  for (const i of v as unknown[]) {
    if (!isObject(i) || !isObject(i['digest'])) continue;
    const hex = i['digest']['sha256'];
    if (typeof hex === 'string') out.add(`sha256:${hex}`);
  }
  return out;
}

/** D4: a key that signed and is revoked today, by label; undefined when none is. */
function revokedSigner(keys: TrustedKeys, keyids: readonly string[]): string | undefined {
  for (const id of keyids) {
    const k = keys.byKeyid.get(id);
    if (k?.status === 'revoked') return `${k.name}@${k.version}`;
  }
  return undefined;
}

function sha256Of(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

function short(d: string): string {
  const c = d.indexOf(':');
  return c < 0 ? d.slice(0, 12) : d.slice(0, c + 13);
}
