import { timingSafeEqual } from 'node:crypto';
import { CustodyError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^(sha256|sha512):([0-9a-f]+)$/;

/** A digest in its canonical text form: `sha256:<64 lowercase hex>`. */
export type DigestString = `${DigestAlgorithm}:${string}`;

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
}

export function parseDigest(input: string): Digest {
  const m = DIGEST_RE.exec(input);
  if (!m) {
    throw new CustodyError('DIGEST_INVALID', `malformed digest "${truncate(input)}"`, {
      hint: 'expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>',
    });
  }
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2] ?? '';
  if (hex.length !== HEX_LENGTH[algorithm]) {
    throw new CustodyError('DIGEST_INVALID', `${algorithm} digest must have ${HEX_LENGTH[algorithm]} hex characters, got ${hex.length}`);
  }
  return { algorithm, hex };
}

export function isDigestString(input: string): input is DigestString {
  const m = DIGEST_RE.exec(input);
  return m !== null && (m[2] ?? '').length === HEX_LENGTH[m[1] as DigestAlgorithm];
}

export function formatDigest(d: Digest): DigestString {
  return `${d.algorithm}:${d.hex}`;
}

/**
 * Constant-time equality of two digests. Different algorithms never match;
 * the lengths of valid digests are public, so only the content is protected.
 */
export function digestEquals(a: Digest | string, b: Digest | string): boolean {
  const da = typeof a === 'string' ? tryParse(a) : a;
  const db = typeof b === 'string' ? tryParse(b) : b;
  if (!da || !db || da.algorithm !== db.algorithm) return false;
  return bytesEqual(Buffer.from(da.hex, 'hex'), Buffer.from(db.hex, 'hex'));
}

/** Constant-time comparison of byte strings (tokens, hashes, MACs). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

function tryParse(s: string): Digest | undefined {
  try {
    return parseDigest(s);
  } catch {
    return undefined;
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
