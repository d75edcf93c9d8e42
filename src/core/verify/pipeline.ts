/**
 * The verification pipeline: one path for every signature and attestation
 * Custody reads, in small pure steps, each failing with a coded reason
 * (after sigstore-js packages/verify/src/verifier.ts):
 *
 *   size → JSON → format and well-formedness (media type, base64, log index,
 *   one DSSE signature per bundle) → key by hint in the trust passed in →
 *   key valid for the purpose at the signing time → signature over PAE or the
 *   message digest, algorithm from the key → payload type and statement →
 *   subject digest equals the artifact digest → predicate type as required.
 *
 * Keyless bundles swap the key steps for the certificate, transparency-log and
 * timestamp checks of @sigstore/verify (see keyless.ts); the content steps are
 * the same. It returns `{ ok, reasons }` and never throws.
 *
 * Signing time. For evidence Custody stores, the time used for key validity is
 * the time Custody recorded it (its `evidence.stored` log entry), never a time
 * the evidence claims for itself: a client could backdate a claim to before a
 * key's compromise. For keyless bundles it is the transparency log's
 * integration time or the signed timestamp, both verified here.
 */
import { isBundleMediaType, parseBundle, type ParsedBundle } from '../bundle.ts';
import { INTOTO_PAYLOAD_TYPE, freshBuffer, isObject, pae, parseEnvelopeWithPae, type Allocate, type DsseEnvelope } from '../dsse.ts';
import type { SignatureCheck, SignerIdentity, Statement } from '../evidence.ts';
import { parseStatement } from '../intoto.ts';
import type { KeyPurpose, KeyRecord, TrustedKeys } from '../key.ts';
import { candidateKeys, checkValidity } from './keys.ts';
import { parseJsonEvidence, type EvidenceJson } from './json.ts';
import { verifyKeyless, type KeylessExpectation, type KeylessTrust } from './keyless.ts';
import { fail, reason, type Parsed, type VerifyCode, type VerifyReason } from './reasons.ts';
import { signatureVerifies } from './signature.ts';
import { checkMessageDigest, checkPredicateType, checkSubject, type ArtifactDigests } from './subject.ts';

export interface VerifyRequest {
  /** The bundle or envelope, as bytes or text, exactly as received or stored. */
  input: Uint8Array | string;
  /** Inputs larger than this are refused before parsing. */
  maxBytes: number;
  /** The digests the evidence must be about. */
  artifact: ArtifactDigests;
  /** The artifact's bytes, when at hand: keyless message signatures are over them. */
  artifactBytes?: Uint8Array;
  /** Trust for keyed evidence: keys by keyid, with their validity. */
  keys?: TrustedKeys;
  /** Try every trusted key whatever the hint says: for a key the user named (`verify-bundle --key`). */
  ignoreHints?: boolean;
  /** The signing time for key validity: when Custody recorded the evidence (see above). */
  signedAt?: Date;
  /** Trust and expected identity for keyless evidence. */
  keyless?: { trust: KeylessTrust; expect: KeylessExpectation };
  /** Required predicate type (attestations only). */
  predicateType?: string;
  /** Purpose the key must hold; default sign-artifact for message signatures, attest for DSSE. */
  purpose?: KeyPurpose;
  /** Distinct verified keys required for a bare DSSE envelope; default 1. */
  threshold?: number;
}

export type EvidenceFormat = 'bundle' | 'dsse';
export type EvidenceKind = 'signature' | 'attestation';

export interface VerifyResult {
  ok: boolean;
  reasons: VerifyReason[];
  format: EvidenceFormat | null;
  kind: EvidenceKind | null;
  mediaType: string | null;
  /** Present whenever the payload parsed, even if verification failed (for explanations only). */
  statement: Statement | null;
  predicateType: string | null;
  /** Every signature, each with its own outcome. */
  signatures: SignatureCheck[];
  /** Distinct keyids (or certificate identities) whose signatures verified. */
  signers: string[];
  signedAt: string | null;
  /** Digests the evidence claims to be about (`alg:hex`), for indexing. */
  subjects: string[];
  /** Keyless only: the certificate that signed. */
  certificate?: { identity: string; issuer: string };
}

type Header = Pick<VerifyResult, 'format' | 'kind' | 'mediaType'>;

const NO_HEADER: Header = { format: null, kind: null, mediaType: null };

/** A result for evidence that could not be read or verified at all (its format, when that much was read). */
function unread(reasons: VerifyReason[], head: Header = NO_HEADER): VerifyResult {
  const { format, kind, mediaType } = head;
  return { ok: false, reasons, format, kind, mediaType, statement: null, predicateType: null, signatures: [], signers: [], signedAt: null, subjects: [] };
}

/**
 * The result of evidence that was read, built in one go (one object shape, no
 * spreads: this runs once per bundle in bulk verification).
 */
function readResult(
  head: Header,
  statement: Statement | null,
  sigs: SignatureStage,
  subjects: string[],
  certificate: VerifyResult['certificate'],
  reasons: VerifyReason[],
): VerifyResult {
  const { format, kind, mediaType } = head;
  const predicateType = statement?.predicateType ?? null;
  const ok = reasons.length === 0;
  const { checks: signatures, signers, signedAt } = sigs;
  return certificate === undefined
    ? { format, kind, mediaType, statement, predicateType, signatures, signers, signedAt, subjects, ok, reasons }
    : { format, kind, mediaType, statement, predicateType, signatures, signers, signedAt, subjects, certificate, ok, reasons };
}

/** Runs the whole pipeline. Never throws: a bug inside becomes a VERIFY_INTERNAL reason. */
export function verifyEvidence(req: VerifyRequest): VerifyResult {
  try {
    return run(req);
  } catch (e) {
    return unread([reason('VERIFY_INTERNAL', `verification failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`)]);
  }
}

// The PAE of the evidence being verified is built in this buffer, reused from
// one verification to the next: a fresh buffer per bundle costs more than
// decoding into it. Nothing that outlives `run` may hold a view of it (the
// statement is parsed into a string of its own). Large evidence gets a buffer
// of its own rather than growing this one for good.
let scratch = Buffer.allocUnsafeSlow(16 * 1024);
const SCRATCH_MAX = 256 * 1024;

function borrowScratch(size: number): Buffer {
  if (size > SCRATCH_MAX) return Buffer.allocUnsafe(size);
  if (size > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, 2 ** Math.ceil(Math.log2(size))));
  return scratch.subarray(0, size);
}

function run(req: VerifyRequest): VerifyResult {
  const parsed = readEvidence(req.input, req.maxBytes, borrowScratch);
  if (!parsed.ok) return unread([parsed.reason]);
  const ev = parsed.value;
  if (ev.format === 'dsse') {
    return finish(req, { format: 'dsse', kind: 'attestation', mediaType: null }, ev.envelope, verifyEnvelope(req, ev.envelope, ev.pae), undefined);
  }

  const bundle = ev.bundle;
  const head: Header = { format: 'bundle', kind: bundle.content.type === 'dsse' ? 'attestation' : 'signature', mediaType: bundle.mediaType };
  if (bundle.key.type === 'certificate') return keyless(req, head, bundle);
  if (bundle.content.type === 'dsse') return finish(req, head, bundle.content.envelope, verifyEnvelope(req, bundle.content.envelope, bundle.content.pae, bundle.key.hint), undefined);

  // Message signature: for ECDSA and RSA-PSS a signature of the artifact,
  // verified from its digest as the algorithm's own hash (core/prehash.ts), so
  // a digest is enough and no file is re-read; Ed25519 signs the digest bytes
  // as the message (it has no prehashed form).
  const content = bundle.content;
  const subjectProblem = checkMessageDigest(content.algorithm, content.digest, req.artifact);
  const sigs = verifySignatures(req, [{ keyid: bundle.key.hint, sig: content.signature }], content.digest, req.purpose ?? 'sign-artifact', 1, content.algorithm);
  const reasons = subjectProblem ? [...sigs.reasons, subjectProblem] : sigs.reasons;
  return readResult(head, null, sigs, [`${content.algorithm}:${content.digest.toString('hex')}`], undefined, reasons);
}

// ---------------------------------------------------------------- parse

type Evidence = { format: 'bundle'; bundle: ParsedBundle } | { format: 'dsse'; envelope: DsseEnvelope; pae: Buffer };

/** Size first, then JSON, then the format: a bundle has a media type, a bare DSSE envelope a payloadType. */
export function parseInput(input: Uint8Array | string, maxBytes: number): Parsed<Evidence> {
  return readEvidence(input, maxBytes, freshBuffer);
}

function readEvidence(input: Uint8Array | string, maxBytes: number, allocate: Allocate): Parsed<Evidence> {
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes: count exactly only when the bounds do not decide.
  const size = typeof input === 'string' ? (input.length * 3 <= maxBytes ? input.length : Buffer.byteLength(input, 'utf8')) : input.byteLength;
  if (size > maxBytes) return fail('EVIDENCE_TOO_LARGE', `the evidence is ${size} bytes, over the ${maxBytes}-byte limit`);
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  return readText(text, allocate, true) ?? (readText(text, allocate, false) as Parsed<Evidence>);
}

/**
 * JSON, then the format. With `lift`, the payload may be lifted out of the
 * text before JSON.parse (see json.ts); undefined means that reading must be
 * done again without.
 */
function readText(text: string, allocate: Allocate, lift: boolean): Parsed<Evidence> | undefined {
  let json: EvidenceJson;
  try {
    json = lift ? parseJsonEvidence(text) : { value: JSON.parse(text), lifted: null };
  } catch (e) {
    return fail('JSON_MALFORMED', `the evidence is not JSON: ${(e as Error).message}`);
  }
  const ev = readValue(json.value, allocate);
  if (json.lifted !== null && !(ev.ok && ev.value.format === json.lifted)) return undefined;
  return ev;
}

/** A bundle has a media type, a bare DSSE envelope a payloadType. */
function readValue(value: unknown, allocate: Allocate): Parsed<Evidence> {
  if (!isObject(value)) return fail('EVIDENCE_MALFORMED', 'the evidence is not a JSON object');
  if (typeof value['mediaType'] === 'string' || value['verificationMaterial'] !== undefined) {
    const b = parseBundle(value, allocate);
    return b.ok ? { ok: true, value: { format: 'bundle', bundle: b.value } } : b;
  }
  if (value['payloadType'] !== undefined && value['signatures'] !== undefined) {
    const env = parseEnvelopeWithPae(value, 'envelope', allocate);
    return env.ok ? { ok: true, value: { format: 'dsse', envelope: env.value.envelope, pae: env.value.pae } } : env;
  }
  return fail('MEDIA_TYPE_UNKNOWN', 'neither a Sigstore bundle (no mediaType) nor a DSSE envelope (no payloadType)');
}

export { isBundleMediaType };

// ---------------------------------------------------------------- keyed signatures

interface SignatureStage {
  reasons: VerifyReason[];
  checks: SignatureCheck[];
  signers: string[];
  signedAt: string | null;
}

/**
 * The DSSE signature step on its own, for protocol-level checks (the DSSE test
 * vectors) and for payload types other than in-toto statements.
 */
export function verifyEnvelopeSignatures(
  env: DsseEnvelope,
  opts: { keys: TrustedKeys; signedAt: Date; purpose: KeyPurpose; threshold?: number },
): { ok: boolean; reasons: VerifyReason[]; signatures: SignatureCheck[]; signers: string[] } {
  const stage = verifyEnvelope({ input: '', maxBytes: 0, artifact: {}, keys: opts.keys, signedAt: opts.signedAt, purpose: opts.purpose, threshold: opts.threshold ?? 1 }, env, pae(env.payloadType, env.payload));
  return { ok: stage.reasons.length === 0, reasons: stage.reasons, signatures: stage.checks, signers: stage.signers };
}

function verifyEnvelope(req: VerifyRequest, env: DsseEnvelope, message: Buffer, bundleHint?: string): SignatureStage {
  let sigs = env.signatures;
  // In a bundle, a signature without a keyid takes the verification material's hint.
  if (bundleHint !== undefined && sigs.some((s) => s.keyid === '')) sigs = sigs.map((s) => ({ keyid: s.keyid === '' ? bundleHint : s.keyid, sig: s.sig }));
  return verifySignatures(req, sigs, message, req.purpose ?? 'attest', req.threshold ?? 1);
}

/**
 * Each signature is checked on its own; the evidence holds when the distinct
 * keys that verified reach the threshold. A key is identified by the record
 * that verified the signature, not by the keyid the signature claims, so a
 * second signature by the same key (even with other bytes, as ECDSA makes)
 * counts once and is reported as SIGNATURE_DUPLICATE (DSSE protocol.md,
 * "Multi-signature Verification": the set ACCEPTED_KEYS).
 */
function verifySignatures(
  req: VerifyRequest,
  sigs: readonly { keyid: string; sig: Buffer }[],
  message: Uint8Array,
  purpose: KeyPurpose,
  threshold = 1,
  /** Set when `message` is a digest of the signed artifact (message signatures): its algorithm. */
  digestOf?: string,
): SignatureStage {
  const checks: SignatureCheck[] = [];
  const signedAt = isoTime(req.signedAt);
  if (!req.keys) {
    return { reasons: [reason('KEY_UNKNOWN', 'the evidence is signed by a key, and no keys were given to verify it with')], checks, signers: [], signedAt };
  }
  const at = signedAt ?? '';
  // Distinct keyids that verified, in order: at most a few, so a list rather than a set.
  const signers: string[] = [];
  for (const s of sigs) {
    const candidates = candidateKeys(req.keys, s.keyid, req.ignoreHints === true);
    if (candidates.length === 0) {
      checks.push(failedCheck({ keyid: s.keyid }, reason('KEY_UNKNOWN', s.keyid === '' ? 'no trusted keys to verify with' : `no trusted key has keyid ${s.keyid}`), at));
      continue;
    }
    const key = candidates.find((k) => signatureVerifies(k, message, s.sig, digestOf));
    if (!key) {
      const only = candidates.length === 1 ? candidates[0] : undefined;
      checks.push(failedCheck(only ? signerOf(only) : { keyid: s.keyid }, reason('SIGNATURE_INVALID', 'the signature does not verify'), at));
      continue;
    }
    if (!req.signedAt) {
      checks.push(failedCheck(signerOf(key), reason('SIGNING_TIME_UNKNOWN', 'no signing time to check the key against'), at));
      continue;
    }
    const invalid = checkValidity(key, purpose, req.signedAt);
    if (invalid) {
      checks.push(failedCheck(signerOf(key), invalid, at));
      continue;
    }
    if (signers.includes(key.keyid)) {
      checks.push(failedCheck(signerOf(key), reason('SIGNATURE_DUPLICATE', `key ${key.name}@${key.version} already signed this; counted once`), at));
      continue;
    }
    signers.push(key.keyid);
    checks.push({ signer: signerOf(key), ok: true, reasons: [], signedAt: at });
  }
  if (signers.length >= threshold) return { reasons: [], checks, signers, signedAt };
  // Every reason in a check was made here, from a VerifyCode.
  const reasons = dedupe(checks.flatMap((c) => c.reasons) as VerifyReason[]);
  if (signers.length > 0 || threshold > 1) reasons.push(reason('THRESHOLD_NOT_MET', `${signers.length} distinct trusted key(s) verified; ${threshold} required`));
  return { reasons, checks, signers, signedAt };
}

function failedCheck(signer: SignerIdentity, problem: VerifyReason, signedAt: string): SignatureCheck {
  return { signer, ok: false, reasons: [problem], signedAt };
}

/** Who a signature by `key` is reported as, in every check that names its key. */
export function signerOf(key: KeyRecord): SignerIdentity {
  return { keyid: key.keyid, keyName: key.name, keyVersion: key.version, owner: key.owner };
}

// Bulk verification passes one signing time to many bundles: format it once.
let lastTime = NaN;
let lastIso = '';

function isoTime(d: Date | undefined): string | null {
  if (d === undefined) return null;
  const t = d.getTime();
  if (t !== lastTime) {
    lastIso = d.toISOString();
    lastTime = t;
  }
  return lastIso;
}

function dedupe(reasons: VerifyReason[]): VerifyReason[] {
  const seen = new Set<string>();
  return reasons.filter((r) => {
    const k = `${r.code}\0${r.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---------------------------------------------------------------- keyless

function keyless(req: VerifyRequest, head: Header, bundle: ParsedBundle): VerifyResult {
  if (!req.keyless) {
    return unread([reason('TRUST_MATERIAL_MISSING', 'a keyless bundle needs a trusted root and the expected certificate identity and OIDC issuer')], head);
  }
  const out = verifyKeyless(bundle, req.keyless.trust, req.keyless.expect, req.artifactBytes);
  const signer: SignerIdentity = {
    keyid: out.identity?.san ?? '',
    ...(out.identity ? { certificateIdentity: out.identity.san, certificateIssuer: out.identity.issuer, owner: out.identity.san } : {}),
  };
  const signedAt = out.signedAt?.toISOString() ?? null;
  const stage: SignatureStage = {
    reasons: out.reasons,
    checks: [{ signer, ok: out.ok, reasons: out.reasons, signedAt: signedAt ?? '' }],
    signers: out.ok && out.identity ? [out.identity.san] : [],
    signedAt,
  };
  const certificate = out.identity ? { identity: out.identity.san, issuer: out.identity.issuer } : undefined;
  if (bundle.content.type === 'dsse') return finish(req, head, bundle.content.envelope, stage, certificate);
  const content = bundle.content;
  const subjectProblem = checkMessageDigest(content.algorithm, content.digest, req.artifact);
  const reasons = subjectProblem ? [...stage.reasons, subjectProblem] : [...stage.reasons];
  return readResult(head, null, stage, [`${content.algorithm}:${content.digest.toString('hex')}`], certificate, reasons);
}

// ---------------------------------------------------------------- content

/**
 * DSSE content steps, after the signatures (protocol.md: verify, then reject an
 * unsupported payload type, then parse). The statement is still parsed when a
 * signature failed, so the result can explain what the evidence claimed.
 */
function finish(req: VerifyRequest, head: Header, env: DsseEnvelope, sigs: SignatureStage, certificate: VerifyResult['certificate']): VerifyResult {
  const reasons: VerifyReason[] = sigs.reasons.length === 0 ? [] : [...sigs.reasons];
  let statement: Statement | null = null;
  let subjects: string[] = [];
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) {
    reasons.push(reason('PAYLOAD_TYPE_UNSUPPORTED', `payload type "${env.payloadType.slice(0, 100)}" is not ${INTOTO_PAYLOAD_TYPE}`));
  } else {
    const st = parseStatement(env.payload);
    if (!st.ok) reasons.push(st.reason);
    else {
      statement = st.value;
      subjects = subjectDigests(statement);
      const subjectProblem = checkSubject(statement, req.artifact);
      if (subjectProblem) reasons.push(subjectProblem);
      const typeProblem = checkPredicateType(statement, req.predicateType);
      if (typeProblem) reasons.push(typeProblem);
    }
  }
  return readResult(head, statement, sigs, subjects, certificate, reasons);
}

const INDEXED: Record<string, number> = { sha256: 64, sha512: 128 };

function subjectDigests(statement: Statement): string[] {
  const out: string[] = [];
  for (const s of statement.subject) {
    for (const alg in s.digest) {
      const hex = s.digest[alg];
      // Only well-formed digests of the algorithms Custody indexes.
      if (hex !== undefined && INDEXED[alg] === hex.length && isLowerHex(hex)) out.push(`${alg}:${hex}`);
    }
  }
  // One subject cannot repeat a digest (its algorithms differ); several can.
  return statement.subject.length > 1 ? [...new Set(out)] : out;
}

const HEX = Buffer.alloc(64);
const UPPER_HEX = /[A-F]/;

/** Lowercase hex of at most 128 digits: every character decodes, and none is a capital. */
function isLowerHex(s: string): boolean {
  return s.length % 2 === 0 && HEX.write(s, 0, 'hex') * 2 === s.length && !UPPER_HEX.test(s);
}

export type { VerifyCode };
