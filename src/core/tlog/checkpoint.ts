/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a signed note whose
 * text is the origin, the tree size and the base64 root hash, one per line.
 * The log signs it with an Ed25519 note signature (signed-note type 0x01);
 * witnesses add C2SP tlog-cosignature/v1 lines (type 0x04) to the same note.
 */
import type { KeyObject } from 'node:crypto';
import { verifyBytes } from '../crypto.ts';
import { CustodyError, type Reason, type VerificationResult } from '../errors.ts';
import { keyValidAt, keyLabel, type KeyRecord } from '../key.ts';
import { parsePublicKeyPem } from '../crypto.ts';
import type { Signer } from '../ports.ts';
import { HASH_SIZE } from './hash.ts';
import {
  decodeBase64Strict,
  ed25519Raw,
  encodeBase64,
  formatNote,
  formatSignatureLine,
  isKeyName,
  noteKeyId,
  parseNote,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type NoteSignature,
  type SignedNote,
} from './note.ts';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Uint8Array;
  /** Opaque extension lines; Custody writes none (the spec does not recommend them). */
  extensions: string[];
}

function invalid(message: string): CustodyError {
  return new CustodyError('CHECKPOINT_INVALID', message);
}

export function formatCheckpointText(c: Pick<Checkpoint, 'origin' | 'size' | 'root'> & { extensions?: readonly string[] }): string {
  if (c.origin.length === 0 || c.origin.includes('\n')) throw invalid('a checkpoint origin is one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw invalid(`bad checkpoint size ${String(c.size)}`);
  if (c.root.length !== HASH_SIZE) throw invalid('a checkpoint root is a 32-byte hash');
  const ext = (c.extensions ?? []).map((l) => `${l}\n`).join('');
  return `${c.origin}\n${c.size}\n${encodeBase64(c.root)}\n${ext}`;
}

/** Parses a checkpoint's note text: origin, size (decimal, no leading zeros), base64 root, extension lines. */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw invalid('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw invalid('a checkpoint has at least three lines: origin, size, root');
  const [origin = '', sizeLine = '', rootLine = '', ...extensions] = lines;
  if (origin.length === 0) throw invalid('checkpoint origin is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw invalid('checkpoint size is not a decimal number without leading zeros');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw invalid('checkpoint size is too large');
  const root = decodeBase64Strict(rootLine);
  if (!root || root.length !== HASH_SIZE) throw invalid('checkpoint root is not base64 of a 32-byte hash');
  if (extensions.some((l) => l.length === 0)) throw invalid('checkpoint extension lines must not be empty');
  return { origin, size, root, extensions };
}

// ---------------------------------------------------------------- verifiers

/**
 * Something that may have signed a note: a (name, key ID) pair and how to check
 * its signatures. Per signed-note, a line is only ever checked against the
 * verifier whose name AND key ID both match; every other line is ignored.
 */
export interface NoteVerifier {
  name: string;
  keyId: Uint8Array;
  /** The Custody key id (SHA-256 of the SPKI), for reports. */
  keyid: string;
  /** The raw public key (32 bytes for Ed25519), for vkeys. */
  publicKey: Uint8Array;
  key?: KeyRecord;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** The log's own Ed25519 note signature (type 0x01) under `name` (the origin, by convention). */
export function logNoteVerifier(name: string, publicKey: KeyObject, keyid: string, key?: KeyRecord): NoteVerifier {
  const raw = ed25519Raw(publicKey);
  return {
    name,
    keyId: noteKeyId(name, SIG_TYPE_ED25519, raw),
    keyid,
    publicKey: raw,
    ...(key === undefined ? {} : { key }),
    verify: (text, sig) => sig.length === 64 && verifyBytes('ed25519', publicKey, text, sig),
  };
}

export function logNoteVerifierFor(key: KeyRecord, name: string): NoteVerifier | undefined {
  if (key.algorithm !== 'ed25519') return undefined;
  return logNoteVerifier(name, parsePublicKeyPem(key.publicKeyPem), key.keyid, key);
}

const COSIGNATURE_HEADER = 'cosignature/v1\n';
/** tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1. */
const MAX_TIMESTAMP = (1n << 63n) - 1n;

/** The message a v1 (Ed25519) cosignature signs: header, time line, then the checkpoint text. */
export function cosignatureMessage(text: string, timestamp: bigint): Uint8Array {
  return new Uint8Array(Buffer.from(`${COSIGNATURE_HEADER}time ${timestamp.toString()}\n${text}`, 'utf8'));
}

/** A witness's tlog-cosignature/v1 verifier (type 0x04). */
export function cosignatureVerifier(name: string, publicKey: KeyObject, keyid: string): NoteVerifier & { timestampOf(signature: Uint8Array): bigint | undefined } {
  const raw = ed25519Raw(publicKey);
  const timestampOf = (sig: Uint8Array) => (sig.length === 8 + 64 ? Buffer.from(sig).readBigUInt64BE(0) : undefined);
  return {
    name,
    keyId: noteKeyId(name, SIG_TYPE_COSIGNATURE_V1, raw),
    keyid,
    publicKey: raw,
    timestampOf,
    verify: (text, sig) => {
      const ts = timestampOf(sig);
      if (ts === undefined || ts > MAX_TIMESTAMP) return false;
      return verifyBytes('ed25519', publicKey, cosignatureMessage(Buffer.from(text).toString('utf8'), ts), sig.subarray(8));
    },
  };
}

// ---------------------------------------------------------------- signing

/**
 * Signs a checkpoint with the log key. The key must be an Ed25519 key whose
 * purposes include `log-checkpoint`, and the signer must hold that key; the new
 * signature is checked against the key before the note is returned, so a
 * misbehaving backend can never publish a checkpoint that does not verify.
 */
export async function signCheckpoint(c: Pick<Checkpoint, 'origin' | 'size' | 'root'>, signer: Signer, key: KeyRecord, name = c.origin): Promise<string> {
  if (key.algorithm !== 'ed25519' || signer.algorithm !== 'ed25519') {
    throw new CustodyError('KEY_NOT_USABLE', `checkpoints are signed with Ed25519 (signed-note type 0x01); key ${keyLabel(key)} is ${key.algorithm}`);
  }
  if (!key.purposes.includes('log-checkpoint')) {
    throw new CustodyError('KEY_NOT_USABLE', `key ${keyLabel(key)} is not a log-checkpoint key (purposes: ${key.purposes.join(', ')})`);
  }
  if (signer.keyid !== key.keyid) throw new CustodyError('KEY_ID_MISMATCH', `the signer holds key ${signer.keyid}, not ${key.keyid}`);
  const text = formatCheckpointText(c);
  const verifier = logNoteVerifierFor(key, name) as NoteVerifier;
  const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
  const signature = await signer.sign(bytes);
  if (!verifier.verify(bytes, signature)) {
    throw new CustodyError('KEY_NOT_USABLE', `the signing backend of key ${keyLabel(key)} returned a signature that does not verify`);
  }
  return formatNote(text, [formatSignatureLine(name, verifier.keyId, signature)]);
}

/** A witness's cosignature line for a checkpoint text, made at `timestamp` (POSIX seconds). */
export async function cosignCheckpoint(text: string, name: string, publicKey: KeyObject, sign: (message: Uint8Array) => Promise<Uint8Array>, timestamp: number): Promise<string> {
  if (!isKeyName(name)) throw new CustodyError('INPUT_INVALID', `witness name "${name}" is empty or contains a space or "+"`);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new CustodyError('INPUT_INVALID', 'bad cosignature timestamp');
  const ts = BigInt(timestamp);
  const sig = await sign(cosignatureMessage(text, ts));
  const body = Buffer.alloc(8 + sig.length);
  body.writeBigUInt64BE(ts, 0);
  body.set(sig, 8);
  const keyId = noteKeyId(name, SIG_TYPE_COSIGNATURE_V1, ed25519Raw(publicKey));
  return formatSignatureLine(name, keyId, body);
}

/** Adds signature lines to a note, keeping the ones it has; a line already present is not repeated. */
export function addSignatures(note: string, lines: readonly string[]): string {
  const parsed = parseNote(note);
  const have = new Set(parsed.signatures.map((s) => s.line));
  return formatNote(parsed.text, [...parsed.signatures.map((s) => s.line), ...lines.filter((l) => !have.has(l))]);
}

// ---------------------------------------------------------------- verification

export interface VerifiedCheckpoint {
  checkpoint: Checkpoint;
  note: SignedNote;
  /** The log verifiers whose signatures verified. */
  signedBy: NoteVerifier[];
}

function sameId(sig: NoteSignature, v: NoteVerifier): boolean {
  return sig.name === v.name && Buffer.from(sig.keyId).equals(Buffer.from(v.keyId));
}

/**
 * Verifies a checkpoint against the log's trusted keys: parse strictly, then
 * per signed-note ignore lines from unknown keys, reject the note when a known
 * key's line fails, and require at least one known key's line to verify. With
 * `at`, each signing key must also have been valid for log-checkpoint then.
 */
/**
 * The signed-note rules over a parsed note: lines whose (name, key ID) match no
 * trusted verifier are ignored; a matching line that fails is a reason to reject
 * the note; at least one trusted line must verify. With `at`, a verifier's key
 * must also have been valid for log-checkpoint at that time.
 */
export function verifyNoteSignatures(note: SignedNote, trusted: readonly NoteVerifier[], at?: Date): { signedBy: NoteVerifier[]; reasons: Reason[] } {
  const reasons: Reason[] = [];
  const text = new Uint8Array(Buffer.from(note.text, 'utf8'));
  const signedBy: NoteVerifier[] = [];
  for (const sig of note.signatures) {
    const v = trusted.find((t) => sameId(sig, t));
    if (!v) continue;
    if (!v.verify(text, sig.signature)) {
      reasons.push({ code: 'CHECKPOINT_SIGNATURE', message: `the signature by ${v.name} (key ${v.keyid.slice(0, 16)}) does not verify` });
      continue;
    }
    if (at && v.key) {
      const validity = keyValidAt(v.key, 'log-checkpoint', at);
      if (!validity.ok) {
        reasons.push({ code: validity.code ?? 'KEY_NOT_USABLE', message: validity.reason ?? 'key not valid' });
        continue;
      }
    }
    if (!signedBy.includes(v)) signedBy.push(v);
  }
  if (signedBy.length === 0 && reasons.length === 0) {
    reasons.push({ code: 'CHECKPOINT_UNSIGNED', message: 'no signature on the note is from a trusted key' });
  }
  return { signedBy, reasons };
}

/** Verifies a checkpoint: strict parse, the origin, then the signed-note rules against the log's keys. */
export function verifyCheckpoint(
  input: string | Uint8Array,
  trusted: readonly NoteVerifier[],
  options: { origin?: string; at?: Date } = {},
): VerificationResult<VerifiedCheckpoint> {
  let note: SignedNote;
  let checkpoint: Checkpoint;
  try {
    note = parseNote(input);
    checkpoint = parseCheckpointText(note.text);
  } catch (e) {
    return { ok: false, reasons: [{ code: 'CHECKPOINT_INVALID', message: e instanceof Error ? e.message : String(e) }] };
  }
  const reasons: Reason[] = [];
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    reasons.push({ code: 'CHECKPOINT_ORIGIN', message: `checkpoint origin "${checkpoint.origin}" is not this log's "${options.origin}"` });
  }
  const sigs = verifyNoteSignatures(note, trusted, options.at);
  reasons.push(...sigs.reasons);
  const ok = reasons.length === 0 && sigs.signedBy.length > 0;
  return { ok, reasons, value: { checkpoint, note, signedBy: sigs.signedBy } };
}

export interface VerifiedCosignature {
  name: string;
  keyid: string;
  timestamp: number;
}

/** The witness cosignatures on a note that verify, one per distinct witness key; bad ones are reasons. */
export function verifyCosignatures(
  note: SignedNote,
  witnesses: readonly ReturnType<typeof cosignatureVerifier>[],
): { valid: VerifiedCosignature[]; reasons: Reason[] } {
  const text = new Uint8Array(Buffer.from(note.text, 'utf8'));
  const valid: VerifiedCosignature[] = [];
  const reasons: Reason[] = [];
  for (const sig of note.signatures) {
    const w = witnesses.find((t) => sameId(sig, t));
    if (!w) continue;
    if (!w.verify(text, sig.signature)) {
      reasons.push({ code: 'COSIGNATURE_INVALID', message: `the cosignature by witness ${w.name} does not verify` });
      continue;
    }
    if (valid.some((v) => v.keyid === w.keyid)) continue;
    valid.push({ name: w.name, keyid: w.keyid, timestamp: Number(w.timestampOf(sig.signature)) });
  }
  return { valid, reasons };
}
