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
  if (typeof s !== 'string') return undefined;
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const padding = s.length - end;
  if (padding > 2 || (padding > 0 && s.length % 4 !== 0)) return undefined;
  if (end % 4 === 1) return undefined;
  const core = padding === 0 ? s : s.slice(0, end);
  const urlSafe = core.includes('-') || core.includes('_');
  const bytes = Buffer.from(core, urlSafe ? 'base64url' : 'base64');
  // Re-encoding must give the input back: this rejects skipped characters,
  // a mix of the two alphabets and non-canonical trailing bits in one comparison.
  const again = bytes.toString(urlSafe ? 'base64url' : 'base64');
  let againEnd = again.length;
  while (againEnd > 0 && again.charCodeAt(againEnd - 1) === 0x3d) againEnd--;
  return againEnd === core.length && again.startsWith(core) ? bytes : undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
