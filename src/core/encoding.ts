/**
 * Strict base64 for untrusted input. `Buffer.from(s, 'base64')` silently skips
 * characters outside the alphabet and ignores stray bits, so two different
 * strings can decode to the same bytes; evidence must have exactly one reading.
 */

/**
 * Decodes standard or URL-safe base64 (RFC 4648 §4, §5; DSSE and protobuf JSON
 * allow both, padded or not). Returns undefined for anything else: a character
 * outside the alphabet, mixed alphabets, wrong padding, or non-zero spare bits.
 */
export function decodeBase64(s: unknown): Buffer | undefined {
  return decodeBase64After(s, undefined);
}

/**
 * Decodes into a buffer that starts with `head(decodedLength)`, so a caller
 * that needs the bytes framed (DSSE's PAE) gets them without a second copy.
 * Returns the whole framed buffer; the decoded bytes are its tail.
 */
export function decodeBase64After(s: unknown, head: ((decodedLength: number) => Buffer) | undefined): Buffer | undefined {
  if (typeof s !== 'string') return undefined;
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const padding = s.length - end;
  if (padding > 2 || (padding > 0 && s.length % 4 !== 0) || end % 4 === 1) return undefined;
  const urlSafe = s.includes('-') || s.includes('_');
  const alphabet = urlSafe ? 'base64url' : 'base64';
  let out: Buffer;
  let bytes: Buffer;
  if (head === undefined) {
    out = bytes = Buffer.from(s, alphabet);
  } else {
    const n = Buffer.byteLength(s, alphabet);
    const prefix = head(n);
    out = Buffer.allocUnsafe(prefix.length + n);
    prefix.copy(out, 0);
    // Fewer bytes than announced means characters outside the alphabet: refuse before anyone sees the unwritten tail.
    if (out.write(s, prefix.length, alphabet) !== n) return undefined;
    bytes = out.subarray(prefix.length);
  }
  // Re-encoding must give the input back: this rejects skipped characters,
  // a mix of the two alphabets and non-canonical trailing bits in one comparison.
  const again = bytes.toString(alphabet);
  // The usual case, padded standard base64, compares whole strings (the fast path in V8).
  if (again.length === s.length) return again === s ? out : undefined;
  let againEnd = again.length;
  while (againEnd > 0 && again.charCodeAt(againEnd - 1) === 0x3d) againEnd--;
  if (againEnd !== end) return undefined;
  return again.slice(0, againEnd) === (padding === 0 ? s : s.slice(0, end)) ? out : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
