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
  const n = base64DecodedLength(s);
  if (n === undefined) return undefined;
  const out = Buffer.allocUnsafe(n);
  return decodeBase64Into(s, out, 0) ? out : undefined;
}

/**
 * The number of bytes `s` decodes to if its padding is well placed, else
 * undefined. The characters themselves are judged by `decodeBase64Into`.
 */
export function base64DecodedLength(s: string): number | undefined {
  const end = dataEnd(s);
  return end < 0 ? undefined : (end * 3) >>> 2;
}

/** Where the data characters end (before any padding), or -1 when the padding is misplaced. */
function dataEnd(s: string): number {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const padding = s.length - end;
  return padding > 2 || (padding > 0 && s.length % 4 !== 0) || end % 4 === 1 ? -1 : end;
}

// The value of each base64 digit of either alphabet (RFC 4648 §4 and §5), -1 for other ASCII.
const DIGIT = new Int8Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'].entries()) DIGIT[c.charCodeAt(0)] = i;
DIGIT[0x2b /* + */] = DIGIT[0x2d /* - */] = 62;
DIGIT[0x2f /* / */] = DIGIT[0x5f /* _ */] = 63;

// Matches a character above U+00FF. V8 answers for a one-byte string without
// reading it, as no such character can be in one.
const WIDE = /[\u0100-\uffff]/;

/**
 * Decodes `s` into `out` at `at`, where its `base64DecodedLength(s)` bytes
 * must fit, so that a caller who needs the bytes framed (DSSE's PAE) gets them
 * without a second copy. False, with those bytes of `out` unspecified, unless
 * `s` is canonical base64.
 *
 * Canonical is checked without re-encoding (which costs a copy of the input):
 * Node's decoder skips a character outside the alphabet (whitespace included)
 * and stops at a '=' before the end, and with the lengths `dataEnd` lets
 * through, one character fewer always means fewer bytes than announced. It
 * reads a UTF-16 unit by its low byte, though, so wider characters are
 * refused first; and it takes both alphabets at once, so mixing them is
 * refused here. What is left to check is that the spare bits are zero.
 * test/core/dsse.test.ts holds this to the re-encoding definition.
 */
export function decodeBase64Into(s: string, out: Buffer, at: number): boolean {
  const end = dataEnd(s);
  if (end < 0) return false;
  const urlSafe = s.includes('-') || s.includes('_');
  if (urlSafe && (s.includes('+') || s.includes('/'))) return false;
  if (WIDE.test(s)) return false;
  const n = (end * 3) >>> 2;
  if (out.write(s, at, n, urlSafe ? 'base64url' : 'base64') !== n) return false;
  // RFC 4648 §3.5: a last digit that carries 4 (or 2) bits of the last byte must have its other bits zero.
  const spare = end % 4 === 2 ? 0x0f : end % 4 === 3 ? 0x03 : 0;
  return spare === 0 || ((DIGIT[s.charCodeAt(end - 1)] ?? -1) & spare) === 0;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
