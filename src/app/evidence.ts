/**
 * Evidence use cases: store signatures and attestations, import what a CI made
 * elsewhere, and verify every stored piece about an artifact. CONTRACT (the
 * policy engine and promotion code against this signature):
 *
 * - `evidenceFor(tx, trusted, artifact, now)`: every stored attestation whose
 *   subject is the artifact, each run through the verification pipeline against
 *   `trusted` with the one reference time `now`, as `EvidenceItem`s; but
 *   Custody's own promotion receipts (see `isOwnReceipt`), which the policy
 *   does not read.
 *
 * Signing time: keyed evidence is judged at the time Custody recorded it (its
 * `evidence.stored` log entry), not at any time the evidence claims; keyless
 * evidence at the transparency log's verified time. Nothing is trusted because
 * it was stored: it is verified again on every use, against the keys as they
 * stand (a key revoked since with `compromisedSince` before that recording
 * time stops verifying).
 */
import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { decodeUtf8, evidencePath, publicGoodTrustedRoot, readLimited, readTrustedRoot } from '../adapters/evidence-files.ts';
import { writeFileAtomic } from '../adapters/fs-durable.ts';
import { sharedVerifyPool, type WireRequest, type WireResult } from '../adapters/verify-pool.ts';
import type { Artifact } from '../core/artifact.ts';
import type { DigestString } from '../core/digest.ts';
import { CustodyError, type Reason } from '../core/errors.ts';
import type { EvidenceItem, Statement, StoredEvidence } from '../core/evidence.ts';
import { requireRole } from '../core/identity.ts';
import { parseStatement } from '../core/intoto.ts';
import type { TrustedKeys } from '../core/key.ts';
import type { Tx } from '../core/ports.ts';
import { MALFORMED_CODES, parseInput, toKeylessTrust, verifyEvidence, type ArtifactDigests, type KeylessTrust, type VerifyCode, type VerifyResult } from '../core/verify/index.ts';
import { REACHED_STATES, VSA_PREDICATE_TYPE, type Promotion } from '../core/promotion/index.ts';
import { findArtifact } from './artifacts.ts';
import { auditRefusal } from './audit.ts';
import { keyListOf, trustedKeys } from './keys.ts';
import type { Context } from './workspace.ts';

// Stored evidence was size-checked on the way in; this bound only guards against a tampered database.
const STORED_MAX = 64 * 1024 * 1024;
// Below this many keyed items, starting worker threads costs more than it saves.
const POOL_MIN = 256;

export function artifactDigests(a: Artifact): ArtifactDigests {
  return { ...(a.digests.sha256 ? { sha256: a.digests.sha256 } : {}), ...(a.digests.sha512 ? { sha512: a.digests.sha512 } : {}) };
}

function subjectKeys(a: Artifact): string[] {
  return Object.entries(artifactDigests(a)).map(([alg, hex]) => `${alg}:${hex}`);
}

export function evidenceDigest(text: string): DigestString {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

// ---------------------------------------------------------------- trust for keyless evidence

const keylessCache = new WeakMap<Context, Promise<KeylessTrust>>();
let publicGoodTrust: Promise<KeylessTrust> | undefined;

/** The Sigstore public-good trusted root shipped in @sigstore/tuf, as trust material. */
export function publicGoodKeylessTrust(): Promise<KeylessTrust> {
  publicGoodTrust ??= publicGoodTrustedRoot().then(toKeylessTrust);
  return publicGoodTrust;
}

/** The workspace's trust for keyless evidence: `trustedRoot` from custody.yaml, else the public-good root. */
export function keylessTrustFor(ctx: Context): Promise<KeylessTrust> {
  let t = keylessCache.get(ctx);
  if (!t) {
    const configured = ctx.config.trustedRoot;
    t = configured === undefined ? publicGoodKeylessTrust() : readTrustedRoot(isAbsolute(configured) ? configured : resolve(ctx.home, configured)).then(toKeylessTrust);
    keylessCache.set(ctx, t);
  }
  return t;
}

// ---------------------------------------------------------------- verifying what is stored

export interface EvidenceQuery {
  predicateType?: string;
  /** Trust for keyless evidence, loaded only if there is some; default: the public-good root. */
  keyless?: () => Promise<KeylessTrust>;
  /** Results verified ahead of this transaction (`preverifyEvidence`), used only where they provably still hold. */
  preverified?: Preverified;
  /** false: leave Custody's own promotion receipts out, unverified (see `isOwnReceipt`). */
  ownReceipts?: boolean;
}

/**
 * Keyed verifications made before a transaction, on the verification pool,
 * for the one transaction that asked. Verification is a pure function of the
 * stored bytes, the artifact's digests, the signing time, the purpose and the
 * key records; a result is used only when the transaction reads the very same
 * of each (the same key list object: the store hands out the same frozen one
 * while no key changed), and anything else is verified again inside.
 */
export interface Preverified {
  /** The artifact the read found: its row is never updated or deleted, so a later transaction may take it as read. */
  artifact: Artifact;
  keys: TrustedKeys;
  /** Every piece of evidence about the artifact as the read found it (keyless included), oldest first. */
  rows: readonly StoredEvidence[];
  results: ReadonlyMap<string, { request: WireRequest; result: Omit<VerifyResult, 'statement'>; statement: Statement | null }>;
}

/** CONTRACT: every stored attestation about the artifact, verified with the one reference time `now`. */
export async function evidenceFor(tx: Tx, trusted: TrustedKeys, artifact: Artifact, now: Date, query: EvidenceQuery = {}): Promise<EvidenceItem[]> {
  return (await storedEvidenceFor(tx, trusted, artifact, now, { ...query, ownReceipts: false })).filter((e) => e.kind === 'attestation');
}

/**
 * A receipt this workspace issued for a promotion of the artifact, stored as
 * evidence about it. The policy does not read these (the environment graph and
 * the history gates speak for where the artifact has been), so the policy's
 * evidence leaves them out before verification: each hop would otherwise
 * verify every earlier hop's receipt only to drop it. Judged by the stored
 * row; the policy input drops receipts by their verified predicate type too,
 * so a row that lies about its type can only hide evidence, never add any.
 * A VSA imported from elsewhere is evidence like any other.
 */
export function isOwnReceipt(r: Pick<StoredEvidence, 'predicateType' | 'source'>): boolean {
  return r.predicateType === VSA_PREDICATE_TYPE && r.source !== 'imported';
}

/**
 * Every stored signature and attestation about the artifact, each verified.
 * `now` is the operation's reference time; key validity itself is judged at
 * each piece's signing time (see above), which is never later than `now`.
 */
export async function storedEvidenceFor(tx: Tx, trusted: TrustedKeys, artifact: Artifact, now: Date, query: EvidenceQuery = {}): Promise<EvidenceItem[]> {
  const stored = await evidenceRows(tx, artifact, query);
  const rows = query.ownReceipts === false ? stored.filter((r) => !isOwnReceipt(r)) : await withIssuedReceipts(tx, artifact, stored, query.predicateType);
  const digests = artifactDigests(artifact);
  const keyed = rows.filter((r) => r.expect === null);
  const results = new Map<string, { result: Omit<VerifyResult, 'statement'>; statement: Statement | null }>();

  // trustedKeys() hands out one object for equal key records, whichever connection read them.
  const ahead = query.preverified?.keys === trusted ? query.preverified.results : undefined;
  // What was verified ahead is taken; the rest is verified here, on the pool when there is enough of it.
  const left: { row: StoredEvidence; request: WireRequest }[] = [];
  for (const r of keyed) {
    const request = requestFor(r, digests, now, query.predicateType);
    const done = ahead?.get(r.digest);
    if (done && sameRequest(done.request, request)) results.set(r.digest, { result: done.result, statement: done.statement });
    else left.push({ row: r, request });
  }
  if (left.length >= POOL_MIN) {
    const wire = await sharedVerifyPool().verifyMany(
      keyListOf(trusted),
      left.map((l) => l.request),
      { withStatement: true },
    );
    left.forEach((l, i) => results.set(l.row.digest, fromWire(wire[i]!)));
  } else {
    for (const { row, request } of left) {
      const { statement, ...result } = verifyEvidence({ ...request, keys: trusted, signedAt: new Date(request.signedAt ?? row.signedAt) });
      results.set(row.digest, { result, statement });
    }
  }

  const keyless = rows.filter((r) => r.expect !== null);
  if (keyless.length > 0) {
    const trust = await (query.keyless ?? publicGoodKeylessTrust)();
    for (const r of keyless) {
      const { statement, ...result } = verifyEvidence({
        input: r.body,
        maxBytes: STORED_MAX,
        artifact: digests,
        keyless: { trust, expect: r.expect ?? { identity: '', issuer: '' } },
        ...(query.predicateType === undefined ? {} : { predicateType: query.predicateType }),
      });
      results.set(r.digest, { result, statement });
    }
  }

  return rows.map((r) => {
    const v = results.get(r.digest);
    const reasons: Reason[] = v ? v.result.reasons : [{ code: 'VERIFY_INTERNAL', message: 'not verified' }];
    return {
      digest: r.digest,
      kind: r.kind,
      source: r.source,
      predicateType: v?.result.predicateType ?? r.predicateType ?? '',
      statement: v?.statement ?? null,
      signatures: v?.result.signatures ?? [],
      verified: v?.result.ok === true,
      reasons,
      storedAt: r.storedAt,
    };
  });
}

/**
 * The receipts this workspace issued for promotions of the artifact, added to
 * the evidence the subject index found, oldest first. Receipts are stored
 * without subject index entries (promotion.ts); those of older versions have
 * them, and are not listed twice.
 */
async function withIssuedReceipts(tx: Tx, artifact: Artifact, rows: readonly StoredEvidence[], predicateType: string | undefined): Promise<readonly StoredEvidence[]> {
  if (predicateType !== undefined && predicateType !== VSA_PREDICATE_TYPE) return rows;
  const reached = await tx.promotions.list({ artifact: artifact.digest, states: [...REACHED_STATES] });
  const issued = await issuedReceipts(tx, reached.reverse(), new Set(rows.map((r) => r.digest)));
  if (issued.length === 0) return rows;
  // A stable sort: equal times keep the index's order, the receipts after.
  return [...rows, ...issued].sort((a, b) => (a.storedAt < b.storedAt ? -1 : a.storedAt > b.storedAt ? 1 : 0));
}

/**
 * The receipts of these promotions, in their order, but those in `known`:
 * receipts are stored without subject index entries, so readers that list an
 * artifact's receipts (this module, the deploy gate's material) find them
 * through the promotions that name them.
 */
export async function issuedReceipts(tx: Tx, promotions: readonly Pick<Promotion, 'receipt'>[], known: ReadonlySet<string>): Promise<StoredEvidence[]> {
  const out: StoredEvidence[] = [];
  const seen = new Set(known);
  for (const { receipt } of promotions) {
    if (receipt === null || seen.has(receipt)) continue;
    seen.add(receipt);
    const r = await tx.evidence.byDigest(receipt);
    if (r) out.push(r);
  }
  return out;
}

/**
 * The stored evidence about the artifact. Evidence is never updated or
 * deleted, and its digest names its bytes, so when the subject index names the
 * very digests a read ahead found, that read's rows are these rows; the index
 * answers from its own pages, without the bodies.
 */
async function evidenceRows(tx: Tx, artifact: Artifact, query: EvidenceQuery): Promise<readonly StoredEvidence[]> {
  const ahead = query.preverified?.rows;
  const subjects = subjectKeys(artifact);
  if (ahead !== undefined && query.predicateType === undefined) {
    const indexed = await tx.evidence.digestsForSubjects(subjects);
    const read = new Set<string>(ahead.map((r) => r.digest));
    if (indexed.length === read.size && indexed.every((d) => read.has(d))) return ahead;
  }
  return tx.evidence.forSubjects(subjects, query.predicateType);
}

function requestFor(r: StoredEvidence, digests: ArtifactDigests, now: Date, predicateType: string | undefined): WireRequest {
  return {
    input: r.body,
    maxBytes: STORED_MAX,
    artifact: digests,
    signedAt: earliest(r.signedAt, now),
    ...(predicateType === undefined ? {} : { predicateType }),
    // Promotion receipts are stored as evidence too; their keys are trusted for receipts, not for attesting.
    ...(r.predicateType === VSA_PREDICATE_TYPE ? { purpose: 'promotion-receipt' as const } : {}),
  };
}

/** Every input of a keyed verification but the keys (compared by the caller). */
function sameRequest(a: WireRequest, b: WireRequest): boolean {
  return (
    a.input === b.input &&
    a.signedAt === b.signedAt &&
    a.purpose === b.purpose &&
    a.predicateType === b.predicateType &&
    a.threshold === b.threshold &&
    a.maxBytes === b.maxBytes &&
    a.artifact.sha256 === b.artifact.sha256 &&
    a.artifact.sha512 === b.artifact.sha512
  );
}

/**
 * Verifies, on the verification pool and outside any transaction, the keyed
 * evidence a promotion of `ref` is about to rely on, so that the transaction
 * (which the store runs one at a time) does not spend its turn on signature
 * checks. Worth it only while other work can use this thread meanwhile; best
 * effort: on any problem it returns nothing, and the transaction verifies as usual.
 */
export async function preverifyEvidence(ctx: Context, ref: string, now: Date): Promise<Preverified | undefined> {
  try {
    const found = await ctx.store.read(async (tx) => {
      const artifact = await findArtifact(tx, ref);
      return { artifact, rows: await tx.evidence.forSubjects(subjectKeys(artifact)), keys: await trustedKeys(tx) };
    });
    // What the promotion's policy evidence will verify: keyed pieces, Custody's own receipts left out (see evidenceFor).
    const keyed = found.rows.filter((r) => r.expect === null && !isOwnReceipt(r));
    if (keyed.length === 0) return undefined;
    const digests = artifactDigests(found.artifact);
    const requests = keyed.map((r) => requestFor(r, digests, now, undefined));
    const wire = await sharedVerifyPool().verifyMany(keyListOf(found.keys), requests, { withStatement: true });
    return { artifact: found.artifact, keys: found.keys, rows: found.rows, results: new Map(keyed.map((r, i) => [r.digest, { request: requests[i]!, ...fromWire(wire[i]!) }])) };
  } catch {
    return undefined;
  }
}

/** A recorded time later than the reference time can only come from a skewed clock or a tampered row. */
function earliest(recorded: string, now: Date): string {
  return Date.parse(recorded) > now.getTime() ? now.toISOString() : recorded;
}

function fromWire(w: WireResult): { result: Omit<VerifyResult, 'statement'>; statement: Statement | null } {
  const { statementJson, ...result } = w;
  return { result, statement: statementJson === undefined ? null : (JSON.parse(statementJson) as Statement) };
}

export interface ArtifactVerification {
  artifact: Artifact;
  items: EvidenceItem[];
  /** True when there is at least one item and every item verified. */
  ok: boolean;
}

/** `custody verify <artifact>`: every stored signature and attestation, each verified and reported. */
export async function verifyArtifact(ctx: Context, input: { artifact: string; predicateType?: string }): Promise<ArtifactVerification> {
  const now = ctx.clock.now();
  return ctx.store.read(async (tx) => {
    const artifact = await findArtifact(tx, input.artifact);
    const items = await storedEvidenceFor(tx, await trustedKeys(tx), artifact, now, {
      ...(input.predicateType === undefined ? {} : { predicateType: input.predicateType }),
      keyless: () => keylessTrustFor(ctx),
    });
    return { artifact, items, ok: items.length > 0 && items.every((i) => i.verified) };
  });
}

// ---------------------------------------------------------------- storing

export interface StoredRef {
  evidence: Omit<StoredEvidence, 'body'>;
  path: string;
  created: boolean;
}

/**
 * Stores verified evidence about `artifact`, with its `evidence.stored` log
 * entry in the same transaction. Idempotent: the same bytes twice are one piece.
 */
export async function storeEvidence(ctx: Context, tx: Tx, evidence: StoredEvidence, artifact: Artifact, options?: { bySubject?: boolean }): Promise<boolean> {
  if (await tx.evidence.byDigest(evidence.digest)) return false;
  await tx.evidence.insert(evidence, options);
  await tx.log.append({
    type: 'evidence.stored',
    actor: ctx.actor.identity,
    time: evidence.storedAt,
    subject: artifact.digest,
    payload: {
      evidence: evidence.digest,
      kind: evidence.kind,
      format: evidence.format,
      mediaType: evidence.mediaType,
      predicateType: evidence.predicateType,
      signers: evidence.signers,
      signedAt: evidence.signedAt,
      source: evidence.source,
      subjects: evidence.subjects,
      size: evidence.size,
      ...(evidence.expect === null ? {} : { certificate: evidence.expect }),
    },
  });
  return true;
}

/** Writes the readable copy of stored evidence after commit; the database holds the original. */
export async function writeCopies(ctx: Context, stored: readonly StoredEvidence[], out?: string): Promise<string[]> {
  const paths: string[] = [];
  for (const e of stored) {
    const path = evidencePath(ctx.home, e.digest, e.format);
    await writeFileAtomic(path, e.body, { mode: 0o644, mkdir: true });
    paths.push(path);
  }
  if (out !== undefined && stored.length === 1) await writeFileAtomic(out, stored[0]!.body, { mode: 0o644, mkdir: true });
  return paths;
}

export function toStored(input: { body: string; result: VerifyResult; source: StoredEvidence['source']; time: string; actor: string; expect: StoredEvidence['expect'] }): StoredEvidence {
  const { body, result } = input;
  return {
    digest: evidenceDigest(body),
    kind: result.kind ?? 'attestation',
    format: result.format ?? 'bundle',
    mediaType: result.mediaType,
    predicateType: result.predicateType,
    signers: result.signers,
    signedAt: result.signedAt ?? input.time,
    storedAt: input.time,
    storedBy: input.actor,
    source: input.source,
    expect: input.expect,
    subjects: result.subjects,
    size: Buffer.byteLength(body, 'utf8'),
    body,
  };
}

/** Turns a failed verification into the error a command reports: bad input (exit 2) or not verified (exit 1). */
export function verificationError(what: string, result: VerifyResult): CustodyError {
  const first = result.reasons[0];
  const malformed = first !== undefined && MALFORMED_CODES.has(first.code);
  return new CustodyError(malformed ? 'EVIDENCE_INVALID' : 'VERIFY_FAILED', `${what}: ${result.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`, {
    details: { reasons: result.reasons },
    hint: malformed ? 'this is not a DSSE envelope or Sigstore bundle Custody can read' : 'the reasons say which step failed',
  });
}

// ---------------------------------------------------------------- import

export interface ImportInput {
  /** The evidence: a file here, or */
  file?: string;
  /** its text, as a client sends it (the server never opens a path it is given), with */
  text?: string;
  /** what to call it in messages (a client's file name; never opened). */
  source?: string;
  certificateIdentity?: string;
  certificateOidcIssuer?: string;
}

export interface ImportResult {
  stored: StoredRef[];
}

/**
 * `custody attest import`: a Sigstore bundle, a bare DSSE envelope, or a JSON
 * Lines file of either (`*.intoto.jsonl`). Every piece must be about an
 * artifact Custody knows and must verify now, against the workspace's keys or,
 * for keyless bundles, the trusted root and the given identity; otherwise
 * nothing is stored. It is verified again on every later use.
 */
export async function importEvidence(ctx: Context, input: ImportInput): Promise<ImportResult> {
  const now = ctx.clock.now();
  const time = now.toISOString();
  let subjectDigest: string | undefined;
  try {
    requireRole(ctx.actor, 'builder', 'importing evidence');
    if ((input.certificateIdentity === undefined) !== (input.certificateOidcIssuer === undefined)) {
      throw new CustodyError('USAGE', 'give --certificate-identity and --certificate-oidc-issuer together');
    }
    if ((input.file === undefined) === (input.text === undefined)) throw new CustodyError('USAGE', 'give the evidence as a file or as text, not both and not neither');
    const max = ctx.config.limits.evidenceBytes;
    const name = input.file ?? input.source ?? 'the evidence';
    let text: string;
    if (input.file !== undefined) text = decodeUtf8(await readLimited(input.file, max, 'evidence'), input.file);
    else {
      text = input.text ?? '';
      if (Buffer.byteLength(text, 'utf8') > max) throw new CustodyError('INPUT_TOO_LARGE', `${name} is over ${max} bytes`);
    }
    const pieces = splitEvidence(text, name);
    const expect = input.certificateIdentity !== undefined && input.certificateOidcIssuer !== undefined ? { identity: input.certificateIdentity, issuer: input.certificateOidcIssuer } : null;

    const verified = await ctx.store.read(async (tx) => {
      const keys = await trustedKeys(tx);
      const out: { evidence: StoredEvidence; artifact: Artifact }[] = [];
      for (const [i, body] of pieces.entries()) {
        const where = pieces.length > 1 ? `${name} line ${i + 1}` : name;
        const claim = claimedSubjects(body, max, where);
        const artifact = await findSubjectArtifact(tx, claim.subjects);
        if (!artifact) {
          throw new CustodyError('ARTIFACT_NOT_FOUND', `${where} is about ${claim.subjects[0] ?? 'no digest'}, which is not a registered artifact`, {
            hint: 'register the artifact first: custody artifact add',
          });
        }
        subjectDigest = artifact.digest;
        if (claim.keyless && expect === null) {
          throw new CustodyError('USAGE', `${where} is a keyless bundle: give --certificate-identity and --certificate-oidc-issuer`, {
            hint: 'e.g. --certificate-identity https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com',
          });
        }
        const result = verifyEvidence({
          input: body,
          maxBytes: max,
          artifact: artifactDigests(artifact),
          keys,
          signedAt: now,
          ...(claim.keyless && expect ? { keyless: { trust: await keylessTrustFor(ctx), expect } } : {}),
        });
        if (!result.ok) throw verificationError(where, result);
        out.push({ evidence: toStored({ body, result, source: 'imported', time, actor: ctx.actor.identity, expect: claim.keyless ? expect : null }), artifact });
      }
      return out;
    });

    const created = await ctx.store.transaction(async (tx) => {
      const flags: boolean[] = [];
      for (const v of verified) flags.push(await storeEvidence(ctx, tx, v.evidence, v.artifact));
      return flags;
    });
    const paths = await writeCopies(ctx, verified.map((v) => v.evidence));
    return {
      stored: verified.map((v, i) => {
        const { body: _body, ...evidence } = v.evidence;
        return { evidence, path: paths[i]!, created: created[i] === true };
      }),
    };
  } catch (e) {
    return auditRefusal(ctx, 'evidence.import', subjectDigest, e);
  }
}

/** One JSON document, or JSON Lines (one bundle or envelope per line, as `*.intoto.jsonl` files hold). */
function splitEvidence(text: string, file: string): string[] {
  try {
    JSON.parse(text);
    return [text];
  } catch {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    if (lines.length < 2) {
      throw new CustodyError('EVIDENCE_INVALID', `${file} is neither JSON nor JSON Lines`);
    }
    return lines.map((l) => l.replace(/\r$/, ''));
  }
}

/** What a piece of evidence says it is about, read before verifying it so the artifact can be found. */
function claimedSubjects(body: string, max: number, where: string): { subjects: string[]; keyless: boolean } {
  const parsed = parseInput(body, max);
  if (!parsed.ok) throw malformed(where, parsed.reason.code, parsed.reason.message);
  const ev = parsed.value;
  if (ev.format === 'bundle' && ev.bundle.content.type === 'messageSignature') {
    return { subjects: [`${ev.bundle.content.algorithm}:${ev.bundle.content.digest.toString('hex')}`], keyless: ev.bundle.key.type === 'certificate' };
  }
  const envelope = ev.format === 'dsse' ? ev.envelope : ev.bundle.content.type === 'dsse' ? ev.bundle.content.envelope : undefined;
  const statement = envelope ? parseStatement(envelope.payload) : undefined;
  if (!statement?.ok) throw malformed(where, 'STATEMENT_INVALID', statement ? statement.reason.message : 'no statement');
  const subjects = statement.value.subject.flatMap((s) => Object.entries(s.digest).map(([alg, hex]) => `${alg}:${hex}`));
  return { subjects, keyless: ev.format === 'bundle' && ev.bundle.key.type === 'certificate' };
}

function malformed(where: string, code: VerifyCode, message: string): CustodyError {
  return new CustodyError('EVIDENCE_INVALID', `${where}: ${code}: ${message}`, { details: { reasons: [{ code, message }] } });
}

/** The registered artifact a subject digest names: by sha256 directly, by sha512 (npm provenance) through the list. */
async function findSubjectArtifact(tx: Tx, subjects: readonly string[]): Promise<Artifact | undefined> {
  for (const s of subjects) {
    if (/^sha256:[0-9a-f]{64}$/.test(s)) {
      const a = await tx.artifacts.byDigest(s as DigestString);
      if (a) return a;
    }
  }
  const sha512 = subjects.filter((s) => /^sha512:[0-9a-f]{128}$/.test(s)).map((s) => s.slice(7));
  if (sha512.length === 0) return undefined;
  const all = await tx.artifacts.list({ limit: 10_000 });
  return all.find((a) => a.digests.sha512 !== undefined && sha512.includes(a.digests.sha512));
}

export { findArtifact };
