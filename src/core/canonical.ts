import canonicalize from 'canonicalize';
import { CustodyError } from './errors.ts';

/** RFC 8785 (JCS) canonical JSON: the bytes that get hashed and signed. */
export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new CustodyError('INPUT_INVALID', 'value cannot be represented as canonical JSON');
  return s;
}
