/**
 * The deploy-time gate around core's `verifyDeployment`: online against the
 * workspace (`custody verify <artifact> --env E`), and offline from exported
 * directories (`--offline --receipts DIR --keys DIR`), plus the export that
 * fills those directories (`custody receipts export --env E --out DIR`).
 *
 * An export directory holds, as files named by the hex of their digest:
 *   heads/<env>.json        the environment head, signed now by its receipt key, valid for --valid-for
 *   receipts/<hex>.json     every receipt of the current artifact (its chain through the graph)
 *   evidence/<hex>.json     every piece of evidence about it, to re-verify
 *   log/<hex>.json          the log entry that records each receipt: { index, body, inclusion? }
 *   keys/<keyid>.json       the public key records (status, window, revocation), for --keys
 * The receipts directory is untrusted data; the keys directory is the trust:
 * an admission controller should get it from its own channel.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { decodeUtf8, digestFile, readLimited } from '../adapters/evidence-files.ts';
import { writeFileAtomic } from '../adapters/fs-durable.ts';
import type { Artifact } from '../core/artifact.ts';
import { keyidOf, parsePublicKeyPem } from '../core/crypto.ts';
import { isDigestString, type DigestString } from '../core/digest.ts';
import { envelopeToJson, signEnvelope } from '../core/dsse.ts';
import { CustodyError, type Reason } from '../core/errors.ts';
import { KEY_ALGORITHMS, KEY_BACKENDS, KEY_PURPOSES, KEY_STATUSES, toTrustedKeys, type KeyRecord } from '../core/key.ts';
import type { Tx } from '../core/ports.ts';
import { HEAD_PAYLOAD_TYPE, inclusionChecker, REACHED_STATES, verifyDeployment, VSA_PREDICATE_TYPE, type ChainLink, type EnvironmentHead, type LogRecord } from '../core/promotion/index.ts';
import { parseDuration } from '../core/time.ts';
import { findArtifact } from './artifacts.ts';
import { issuedReceipts } from './evidence.ts';
import { signWorkspaceCheckpoint } from './log.ts';
import { proofFor } from './promotion-proofs.ts';
import { trustedKeys } from './keys.ts';
import { DEFAULT_PROMOTION_DEPS, environmentConfig, type PromotionDeps } from './promotion.ts';
import type { Context } from './workspace.ts';

export interface DeployReport {
  ok: boolean;
  mode: 'online' | 'offline';
  environment: string;
  artifact: { digest: string; name: string | null; version: string | null };
  /** What the environment runs, per the store or the head. */
  current: { promotion: string; digest: string; version: string } | null;
  reasons: Reason[];
  chain: ChainLink[];
  head: EnvironmentHead | null;
  checkedAt: string;
}

interface Material {
  receipts: Map<string, string>;
  evidence: Map<string, string>;
  log: Map<string, LogRecord>;
}

/** Everything stored about one artifact that its receipts could rely on: receipts, evidence and the receipts' log entries. */
async function materialFor(tx: Tx, artifact: Artifact): Promise<Material> {
  const subjects = Object.entries(artifact.digests).map(([alg, hex]) => `${alg}:${hex}`);
  const stored = await tx.evidence.forSubjects(subjects.length > 0 ? subjects : [artifact.digest]);
  const receipts = new Map<string, string>();
  const evidence = new Map<string, string>();
  for (const e of stored) (e.predicateType === VSA_PREDICATE_TYPE ? receipts : evidence).set(e.digest, e.body);
  const reached = await tx.promotions.list({ artifact: artifact.digest, states: [...REACHED_STATES] });
  // Receipts are found through their promotions: they are not in the subject index (those of older versions are).
  for (const r of await issuedReceipts(tx, reached, new Set(receipts.keys()))) receipts.set(r.digest, r.body);
  const log = new Map<string, LogRecord>();
  for (const p of reached) {
    if (p.receipt === null || p.logIndex === null) continue;
    const entry = await tx.log.byIndex(p.logIndex);
    const inclusion = p.proof ?? (await proofFor(tx, p.logIndex));
    if (entry) log.set(p.receipt, { index: entry.index, body: entry.body, ...(inclusion ? { inclusion } : {}) });
  }
  return { receipts, evidence, log };
}

function graphOf(ctx: Context): Record<string, string[]> {
  return Object.fromEntries(Object.entries(ctx.config.environments).map(([n, e]) => [n, e.from]));
}

/** `custody verify <artifact> --env E`: exit 0 only if the deploy-time gate admits it (core/promotion/deploy.ts D1–D7). */
export async function verifyEnvironment(ctx: Context, input: { artifact: string; environment: string }): Promise<DeployReport> {
  const now = ctx.clock.now();
  environmentConfig(ctx, input.environment);
  return ctx.store.read(async (tx) => {
    const artifact = await findArtifact(tx, input.artifact);
    const state = await tx.environments.get(input.environment);
    const cur = state?.current ? await tx.promotions.byId(state.current) : undefined;
    const m = await materialFor(tx, artifact);
    const keys = await trustedKeys(tx);
    const result = verifyDeployment({
      artifact: artifact.digest,
      environment: input.environment,
      now,
      keys,
      maxBytes: ctx.config.limits.evidenceBytes,
      current: { source: 'store', receipt: cur?.receipt ?? null, artifact: cur?.artifact.digest ?? null, ...(cur ? { version: cur.artifact.version } : {}) },
      receipts: m.receipts,
      evidence: m.evidence,
      log: m.log,
      // Online the store vouches for entries no checkpoint covers yet; a covered one must prove into it.
      checkInclusion: inclusionChecker(keys.byKeyid.values(), { required: false, origin: ctx.config.log.origin }),
      graph: graphOf(ctx),
    });
    return {
      ok: result.ok,
      mode: 'online' as const,
      environment: input.environment,
      artifact: { digest: artifact.digest, name: artifact.name, version: artifact.version },
      current: cur ? { promotion: cur.id, digest: cur.artifact.digest, version: cur.artifact.version } : null,
      reasons: result.reasons,
      chain: result.chain,
      head: null,
      checkedAt: now.toISOString(),
    };
  });
}

// ---------------------------------------------------------------- export

export interface ExportedFile {
  path: string;
  content: string;
}

export interface ReceiptExport {
  environment: string;
  artifact: { digest: string; name: string; version: string };
  head: EnvironmentHead;
  files: ExportedFile[];
}

const FILE_PATH_RE = /^(heads|receipts|evidence|log|keys)\/[A-Za-z0-9._-]{1,200}\.json$/;

/** `custody receipts export --env E`: a signed head (valid for `validFor`) and everything the offline gate needs. */
export async function exportReceipts(ctx: Context, input: { environment: string; validFor?: string | undefined }, deps: PromotionDeps = DEFAULT_PROMOTION_DEPS): Promise<ReceiptExport> {
  const env = environmentConfig(ctx, input.environment);
  const validMs = parseDuration(input.validFor ?? '24h');
  if (validMs <= 0 || validMs > 366 * 86_400_000) throw new CustodyError('INPUT_INVALID', '--valid-for must be between 1s and 366d');
  const { signer } = await deps.loadSigner(ctx, env.receiptKey, 'promotion-receipt');
  // Proofs need a checkpoint that covers every receipt: sign one now if a log key can (none: the export says so below).
  await signWorkspaceCheckpoint(ctx).catch(() => undefined);
  const now = ctx.clock.now();
  const got = await ctx.store.read(async (tx) => {
    const state = await tx.environments.get(input.environment);
    const cur = state?.current ? await tx.promotions.byId(state.current) : undefined;
    if (!state || !cur?.receipt) throw new CustodyError('PROMOTION_NOT_FOUND', `nothing has been promoted into ${input.environment}: there is no receipt to export`);
    const artifact = await tx.artifacts.byDigest(cur.artifact.digest);
    if (!artifact) throw new CustodyError('ARTIFACT_NOT_FOUND', `the current artifact of ${input.environment} is gone`);
    return { state, cur, receipt: cur.receipt, material: await materialFor(tx, artifact), keys: await tx.keys.list() };
  });
  const head: EnvironmentHead = {
    environment: input.environment,
    artifact: got.cur.artifact,
    promotion: got.cur.id,
    receipt: got.receipt,
    seq: got.state.seq,
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + validMs).toISOString(),
  };
  const envelope = await signEnvelope(HEAD_PAYLOAD_TYPE, Buffer.from(JSON.stringify(head), 'utf8'), signer);
  const hex = (d: string) => d.slice(d.indexOf(':') + 1);
  const files: ExportedFile[] = [
    { path: `heads/${input.environment}.json`, content: `${JSON.stringify(envelopeToJson(envelope))}\n` },
    ...[...got.material.receipts].map(([d, body]) => ({ path: `receipts/${hex(d)}.json`, content: body })),
    ...[...got.material.evidence].map(([d, body]) => ({ path: `evidence/${hex(d)}.json`, content: body })),
    ...[...got.material.log].map(([d, record]) => ({ path: `log/${hex(d)}.json`, content: `${JSON.stringify(record)}\n` })),
    ...got.keys.map((k) => ({ path: `keys/${k.keyid}.json`, content: `${JSON.stringify(k)}\n` })),
  ];
  return { environment: input.environment, artifact: got.cur.artifact, head, files };
}

/** Writes an export under `dir`, refusing any path outside the layout (the files may come from a server). */
export async function writeExport(dir: string, files: readonly ExportedFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    if (!FILE_PATH_RE.test(f.path)) throw new CustodyError('SERVER_RESPONSE_INVALID', `refusing to write ${JSON.stringify(f.path.slice(0, 100))}: not a file of an export`);
    const path = join(dir, f.path);
    await writeFileAtomic(path, f.content, { mode: 0o644, mkdir: true });
    written.push(path);
  }
  return written;
}

// ---------------------------------------------------------------- offline

const KeyRecordSchema = z.strictObject({
  keyid: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string().min(1).max(64),
  version: z.number().int().positive(),
  algorithm: z.enum(KEY_ALGORITHMS),
  owner: z.string().max(256),
  purposes: z.array(z.enum(KEY_PURPOSES)).max(8),
  notBefore: z.string().max(64),
  notAfter: z.string().max(64).nullable(),
  status: z.enum(KEY_STATUSES),
  retiredAt: z.string().max(64).nullable(),
  revokedAt: z.string().max(64).nullable(),
  revocationReason: z.string().max(256).nullable(),
  compromisedSince: z.string().max(64).nullable(),
  backend: z.enum(KEY_BACKENDS),
  publicKeyPem: z.string().max(16 * 1024),
  createdAt: z.string().max(64),
  createdBy: z.string().max(256),
});

const LogRecordSchema = z.strictObject({
  index: z.number().int().nonnegative(),
  body: z.string().max(1024 * 1024),
  inclusion: z.strictObject({ index: z.number().int().nonnegative(), size: z.number().int().positive(), hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(64), checkpoint: z.string().max(64 * 1024) }).optional(),
});

const SMALL_FILE = 4 * 1024 * 1024;
const MAX_FILES = 10_000;

async function jsonFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CustodyError('INPUT_UNREADABLE', `cannot read ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const out = names.filter((n) => n.endsWith('.json')).sort();
  if (out.length > MAX_FILES) throw new CustodyError('INPUT_TOO_LARGE', `${dir} holds more than ${MAX_FILES} files`);
  return out;
}

async function readText(path: string, max: number): Promise<string> {
  return decodeUtf8(await readLimited(path, max), path);
}

/** The trust for offline verification: key records, each checked against its own public key. */
export async function readKeysDir(dir: string): Promise<KeyRecord[]> {
  const files = await jsonFiles(dir);
  if (files.length === 0) throw new CustodyError('INPUT_NOT_FOUND', `no key records (*.json) in ${dir}`, { hint: 'custody receipts export writes them to <out>/keys' });
  const keys: KeyRecord[] = [];
  for (const f of files) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readText(join(dir, f), SMALL_FILE));
    } catch (e) {
      if (e instanceof CustodyError) throw e;
      throw new CustodyError('KEY_INVALID', `${join(dir, f)} is not JSON`);
    }
    const r = KeyRecordSchema.safeParse(parsed);
    if (!r.success) throw new CustodyError('KEY_INVALID', `${join(dir, f)} is not a key record: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`);
    const key: KeyRecord = r.data;
    if (keyidOf(parsePublicKeyPem(key.publicKeyPem)) !== key.keyid) throw new CustodyError('KEY_ID_MISMATCH', `${join(dir, f)} claims key id ${key.keyid}, which is not its public key's`);
    keys.push(key);
  }
  return keys;
}

export interface OfflineInput {
  /** `sha256:<hex>`, or a file to hash. */
  artifact: string;
  environment: string;
  receiptsDir: string;
  keysDir: string;
  now?: Date;
  maxBytes?: number;
}

/** `custody verify <artifact> --env E --offline --receipts DIR --keys DIR`: the same gate with no workspace at all. */
export async function verifyOffline(input: OfflineInput): Promise<DeployReport> {
  const now = input.now ?? new Date();
  const maxBytes = input.maxBytes ?? 16 * 1024 * 1024;
  const digest: DigestString = isDigestString(input.artifact) ? input.artifact : `sha256:${(await digestFile(input.artifact)).sha256}`;
  if (!digest.startsWith('sha256:')) throw new CustodyError('DIGEST_INVALID', 'offline verification takes a sha256 digest or the artifact file');
  const keys = await readKeysDir(input.keysDir);
  const read = async (sub: string, max: number): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    for (const f of await jsonFiles(join(input.receiptsDir, sub))) out.set(`sha256:${f.slice(0, -5)}`, await readText(join(input.receiptsDir, sub, f), max));
    return out;
  };
  const receipts = await read('receipts', SMALL_FILE);
  const evidence = await read('evidence', maxBytes);
  const log = new Map<string, LogRecord>();
  for (const [d, text] of await read('log', SMALL_FILE)) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      continue; // an unreadable entry is a missing one: D3 says so
    }
    const r = LogRecordSchema.safeParse(v);
    if (r.success) log.set(d, { index: r.data.index, body: r.data.body, ...(r.data.inclusion ? { inclusion: r.data.inclusion } : {}) });
  }
  const headPath = join(input.receiptsDir, 'heads', `${input.environment}.json`);
  const head = /^[a-z][a-z0-9-]{0,62}$/.test(input.environment) ? await readText(headPath, SMALL_FILE).catch(() => undefined) : undefined;
  const result = verifyDeployment({
    artifact: digest,
    environment: input.environment,
    now,
    keys: toTrustedKeys(keys),
    maxBytes,
    current: { source: 'head', head },
    receipts,
    evidence,
    log,
    // Offline the files prove nothing by themselves: every receipt's entry must prove into a checkpoint signed by a log key in --keys.
    checkInclusion: inclusionChecker(keys, { required: true }),
  });
  const h = result.head;
  return {
    ok: result.ok,
    mode: 'offline',
    environment: input.environment,
    artifact: { digest, name: h?.artifact.name ?? null, version: h?.artifact.version ?? null },
    current: h ? { promotion: h.promotion, digest: h.artifact.digest, version: h.artifact.version } : null,
    reasons: result.reasons,
    chain: result.chain,
    head: h ?? null,
    checkedAt: now.toISOString(),
  };
}
