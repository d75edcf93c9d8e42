/**
 * C2SP signed-note (https://c2sp.org/signed-note): text ending in a newline, a
 * blank line, then one or more lines `— <key name> base64(key ID || signature)`.
 * Parsing is strict because every byte of a note is attacker-controlled until a
 * trusted key has verified it.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { CustodyError } from '../errors.ts';

/** Signature type bytes assigned by signed-note. */
export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;

/** signed-note asks verifiers to accept at least 16 signatures; we cap notes well above that. */
export const MAX_NOTE_BYTES = 256 * 1024;
export const MAX_NOTE_SIGNATURES = 64;

const EM_DASH_SPACE = '\u2014 ';
const NAME_RE = /^[^\s+]+$/u;
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export interface NoteSignature {
  name: string;
  /** The 4-byte key ID, big-endian. */
  keyId: Uint8Array;
  /** The bytes after the key ID: the algorithm's signature. */
  signature: Uint8Array;
  line: string;
}

export interface SignedNote {
  /** The signed text, including its final newline. */
  text: string;
  signatures: NoteSignature[];
}

function invalid(message: string, details?: Record<string, unknown>): CustodyError {
  return new CustodyError('CHECKPOINT_INVALID', message, details === undefined ? {} : { details });
}

/** Standard base64 (RFC 4648 §4), refusing anything that does not round-trip: one encoding per value. */
export function decodeBase64Strict(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !B64_RE.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? new Uint8Array(bytes) : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

export function isKeyName(name: string): boolean {
  return name.length > 0 && NAME_RE.test(name);
}

/** key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]. */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(name, 'utf8').update(Uint8Array.of(0x0a, type)).update(publicKey).digest().subarray(0, 4));
}

export function formatSignatureLine(name: string, keyId: Uint8Array, signature: Uint8Array): string {
  if (!isKeyName(name)) throw invalid(`key name "${name}" is empty or contains a space or "+"`);
  return `${EM_DASH_SPACE}${name} ${encodeBase64(Buffer.concat([keyId, signature]))}`;
}

/** A whole note: its text, a blank line, and signature lines, each ending in a newline. */
export function formatNote(text: string, signatureLines: readonly string[]): string {
  if (!text.endsWith('\n')) throw invalid('note text must end with a newline');
  return `${text}\n${signatureLines.map((l) => `${l}\n`).join('')}`;
}

/** Parses a signed note without verifying anything; throws CHECKPOINT_INVALID on any malformation. */
export function parseNote(input: string | Uint8Array, maxBytes = MAX_NOTE_BYTES): SignedNote {
  let s: string;
  if (typeof input === 'string') {
    if (Buffer.byteLength(input, 'utf8') > maxBytes) throw invalid(`note is larger than ${maxBytes} bytes`);
    s = input;
  } else {
    if (input.length > maxBytes) throw invalid(`note is larger than ${maxBytes} bytes`);
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch (e) {
      throw new CustodyError('CHECKPOINT_INVALID', 'note is not valid UTF-8', { cause: e });
    }
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw invalid(`note contains control character 0x${c.toString(16).padStart(2, '0')} at offset ${i}`);
  }
  if (!s.endsWith('\n')) throw invalid('note does not end with a newline');
  // The text ends at the last blank line; everything after it is signatures.
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw invalid('note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const lines = s.slice(split + 2, -1).split('\n');
  if (lines.length === 1 && lines[0] === '') throw invalid('note has no signatures');
  if (lines.length > MAX_NOTE_SIGNATURES) throw invalid(`note has ${lines.length} signature lines, more than ${MAX_NOTE_SIGNATURES}`);
  const signatures = lines.map((line, i) => {
    if (!line.startsWith(EM_DASH_SPACE)) throw invalid(`signature line ${i + 1} does not start with "— "`);
    const rest = line.slice(EM_DASH_SPACE.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    const b64 = space < 0 ? '' : rest.slice(space + 1);
    if (!isKeyName(name)) throw invalid(`signature line ${i + 1} has an invalid key name`);
    const raw = decodeBase64Strict(b64);
    if (!raw || raw.length < 5) throw invalid(`signature line ${i + 1} is not base64 of a key ID and a signature`);
    return { name, keyId: raw.slice(0, 4), signature: raw.slice(4), line };
  });
  return { text, signatures };
}

/** Raw 32-byte Ed25519 public key (RFC 8032 encoding) of a KeyObject. */
export function ed25519Raw(publicKey: KeyObject): Uint8Array {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `signed notes here use Ed25519 keys, not ${publicKey.asymmetricKeyType ?? 'unknown'}`);
  const jwk = publicKey.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

export function ed25519FromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new CustodyError('KEY_INVALID', `an Ed25519 public key is 32 bytes, got ${raw.length}`);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch (e) {
    throw new CustodyError('KEY_INVALID', 'not an Ed25519 public key', { cause: e });
  }
}

/** A verifier key (vkey): `<name>+<hex key ID>+base64(type || public key)`. */
export function formatVkey(name: string, type: number, publicKey: Uint8Array): string {
  if (!isKeyName(name)) throw invalid(`key name "${name}" is empty or contains a space or "+"`);
  return `${name}+${Buffer.from(noteKeyId(name, type, publicKey)).toString('hex')}+${encodeBase64(Buffer.concat([Uint8Array.of(type), publicKey]))}`;
}

export interface Vkey {
  name: string;
  keyId: Uint8Array;
  type: number;
  publicKey: Uint8Array;
}

export function parseVkey(text: string): Vkey {
  // Names hold no "+", the key ID is 8 hex digits; the base64 after them may hold "+".
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  const bad = () => new CustodyError('KEY_INVALID', 'not a verifier key (<name>+<8 hex>+<base64>)');
  if (!m) throw bad();
  const [, name = '', idHex = '', b64 = ''] = m;
  if (!isKeyName(name)) throw bad();
  const raw = decodeBase64Strict(b64);
  if (!raw || raw.length < 2) throw bad();
  const type = raw[0] as number;
  const publicKey = raw.slice(1);
  const keyId = noteKeyId(name, type, publicKey);
  if (Buffer.from(keyId).toString('hex') !== idHex) throw new CustodyError('KEY_INVALID', 'the verifier key\'s ID does not match its name and key');
  return { name, keyId, type, publicKey };
}
