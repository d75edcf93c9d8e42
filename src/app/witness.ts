/**
 * A witness (C2SP tlog-cosignature/v1): cosigns a log's checkpoint only after
 * checking that it verifies with the log's key and is consistent with the
 * newest checkpoint this witness cosigned before, which it keeps in its own
 * state file. A log that rolls back or forks its history can then not get a
 * second cosignature: not even its database administrator can rewrite history
 * silently once a witness has seen it.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { z } from 'zod';
import { keyidOf } from '../core/crypto.ts';
import { bytesEqual } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import {
  addSignatures,
  cosignCheckpoint,
  decodeBase64Strict,
  ed25519Raw,
  encodeBase64,
  formatVkey,
  isKeyName,
  MAX_NOTE_BYTES,
  parseCheckpointText,
  parseNote,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  verifyCheckpoint,
  verifyConsistency,
  type NoteVerifier,
} from '../core/tlog/index.ts';
import { readIfExists, readLimited } from '../adapters/read-limited.ts';
import { auditRefusal } from './audit.ts';
import { attachCosignature, parseLogKey } from './log.ts';
import { writeFileAtomic } from '../adapters/fs-durable.ts';
import type { Context } from './workspace.ts';

const MAX_STATE_BYTES = 4 * 1024 * 1024;
const MAX_KEY_BYTES = 64 * 1024;
const MAX_PROOF_BYTES = 64 * 1024;

const LogState = z.strictObject({
  size: z.number().int().nonnegative(),
  root: z.string().max(64),
  logKey: z.string().max(4096),
  checkpoint: z.string().max(MAX_NOTE_BYTES),
  timestamp: z.number().int().nonnegative(),
});
const WitnessState = z.strictObject({
  version: z.literal(1),
  name: z.string().max(256),
  logs: z.record(z.string().max(256), LogState),
});
type WitnessState = z.infer<typeof WitnessState>;

const ProofFile = z.strictObject({ size1: z.number().int().nonnegative(), size2: z.number().int().nonnegative(), proof: z.array(z.string().max(64)).max(65) });

export interface WitnessOptions {
  checkpointFile: string;
  /** The witness's Ed25519 private key (PKCS#8 PEM). */
  keyFile: string;
  /** Where the witness remembers what it cosigned (default: `<keyFile>.state.json`). */
  stateFile?: string;
  /** The witness's key name (default: the one in its state, else `witness/<keyid prefix>`). */
  name?: string;
  /** The log's public key (PEM or vkey); needed the first time a log is seen, remembered after. */
  logKeyFile?: string;
  /** A consistency proof from the last size this witness cosigned ({size1, size2, proof}); else `proofSource` is asked. */
  proofFile?: string;
  proofSource?: (size1: number, size2: number) => Promise<Uint8Array[]>;
  now: Date;
}

export interface WitnessResult {
  origin: string;
  size: number;
  name: string;
  /** The witness's verifier key (type 0x04), for clients that check cosignatures. */
  vkey: string;
  timestamp: number;
  cosignature: string;
  /** The checkpoint with the cosignature added. */
  checkpoint: string;
  previousSize: number | null;
}

function refuse(message: string, details?: Record<string, unknown>): CustodyError {
  return new CustodyError('WITNESS_REFUSED', message, details === undefined ? {} : { details });
}

async function readState(path: string): Promise<WitnessState | undefined> {
  const bytes = await readIfExists(path, MAX_STATE_BYTES);
  if (!bytes) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CustodyError('INPUT_INVALID', `${path} is not a witness state file (not JSON)`, { cause: e });
  }
  const parsed = WitnessState.safeParse(json);
  if (!parsed.success) throw new CustodyError('INPUT_INVALID', `${path} is not a witness state file: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

async function readPrivateKey(path: string): Promise<KeyObject> {
  const pem = Buffer.from(await readLimited(path, MAX_KEY_BYTES)).toString('utf8');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new CustodyError('KEY_INVALID', `${path} is not an unencrypted PEM private key`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `a witness key is Ed25519 (tlog-cosignature/v1), not ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

/** One witness run at a time per state file: two at once could each cosign one side of a fork. */
async function withLock<T>(stateFile: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${stateFile}.lock`;
  let fh;
  try {
    fh = await open(lock, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CustodyError('STORE_BUSY', `another witness run holds ${lock}`, { hint: 'wait for it; if no witness is running, remove the lock file' });
    }
    throw new CustodyError('INPUT_UNREADABLE', `cannot lock ${stateFile}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return await fn();
  } finally {
    await fh.close();
    await rm(lock, { force: true });
  }
}

export async function witnessCheckpoint(options: WitnessOptions): Promise<WitnessResult> {
  const stateFile = options.stateFile ?? `${options.keyFile}.state.json`;
  const privateKey = await readPrivateKey(options.keyFile);
  const publicKey = createPublicKey(privateKey);
  const noteBytes = await readLimited(options.checkpointFile, MAX_NOTE_BYTES);
  const noteText = Buffer.from(noteBytes).toString('utf8');
  const note = parseNote(noteBytes);
  const checkpoint = parseCheckpointText(note.text);
  const origin = checkpoint.origin;

  return withLock(stateFile, async () => {
    const state: WitnessState = (await readState(stateFile)) ?? { version: 1, name: '', logs: {} };
    const name = options.name ?? (state.name || `witness/${keyidOf(publicKey).slice(0, 16)}`);
    if (!isKeyName(name)) throw new CustodyError('INPUT_INVALID', `witness name "${name}" is empty or contains a space or "+"`);
    const previous = state.logs[origin];

    // The log's key: given now, or remembered from the first time.
    let logKey: NoteVerifier;
    if (options.logKeyFile !== undefined) {
      logKey = parseLogKey(Buffer.from(await readLimited(options.logKeyFile, MAX_KEY_BYTES)).toString('utf8'), origin);
    } else if (previous) {
      logKey = parseLogKey(previous.logKey, origin);
    } else {
      throw new CustodyError('USAGE', `this witness has not seen the log ${origin} before: pass its public key with --log-key`);
    }
    const signedBy = verifyCheckpoint(noteBytes, [logKey], { origin });
    if (!signedBy.ok) throw refuse(`the checkpoint does not verify with the log's key: ${signedBy.reasons.map((r) => r.message).join('; ')}`);
    const logVkey = formatVkey(logKey.name, SIG_TYPE_ED25519, logKey.publicKey);

    // tlog-witness: refuse a checkpoint older than, or inconsistent with, the newest one cosigned.
    if (previous) {
      const prevRoot = decodeBase64Strict(previous.root);
      if (!prevRoot) throw new CustodyError('INPUT_INVALID', `${stateFile} holds a malformed root for ${origin}`);
      if (checkpoint.size < previous.size) {
        throw refuse(`the log ${origin} rolled back: this witness cosigned size ${previous.size}, the checkpoint is for ${checkpoint.size}`, { cosigned: previous.size, offered: checkpoint.size });
      }
      if (checkpoint.size === previous.size) {
        if (!bytesEqual(checkpoint.root, prevRoot)) throw refuse(`the log ${origin} forked: a different root at size ${checkpoint.size} than the one this witness cosigned`);
      } else if (previous.size > 0) {
        const proof = await consistencyProof(options, previous.size, checkpoint.size);
        const r = verifyConsistency(previous.size, checkpoint.size, proof, prevRoot, checkpoint.root);
        if (!r.ok) throw refuse(`the checkpoint of size ${checkpoint.size} is not consistent with the one of size ${previous.size} this witness cosigned: ${r.reason}`);
      }
    }

    const timestamp = Math.floor(options.now.getTime() / 1000);
    const line = await cosignCheckpoint(note.text, name, publicKey, (m) => Promise.resolve(nodeSign(null, m, privateKey)), timestamp);
    const cosigned = addSignatures(noteText, [line]);
    state.name = name;
    state.logs[origin] = { size: checkpoint.size, root: encodeBase64(checkpoint.root), logKey: logVkey, checkpoint: cosigned, timestamp };
    await writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    return {
      origin,
      size: checkpoint.size,
      name,
      vkey: formatVkey(name, SIG_TYPE_COSIGNATURE_V1, ed25519Raw(publicKey)),
      timestamp,
      cosignature: line,
      checkpoint: cosigned,
      previousSize: previous ? previous.size : null,
    };
  });
}

async function consistencyProof(options: WitnessOptions, size1: number, size2: number): Promise<Uint8Array[]> {
  if (options.proofFile !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(await readLimited(options.proofFile, MAX_PROOF_BYTES)).toString('utf8'));
    } catch (e) {
      throw e instanceof CustodyError ? e : new CustodyError('INPUT_INVALID', `${options.proofFile} is not JSON`, { cause: e });
    }
    const parsed = ProofFile.safeParse(json);
    if (!parsed.success) throw new CustodyError('INPUT_INVALID', `${options.proofFile} is not a consistency proof ({size1, size2, proof})`);
    if (parsed.data.size1 !== size1 || parsed.data.size2 !== size2) {
      throw new CustodyError('INPUT_INVALID', `${options.proofFile} proves ${parsed.data.size1}→${parsed.data.size2}; this witness needs ${size1}→${size2}`);
    }
    return parsed.data.proof.map((p) => decodeBase64Strict(p) ?? new Uint8Array(0));
  }
  if (!options.proofSource) throw new CustodyError('USAGE', `a consistency proof from size ${size1} to ${size2} is needed: pass --proof, or run in the log's workspace`);
  return options.proofSource(size1, size2);
}

/**
 * The witness run in the log's own workspace: the log supplies the consistency
 * proof, keeps the cosignature with its checkpoint, and a refusal (a rollback or
 * a fork the witness would not cosign) is recorded as request.refused.
 */
export async function witnessInWorkspace(ctx: Context, options: Omit<WitnessOptions, 'proofSource' | 'now'>): Promise<WitnessResult> {
  try {
    const result = await witnessCheckpoint({
      ...options,
      now: ctx.clock.now(),
      proofSource: (a, b) => ctx.store.read((tx) => tx.log.consistencyProof(a, b)),
    });
    await attachCosignature(ctx, result.checkpoint);
    return result;
  } catch (e) {
    return auditRefusal(ctx, 'audit.witness', undefined, e);
  }
}
