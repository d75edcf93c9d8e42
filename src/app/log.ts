/**
 * Use cases of the tamper-evident log: sign checkpoints, prove entries, audit
 * the whole log, export offline evidence and verify it with nothing else.
 */
import { join } from 'node:path';
import { keyidOf, parsePublicKeyPem } from '../core/crypto.ts';
import { bytesEqual } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import { keyLabel, keyMaySign, type KeyRecord } from '../core/key.ts';
import type { Clock, LogEntry, Signer, StoredCheckpoint, Tx } from '../core/ports.ts';
import { parseDuration } from '../core/time.ts';
import {
  addSignatures,
  ed25519FromRaw,
  ed25519Raw,
  encodeBase64,
  entriesMemberName,
  EVIDENCE_CHUNK,
  EVIDENCE_FORMAT,
  EvidenceVerifier,
  formatVkey,
  LogAuditor,
  logNoteVerifier,
  logNoteVerifierFor,
  MAX_NOTE_BYTES,
  parseCheckpointText,
  parseEntryBody,
  parseEntryId,
  parseNote,
  parseVkey,
  SIG_TYPE_ED25519,
  signCheckpoint,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type AuditCheckpoint,
  type EvidenceSummary,
  type Finding,
  type Manifest,
  type NoteVerifier,
} from '../core/tlog/index.ts';
import { DEFAULT_TAR_LIMITS, packTar, readTar, writeTar, type TarLimits, type TarMember } from '../adapters/evidence-tar.ts';
import { readIfExists, readLimited } from '../adapters/read-limited.ts';
import { PromotionLedger, rowDifference, type LoggedPromotion } from '../core/promotion/index.ts';
import { auditRefusal } from './audit.ts';
import { loadSigner } from './keys.ts';
import { writeFileAtomic } from '../adapters/fs-durable.ts';
import type { Context } from './workspace.ts';

/** The workspace's own copy of the newest checkpoint, outside the database: a rollback of the database alone shows. */
export const STORED_CHECKPOINT_FILE = 'latest-checkpoint';
/** Rows per read while streaming the log. */
const PAGE = 512;
/** Largest log key file read. */
export const MAX_KEY_BYTES = 64 * 1024;
/** Largest evidence bundle handed back as bytes (over HTTP, base64 in JSON): larger logs are exported in ranges. */
export const EXPORT_MAX_BYTES = 48 * 1024 * 1024;
export { MAX_NOTE_BYTES };

// ---------------------------------------------------------------- trust

/** Note verifiers for every version of every log-checkpoint key the workspace knows (validity decides per checkpoint). */
export function logVerifiers(keys: readonly KeyRecord[], origin: string): NoteVerifier[] {
  const out: NoteVerifier[] = [];
  for (const k of keys) {
    if (!k.purposes.includes('log-checkpoint')) continue;
    const v = logNoteVerifierFor(k, origin);
    if (v) out.push(v);
  }
  return out;
}

/** A log public key given by hand: a PEM SubjectPublicKeyInfo (signing as the origin) or a C2SP vkey. */
export function parseLogKey(text: string, origin: string): NoteVerifier {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    const key = parsePublicKeyPem(trimmed);
    if (key.asymmetricKeyType !== 'ed25519') throw new CustodyError('KEY_INVALID', 'a log key is an Ed25519 public key');
    return logNoteVerifier(origin, key, keyidOf(key));
  }
  const vkey = parseVkey(trimmed);
  if (vkey.type !== SIG_TYPE_ED25519) throw new CustodyError('KEY_INVALID', `a log key is an Ed25519 (type 0x01) vkey, not type 0x${vkey.type.toString(16)}`);
  const key = ed25519FromRaw(vkey.publicKey);
  return logNoteVerifier(vkey.name, key, keyidOf(key));
}

/** The C2SP verifier key of a log key, for witnesses and monitors: `<origin>+<key ID>+<base64>`. */
export function logVkey(key: KeyRecord, origin: string): string {
  return formatVkey(origin, SIG_TYPE_ED25519, ed25519Raw(parsePublicKeyPem(key.publicKeyPem)));
}

async function readLogKeys(files: readonly string[], origin: string): Promise<NoteVerifier[]> {
  const out: NoteVerifier[] = [];
  for (const f of files) out.push(parseLogKey(Buffer.from(await readLimited(f, MAX_KEY_BYTES)).toString('utf8'), origin));
  return out;
}

function parseLogKeys(texts: readonly string[], origin: string): NoteVerifier[] {
  return texts.map((t) => {
    if (Buffer.byteLength(t, 'utf8') > MAX_KEY_BYTES) throw new CustodyError('INPUT_TOO_LARGE', `a log key is over ${MAX_KEY_BYTES} bytes`);
    return parseLogKey(t, origin);
  });
}

// ---------------------------------------------------------------- checkpoints

export interface SignCheckpointInput {
  signer: Signer;
  key: KeyRecord;
  origin: string;
  now: Date;
  /** Sign even when the log has not grown since the latest checkpoint (e.g. after a key rotation). */
  force?: boolean;
}

export interface SignCheckpointResult {
  checkpoint: StoredCheckpoint;
  /** False when the latest checkpoint already covers the whole log. */
  signed: boolean;
}

/**
 * Signs a checkpoint of the whole log in `tx`. Before signing, the newest
 * stored checkpoint must verify with the log's keys and the stored tree must
 * still have its root at its size: per C2SP tlog-checkpoint a log never signs a
 * checkpoint inconsistent with one it signed before, so a rewritten history is
 * refused here rather than blessed.
 */
export async function signCheckpointWith(tx: Tx, input: SignCheckpointInput): Promise<SignCheckpointResult> {
  const may = keyMaySign(input.key, 'log-checkpoint', input.now);
  if (!may.ok) throw new CustodyError('KEY_NOT_USABLE', may.reason ?? `key ${keyLabel(input.key)} may not sign checkpoints now`);
  const size = await tx.log.size();
  const latest = await tx.log.latestCheckpoint();
  if (latest) {
    if (latest.size === size && !input.force) return { checkpoint: latest, signed: false };
    const verified = verifyCheckpoint(latest.note, logVerifiers(await tx.keys.list(), input.origin), { origin: input.origin });
    if (!verified.ok || !verified.value || verified.value.checkpoint.size !== latest.size || !bytesEqual(verified.value.checkpoint.root, latest.root)) {
      throw new CustodyError('LOG_TAMPERED', `the latest checkpoint (#${latest.seq}, size ${latest.size}) does not verify with the log's keys; refusing to sign over it`, {
        hint: 'run `custody audit verify` to find what changed',
        details: { seq: latest.seq, reasons: verified.reasons },
      });
    }
    if (latest.size > size) {
      throw new CustodyError('LOG_TAMPERED', `the log has ${size} entries but its latest checkpoint covers ${latest.size}: entries were removed`, { hint: 'run `custody audit verify`' });
    }
    if (!bytesEqual(await tx.log.root(latest.size), latest.root)) {
      throw new CustodyError('LOG_TAMPERED', `the stored tree no longer has the root checkpoint #${latest.seq} signed at size ${latest.size}; refusing to sign an inconsistent checkpoint`, {
        hint: 'run `custody audit verify` to find what changed',
      });
    }
  }
  const root = await tx.log.root(size);
  const note = await signCheckpoint({ origin: input.origin, size, root }, input.signer, input.key);
  const checkpoint = await tx.log.addCheckpoint({ size, root, note, keyid: input.key.keyid, createdAt: input.now.toISOString() });
  return { checkpoint, signed: true };
}

export type CheckpointOutcome =
  | { status: 'signed'; checkpoint: StoredCheckpoint }
  | { status: 'current'; checkpoint: StoredCheckpoint }
  | { status: 'no-key'; reason: string };

/** Key load failures that mean "this workspace has no usable log key": the command goes on, entries wait. */
const NO_KEY = new Set(['KEY_NOT_FOUND', 'KEY_NOT_USABLE', 'KEK_MISSING', 'KEY_DECRYPT_FAILED', 'HSM_ERROR']);

/** The name of the workspace's log key (`log.checkpointKey`, default `log`). */
export function checkpointKeyName(ctx: Context): string {
  return ctx.config.log.checkpointKey ?? 'log';
}

/**
 * Signs a checkpoint with the workspace's log key (`log.checkpointKey`, default
 * `log`), then keeps a copy outside the database. `signer` overrides the key
 * lookup (tests, and callers that hold the key already).
 */
export async function signWorkspaceCheckpoint(ctx: Context, options: { force?: boolean; signer?: { key: KeyRecord; signer: Signer } } = {}): Promise<CheckpointOutcome> {
  const now = ctx.clock.now();
  let loaded: { key: KeyRecord; signer: Signer };
  try {
    loaded = options.signer ?? (await loadSigner(ctx, checkpointKeyName(ctx), 'log-checkpoint'));
  } catch (e) {
    if (!(e instanceof CustodyError) || !NO_KEY.has(e.code)) throw e;
    // Without a key, say so only when entries are actually waiting.
    const { size, latest } = await ctx.store.read(async (tx) => ({ size: await tx.log.size(), latest: await tx.log.latestCheckpoint() }));
    if (latest && latest.size >= size) return { status: 'current', checkpoint: latest };
    return { status: 'no-key', reason: e.message };
  }
  const result = await ctx.store.transaction((tx) =>
    signCheckpointWith(tx, { signer: loaded.signer, key: loaded.key, origin: ctx.config.log.origin, now, ...(options.force === undefined ? {} : { force: options.force }) }),
  );
  if (result.signed) await writeFileAtomic(join(ctx.home, STORED_CHECKPOINT_FILE), result.checkpoint.note, { mode: 0o644 });
  return result.signed ? { status: 'signed', checkpoint: result.checkpoint } : { status: 'current', checkpoint: result.checkpoint };
}

/**
 * `audit checkpoint --sign`: a checkpoint of the whole log now, even at the same
 * size (e.g. after a key rotation). No usable key is an error here; a refusal
 * (a rewritten history, a key that may not sign) is recorded as request.refused.
 */
export async function signCheckpointNow(ctx: Context): Promise<StoredCheckpoint> {
  try {
    const outcome = await signWorkspaceCheckpoint(ctx, { force: true });
    if (outcome.status === 'no-key') {
      throw new CustodyError('KEY_NOT_FOUND', `no log key can sign checkpoints: ${outcome.reason}`, {
        hint: `create an Ed25519 key with purpose log-checkpoint named ${ctx.config.log.checkpointKey ?? 'log'}`,
      });
    }
    return outcome.checkpoint;
  } catch (e) {
    return auditRefusal(ctx, 'audit.checkpoint', undefined, e);
  }
}

/** What the scheduler needs from the world: the signing, a clock and timers. */
export interface SchedulerDeps {
  sign: () => Promise<CheckpointOutcome>;
  clock: Clock;
  intervalMs: number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

/**
 * "A checkpoint after each batch, at most every N seconds." Each committing
 * batch calls `notify()`: the checkpoint is signed at once when this process
 * signed none in the last interval, otherwise when the interval is up, covering
 * every batch since. `flush()` signs what is pending now: a CLI command is one
 * batch and flushes as it ends, so its entries never wait for another command;
 * the server signs at most once per interval and flushes when it stops.
 */
export class CheckpointScheduler {
  private readonly deps: SchedulerDeps;
  private lastSigned = Number.NEGATIVE_INFINITY;
  private pending = false;
  private timer: { cancel(): void } | undefined;
  private running: Promise<CheckpointOutcome | undefined> = Promise.resolve(undefined);
  private last: CheckpointOutcome | undefined;
  private readonly outcomes: ((o: CheckpointOutcome) => void)[] = [];

  constructor(deps: SchedulerDeps) {
    this.deps = deps;
  }

  /** Sees the outcome of every signing (e.g. to report a missing key). */
  onOutcome(fn: (o: CheckpointOutcome) => void): void {
    this.outcomes.push(fn);
  }

  /** The outcome of the most recent signing, if any. */
  get lastOutcome(): CheckpointOutcome | undefined {
    return this.last;
  }

  /**
   * A batch committed. Resolves with the outcome of the signing this started,
   * or, when the interval defers it, with the last outcome known.
   */
  notify(): Promise<CheckpointOutcome | undefined> {
    this.pending = true;
    const due = this.lastSigned + this.deps.intervalMs - this.deps.clock.now().getTime();
    if (due <= 0) return this.run();
    if (!this.timer) {
      const set =
        this.deps.setTimer ??
        ((fn, ms) => {
          // Never what keeps a process alive: a CLI flushes as it ends, the server holds its socket.
          const t = setTimeout(fn, ms).unref();
          return { cancel: () => clearTimeout(t) };
        });
      this.timer = set(() => {
        this.timer = undefined;
        void this.run().catch(() => undefined);
      }, due);
    }
    return Promise.resolve(this.last);
  }

  /** Signs what is pending now; otherwise hands back the outcome of the signing already under way or done. */
  async flush(): Promise<CheckpointOutcome | undefined> {
    this.timer?.cancel();
    this.timer = undefined;
    const last = await this.running;
    return this.pending ? this.run() : last;
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private run(): Promise<CheckpointOutcome | undefined> {
    this.running = this.running
      .catch(() => undefined)
      .then(async () => {
        if (!this.pending) return this.last;
        this.pending = false;
        this.lastSigned = this.deps.clock.now().getTime();
        const outcome = await this.deps.sign();
        this.last = outcome;
        for (const fn of this.outcomes) fn(outcome);
        return outcome;
      });
    return this.running;
  }
}

/** What a human is told when entries were recorded but no checkpoint could be signed over them. */
export function waitingNotice(outcome: CheckpointOutcome | undefined): string | undefined {
  return outcome?.status === 'no-key' ? `note: new log entries wait for a signed checkpoint: ${outcome.reason}` : undefined;
}

/** Runs a command or a request, counting the log entries it appended. */
export { tallyAppends } from '../adapters/sql/log.ts';

/** The interval from the config, in milliseconds. */
export function checkpointIntervalMs(ctx: Context): number {
  return parseDuration(ctx.config.log.checkpointInterval);
}

export async function logSize(ctx: Context): Promise<number> {
  return ctx.store.read((tx) => tx.log.size());
}

export async function latestCheckpoint(ctx: Context): Promise<StoredCheckpoint> {
  const latest = await ctx.store.read((tx) => tx.log.latestCheckpoint());
  if (!latest) {
    throw new CustodyError('CHECKPOINT_NOT_FOUND', 'the log has no signed checkpoint yet', {
      hint: `create a log key (purpose log-checkpoint, named ${ctx.config.log.checkpointKey ?? 'log'}), then run \`custody audit checkpoint --sign\``,
    });
  }
  return latest;
}

/**
 * Adds a witness's cosignature lines to the stored checkpoint with the same
 * signed text, so exports carry them. Like checkpoints themselves this is the
 * log's own metadata, not a change to what the log records (a signature that
 * verifies by itself is attached), so it appends no entry.
 */
export async function attachCosignature(ctx: Context, cosigned: string): Promise<boolean> {
  if (Buffer.byteLength(cosigned, 'utf8') > MAX_NOTE_BYTES) throw new CustodyError('INPUT_TOO_LARGE', `a checkpoint is at most ${MAX_NOTE_BYTES} bytes`);
  const parsed = parseNote(cosigned);
  const signed = parseCheckpointText(parsed.text);
  if (signed.origin !== ctx.config.log.origin) return false;
  return ctx.store.transaction(async (tx) => {
    let found = false;
    for (const c of await tx.log.checkpoints({ size: signed.size, seq: -1 }, 1000)) {
      if (c.size !== signed.size) break;
      if (parseNote(c.note).text !== parsed.text) continue;
      const note = addSignatures(c.note, parsed.signatures.map((x) => x.line));
      // Readers refuse a note past their size and signature-count limits: cosignatures must not make the log's own checkpoint unreadable.
      try {
        parseNote(note);
      } catch (e) {
        throw new CustodyError('INPUT_TOO_LARGE', `checkpoint #${c.seq} cannot take these cosignatures: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      await tx.log.updateCheckpointNote(c.seq, note);
      found = true;
    }
    return found;
  });
}

/** The consistency proof between two sizes of the log (RFC 9162 §2.1.4), for a witness that cosigned the smaller. */
export async function consistencyProof(ctx: Context, size1: number, size2: number): Promise<{ size1: number; size2: number; proof: string[] }> {
  return ctx.store.read(async (tx) => {
    const size = await tx.log.size();
    if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size1 > size2 || size2 > size) {
      throw new CustodyError('INPUT_INVALID', `${size1}→${size2} is not a pair of sizes of this log (0 ≤ from ≤ to ≤ ${size})`);
    }
    const proof = size1 === 0 || size1 === size2 ? [] : await tx.log.consistencyProof(size1, size2);
    return { size1, size2, proof: proof.map(encodeBase64) };
  });
}

/** A witness refused to cosign (a rollback, a fork): that is put on the record, as the witness said it. */
export async function recordWitnessRefusal(ctx: Context, reason: string): Promise<void> {
  const time = ctx.clock.now().toISOString();
  await ctx.store.transaction((tx) => tx.log.append({ type: 'request.refused', actor: ctx.actor.identity, time, payload: { action: 'audit.witness', code: 'WITNESS_REFUSED', reason } }));
}

// ---------------------------------------------------------------- proofs

export interface EntryProof {
  entry: { index: number; id: string; leafHash: string; body: string; type: string; actor: string; time: string; subject?: string };
  proof: { index: number; treeSize: number; hashes: string[] };
  checkpoint: string;
}

/** An entry by index or id, with its inclusion proof in the tree of the newest checkpoint, checked before it is handed out. */
export async function proveEntry(ctx: Context, ref: string): Promise<EntryProof> {
  return ctx.store.read(async (tx) => {
    const entry = await findEntry(tx, ref);
    const latest = await tx.log.latestCheckpoint();
    if (!latest || latest.size <= entry.index) {
      throw new CustodyError('CHECKPOINT_NOT_FOUND', `entry ${entry.index} is not covered by a signed checkpoint yet`, {
        hint: 'run `custody audit checkpoint --sign`',
      });
    }
    const hashes = await tx.log.inclusionProof(entry.index, latest.size);
    const signed = parseCheckpointText(parseNote(latest.note).text);
    const check = verifyInclusion(entry.index, signed.size, Buffer.from(entry.leafHash, 'hex'), hashes, signed.root);
    if (!check.ok) {
      throw new CustodyError('LOG_TAMPERED', `entry ${entry.index} does not prove into checkpoint #${latest.seq}: ${check.reason}`, { hint: 'run `custody audit verify`' });
    }
    return {
      entry: {
        index: entry.index,
        id: entry.id,
        leafHash: entry.leafHash,
        body: entry.body,
        type: entry.type,
        actor: entry.actor,
        time: entry.time,
        ...(entry.subject === undefined ? {} : { subject: entry.subject }),
      },
      proof: { index: entry.index, treeSize: latest.size, hashes: hashes.map(encodeBase64) },
      checkpoint: latest.note,
    };
  });
}

async function findEntry(tx: Tx, ref: string): Promise<LogEntry> {
  let entry: LogEntry | undefined;
  if (/^(0|[1-9][0-9]{0,15})$/.test(ref)) entry = await tx.log.byIndex(Number(ref));
  else if (parseEntryId(ref)) entry = await tx.log.byId(ref);
  else throw new CustodyError('INPUT_INVALID', `"${ref.slice(0, 80)}" is neither an entry index nor an entry id`, { hint: 'e.g. 42, or 42-6e340b9cffb37a989ca544e6bb780a2c' });
  if (!entry) throw new CustodyError('LOG_ENTRY_NOT_FOUND', `no log entry ${ref}`);
  return entry;
}

// ---------------------------------------------------------------- audit verify

export interface AuditReport {
  ok: boolean;
  origin: string;
  entries: number;
  checkpoints: number;
  /** The size up to which a valid checkpoint vouches for the log. */
  verifiedSize: number;
  /** Promotion rows found equal to what their log entries say. */
  promotions: number;
  finding?: Finding;
  /** Outside checkpoints compared (the workspace's stored copy, --checkpoint files). */
  outside: string[];
}

export interface AuditOptions {
  /** Trusted checkpoints kept outside the database (witnessed, or saved by an auditor): file paths, or */
  checkpointFiles?: readonly string[];
  /** their texts as a client sends them, each with what to call it in the report. */
  checkpoints?: readonly { source: string; note: string }[];
  /** Pin the log's keys instead of trusting the workspace's key records: files, or */
  logKeyFiles?: readonly string[];
  /** their texts (PEM or vkey). */
  logKeys?: readonly string[];
  /** Progress, every page. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Recomputes the tree from every stored entry, streaming in index order, and
 * checks every recorded leaf, subtree hash and checkpoint against it, plus the
 * consistency of each checkpoint with the one before. Stops at the first index
 * where anything differs. Memory: one page of rows and O(log n) hashes.
 */
export async function auditVerify(ctx: Context, options: AuditOptions = {}): Promise<AuditReport> {
  const origin = ctx.config.log.origin;
  const outside: AuditCheckpoint[] = [];
  const stored = await readIfExists(join(ctx.home, STORED_CHECKPOINT_FILE), MAX_NOTE_BYTES);
  if (stored) outside.push(outsideCheckpoint(stored, `the workspace's copy (${STORED_CHECKPOINT_FILE})`));
  for (const f of options.checkpointFiles ?? []) outside.push(outsideCheckpoint(await readLimited(f, MAX_NOTE_BYTES), f));
  for (const c of options.checkpoints ?? []) {
    const bytes = Buffer.from(c.note, 'utf8');
    if (bytes.length > MAX_NOTE_BYTES) throw new CustodyError('INPUT_TOO_LARGE', `${c.source} is over ${MAX_NOTE_BYTES} bytes`);
    outside.push(outsideCheckpoint(bytes, c.source));
  }
  const pinnedKeys = [...(options.logKeyFiles && options.logKeyFiles.length > 0 ? await readLogKeys(options.logKeyFiles, origin) : []), ...parseLogKeys(options.logKeys ?? [], origin)];
  const pinned = pinnedKeys.length > 0 ? pinnedKeys : undefined;

  return ctx.store.read(async (tx) => {
    const verifiers = pinned ?? logVerifiers(await tx.keys.list(), origin);
    const auditor = new LogAuditor({ origin, verifiers });
    const total = await tx.log.size();
    const report = (finding?: Finding): AuditReport => ({
      ok: finding === undefined,
      origin,
      entries: auditor.size,
      checkpoints: checked,
      verifiedSize: auditor.vouched.size,
      promotions,
      ...(finding === undefined ? {} : { finding }),
      outside: outside.map((o) => o.source ?? ''),
    });

    // Stored checkpoints stream by (size, seq); outside ones are merged in by size.
    let checked = 0;
    let promotions = 0;
    let cursor: { size: number; seq: number } | undefined;
    let buffer: AuditCheckpoint[] = [];
    let exhausted = false;
    const pendingOutside = [...outside].sort((a, b) => a.size - b.size);
    let previous: { size: number; root: Uint8Array } | undefined;
    const nextCheckpoint = async (): Promise<AuditCheckpoint | undefined> => {
      if (buffer.length === 0 && !exhausted) {
        const page = await tx.log.checkpoints(cursor, 1000);
        if (page.length < 1000) exhausted = true;
        const last = page.at(-1);
        if (last) cursor = { size: last.size, seq: last.seq };
        buffer = page.map((c) => ({ seq: c.seq, size: c.size, root: c.root, note: c.note, createdAt: c.createdAt }));
      }
      const s = buffer[0];
      const o = pendingOutside[0];
      if (o && (!s || o.size < s.size)) return o;
      return s;
    };
    const take = (cp: AuditCheckpoint) => {
      if (cp.source !== undefined) pendingOutside.shift();
      else buffer.shift();
    };
    /** Checks every checkpoint of the size the tree has now reached. */
    const drain = async (final: boolean): Promise<Finding | undefined> => {
      for (let cp = await nextCheckpoint(); cp && (final || cp.size <= auditor.size); cp = await nextCheckpoint()) {
        take(cp);
        checked++;
        const f = auditor.checkpoint(cp);
        if (f) return f;
        if (cp.source === undefined) {
          const f2 = await consistent(tx, previous, cp);
          if (f2) return f2;
          previous = { size: cp.size, root: auditor.root };
        }
      }
      return undefined;
    };

    // The promotions' rows against their entries: final ones as the log reaches them, the rest at its end.
    const ledger = new PromotionLedger();
    let final: LoggedPromotion[] = [];
    const compare = async (batch: readonly LoggedPromotion[]): Promise<Finding | undefined> => {
      const rows = new Map((await tx.promotions.byIds(batch.map((p) => p.id))).map((r) => [r.id, r]));
      for (const logged of batch) {
        const differs = rowDifference(logged, rows.get(logged.id));
        if (differs) return { index: logged.index, kind: 'promotion-row', message: differs };
        promotions++;
      }
      return undefined;
    };

    let f = await drain(false);
    if (f) return report(f);
    for (let from = 0; ; ) {
      const rows = await tx.log.leaves(from, PAGE);
      if (rows.length === 0) break;
      const end = rows.at(-1)!.index + 1;
      for (const row of rows) {
        f = auditor.entry(row.index, row.body, row.leafHash, row.nodes);
        if (f) return report(f);
        // Only a body that may be a promotion's or a vote's entry is parsed: its top-level type is written unescaped like
        // this (a payload that happens to match is parsed and passed over by its type).
        if (row.body.includes('"type":"promotion.') || row.body.includes('"type":"approval.')) {
          const step = ledger.entry(parseEntryBody(row.body));
          if (step.kind === 'problem') return report({ index: row.index, kind: 'promotion-row', message: step.message });
          if (step.kind === 'final') final.push(step.promotion);
        }
        f = await drain(false);
        if (f) return report(f);
      }
      from = end;
      if (final.length >= PAGE) {
        f = await compare(final);
        if (f) return report(f);
        final = [];
      }
      options.onProgress?.(auditor.size, total);
    }
    f = (await drain(true)) ?? auditor.finish() ?? (await compare([...final, ...ledger.unsettled()]));
    if (f) return report(f);
    const count = await tx.promotions.count();
    if (count !== ledger.requested) {
      return report({ index: auditor.size, kind: 'promotion-row', message: `the promotions table holds ${count} rows and the log requested ${ledger.requested} promotions: rows were added or removed outside Custody` });
    }
    return report();
  });
}

function outsideCheckpoint(bytes: Uint8Array, source: string): AuditCheckpoint {
  let size = 0;
  try {
    size = parseCheckpointText(parseNote(bytes).text).size;
  } catch {
    // Unparsable: the auditor reports it as an invalid checkpoint at the start.
  }
  return { size, note: Buffer.from(bytes).toString('utf8'), source };
}

/** The consistency proof between two consecutive checkpoints, from the stored tree, must verify. */
async function consistent(tx: Tx, previous: { size: number; root: Uint8Array } | undefined, cp: AuditCheckpoint): Promise<Finding | undefined> {
  if (!previous || previous.size === 0 || previous.size === cp.size) return undefined;
  const signed = parseCheckpointText(parseNote(cp.note).text);
  const proof = await tx.log.consistencyProof(previous.size, cp.size);
  const r = verifyConsistency(previous.size, cp.size, proof, previous.root, signed.root);
  if (r.ok) return undefined;
  return {
    index: previous.size,
    kind: 'checkpoint-inconsistent',
    range: { from: previous.size, to: cp.size },
    checkpoint: { size: cp.size, ...(cp.seq === undefined ? {} : { seq: cp.seq }) },
    message: `checkpoint #${cp.seq ?? '?'} (size ${cp.size}) is not consistent with the checkpoint of size ${previous.size}: ${r.reason}`,
  };
}

// ---------------------------------------------------------------- export

export interface ExportOptions {
  /** Write the tar here; without it, the tar comes back as bytes (at most EXPORT_MAX_BYTES). */
  out?: string;
  from?: number;
  to?: number;
}

export interface ExportResult {
  out?: string;
  /** The tar itself, when no `out` was given. */
  tar?: Buffer;
  origin: string;
  from: number;
  to: number;
  treeSize: number;
  entries: number;
  checkpoints: number;
  bytes: number;
}

/**
 * Writes an offline evidence bundle for entries [from, to): the entries with
 * inclusion proofs in the tree of the newest checkpoint, every checkpoint up to
 * it with the consistency proofs between them, and the log's public keys.
 */
export async function exportEvidence(ctx: Context, options: ExportOptions): Promise<ExportResult> {
  const origin = ctx.config.log.origin;
  return ctx.store.read(async (tx) => {
    const anchor = await tx.log.latestCheckpoint();
    if (!anchor) throw new CustodyError('CHECKPOINT_NOT_FOUND', 'the log has no signed checkpoint to export evidence against', { hint: 'run `custody audit checkpoint --sign`' });
    const from = options.from ?? 0;
    const to = options.to ?? anchor.size;
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to) {
      throw new CustodyError('INPUT_INVALID', `--from ${from} --to ${to} is not a range of entries`);
    }
    if (to > anchor.size) {
      throw new CustodyError('CHECKPOINT_NOT_FOUND', `entries up to ${to} are not all covered by a signed checkpoint (the newest covers ${anchor.size})`, { hint: 'run `custody audit checkpoint --sign`' });
    }
    // Every checkpoint up to the anchor, one per size (the newest signing of each size).
    const checkpoints: StoredCheckpoint[] = [];
    for (let cursor: { size: number; seq: number } | undefined; ; ) {
      const page = await tx.log.checkpoints(cursor, 1000);
      for (const c of page) {
        if (c.size > anchor.size) continue;
        if (checkpoints.at(-1)?.size === c.size) checkpoints.pop();
        checkpoints.push(c);
      }
      const last = page.at(-1);
      if (!last || page.length < 1000) break;
      cursor = { size: last.size, seq: last.seq };
    }
    if (checkpoints.at(-1)?.seq !== anchor.seq) {
      checkpoints.pop();
      checkpoints.push(anchor);
    }
    const treeSize = anchor.size;
    const keys = (await tx.keys.list()).filter((k) => k.purposes.includes('log-checkpoint'));
    const entryFiles: string[] = [];
    for (let first = from; first < to; first += EVIDENCE_CHUNK) entryFiles.push(entriesMemberName(first, Math.min(to, first + EVIDENCE_CHUNK) - 1));
    const manifest: Manifest = {
      format: EVIDENCE_FORMAT,
      origin,
      from,
      to,
      treeSize: anchor.size,
      createdAt: ctx.clock.now().toISOString(),
      keys: keys.map((k) => `keys/${k.keyid}.pub`),
      checkpoints: checkpoints.map((c) => `checkpoints/${c.seq}.txt`),
      consistency: checkpoints.slice(1).map((c, i) => `consistency/${checkpoints[i]!.size}-${c.size}.json`),
      entries: entryFiles,
    };
    const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
    async function* members(): AsyncGenerator<TarMember> {
      yield { name: 'manifest.json', data: text(`${JSON.stringify(manifest, null, 2)}\n`) };
      for (const k of keys) yield { name: `keys/${k.keyid}.pub`, data: text(`${k.publicKeyPem.trim()}\n# ${logVkey(k, origin)}\n`) };
      for (const c of checkpoints) yield { name: `checkpoints/${c.seq}.txt`, data: text(c.note) };
      for (let i = 1; i < checkpoints.length; i++) {
        const a = checkpoints[i - 1]!;
        const b = checkpoints[i]!;
        const proof = a.size === 0 || a.size === b.size ? [] : await tx.log.consistencyProof(a.size, b.size);
        yield { name: `consistency/${a.size}-${b.size}.json`, data: text(`${JSON.stringify({ size1: a.size, size2: b.size, proof: proof.map(encodeBase64) })}\n`) };
      }
      for (let first = from; first < to; first += EVIDENCE_CHUNK) {
        const last = Math.min(to, first + EVIDENCE_CHUNK) - 1;
        const lines: string[] = [];
        for (const row of await tx.log.leaves(first, last - first + 1)) {
          if (row.index > last) break;
          const proof = await tx.log.inclusionProof(row.index, treeSize);
          const leafHash = Buffer.from(row.leafHash).toString('hex');
          lines.push(JSON.stringify({ index: row.index, id: `${row.index}-${leafHash.slice(0, 32)}`, body: row.body, leafHash, proof: proof.map(encodeBase64) }));
        }
        yield { name: entriesMemberName(first, last), data: text(`${lines.join('\n')}\n`) };
      }
    }
    const summary = { origin, from, to, treeSize: anchor.size, entries: to - from, checkpoints: checkpoints.length };
    if (options.out === undefined) {
      const tar = await packTar(members(), EXPORT_MAX_BYTES);
      return { ...summary, bytes: tar.length, tar };
    }
    const written = await writeTar(options.out, members());
    return { out: options.out, ...summary, bytes: written.bytes };
  });
}

// ---------------------------------------------------------------- offline verify

export interface EvidenceReport {
  ok: boolean;
  summary?: EvidenceSummary;
  finding?: Finding;
}

/**
 * Verifies an evidence bundle with the log's public key(s) and nothing else: no
 * workspace, no database. Structure errors throw EVIDENCE_INVALID; content that
 * does not verify is a finding.
 */
export async function verifyEvidence(file: string, logKeyFiles: readonly string[], limits: TarLimits = DEFAULT_TAR_LIMITS): Promise<EvidenceReport> {
  if (logKeyFiles.length === 0) throw new CustodyError('USAGE', 'give the log\'s public key with --log-key: evidence is only as trustworthy as the key it is checked against');
  const texts: string[] = [];
  for (const f of logKeyFiles) texts.push(Buffer.from(await readLimited(f, MAX_KEY_BYTES)).toString('utf8'));
  const verifier = new EvidenceVerifier((origin) => texts.map((t) => parseLogKey(t, origin)));
  let finding: Finding | undefined;
  await readTar(file, limits, (m) => {
    if (finding) return;
    finding = verifier.member(m.name, m.data);
  });
  if (finding) return { ok: false, finding };
  const end = verifier.finish();
  return end.finding ? { ok: false, finding: end.finding, summary: end.summary } : { ok: true, summary: end.summary };
}

// ---------------------------------------------------------------- helpers for the CLI

export function describeFinding(f: Pick<Finding, 'index' | 'message'> & { kind: string }): string {
  return `first difference at entry ${f.index}: ${f.kind}: ${f.message}`;
}

export function checkpointSummary(c: StoredCheckpoint): { seq: number; size: number; root: string; keyid: string; createdAt: string; note: string } {
  return { seq: c.seq, size: c.size, root: encodeBase64(c.root), keyid: c.keyid, createdAt: c.createdAt, note: c.note };
}
