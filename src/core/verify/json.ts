/**
 * JSON.parse for evidence, cheaper where evidence is big: most of a DSSE
 * bundle's text is the base64 of its payload, which JSON.parse would scan
 * character by character and copy into a fresh string, before the pipeline
 * decodes it again. Here the payload's string is lifted out of the text first
 * (found by native string search, and taken as a slice of the text, not a
 * copy), and only the rest is handed to JSON.parse.
 *
 * Why the value is exactly JSON.parse(text). Write text = P + L + S, where P
 * ends with the quote that opens the payload's string, S starts with the quote
 * that closes it (the first quote after P) and L holds neither quote nor
 * backslash. The text parsed instead is P + M + S, with M a marker that is not
 * in the text. The lifted value is used only when:
 *
 *  1. the text holds no backslash at all, so no string has an escape and each
 *     parsed string is its raw characters: a parsed string equal to M is
 *     the one occurrence of M, the one put there (M holds no quote, so it
 *     cannot run into P or S either);
 *  2. that parsed string is where a payload belongs (`dsseEnvelope.payload`
 *     of a bundle, `payload` of a bare envelope), after JSON's last-wins rule
 *     for repeated names;
 *  3. the caller then reads the value as that kind of evidence and succeeds,
 *     which decodes L as strict base64: L holds only base64 characters, none
 *     of which JSON treats specially inside a string.
 *
 * JSON's grammar reads left to right with one character of lookahead, so up to
 * the end of P both texts parse alike; there a string opens in both, and by 3
 * it holds L in one and M in the other and closes at the same quote; from there
 * on both read S alike. So the two values differ only in that one string, and
 * putting L back gives JSON.parse(text). When 1 or 2 fails, the text is parsed
 * whole; when 3 fails, the caller parses it whole again (`parseJsonEvidence`
 * says where it lifted from), so refusals are exactly those of JSON.parse.
 */

import { isObject } from '../dsse.ts';

const MARKER = '<custody: payload lifted>';
// Below this many characters, lifting saves less than it costs.
const LIFT_MIN = 1024;

export interface EvidenceJson {
  value: unknown;
  /**
   * Where the payload was lifted from, if it was: the caller must parse the
   * text whole again unless it read the value as this kind of evidence.
   */
  lifted: 'bundle' | 'dsse' | null;
}

/** JSON.parse(text), with the payload lifted out where that is safe (see above). Throws as JSON.parse does. */
export function parseJsonEvidence(text: string): EvidenceJson {
  return liftPayload(text) ?? { value: JSON.parse(text), lifted: null };
}

function liftPayload(text: string): EvidenceJson | undefined {
  let start = text.indexOf('"payload":');
  if (start < 0) return undefined;
  start += 10;
  if (text.charCodeAt(start) === 0x20 /* space */) start++;
  if (text.charCodeAt(start) !== 0x22 /* " */) return undefined;
  start++;
  const end = text.indexOf('"', start);
  if (end - start < LIFT_MIN || text.includes('\\') || text.includes(MARKER)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(`${text.slice(0, start)}${MARKER}${text.slice(end)}`);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const env = value['dsseEnvelope'];
  const [holder, lifted] = isObject(env) ? [env, 'bundle' as const] : [value, 'dsse' as const];
  if (holder['payload'] !== MARKER) return undefined;
  holder['payload'] = text.slice(start, end);
  return { value, lifted };
}

