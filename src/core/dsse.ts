/**
 * DSSE, the Dead Simple Signing Envelope
 * (https://github.com/secure-systems-lab/dsse, protocol.md and envelope.md).
 */
import { base64DecodedLength, decodeBase64, decodeBase64Into, encodeBase64 } from './encoding.ts';
import type { Signer } from './ports.ts';
import { fail, type Parsed } from './verify/reasons.ts';

/** The payload type of an in-toto Statement inside DSSE. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DsseSignature {
  /** Unauthenticated hint (protocol.md: "MUST NOT be used for security decisions"); '' when absent. */
  keyid: string;
  sig: Buffer;
}

export interface DsseEnvelope {
  payloadType: string;
  payload: Buffer;
  signatures: DsseSignature[];
}

/** The envelope as JSON (envelope.md), base64 in the standard alphabet. */
export interface DsseEnvelopeJson {
  payload: string;
  payloadType: string;
  signatures: { keyid?: string; sig: string }[];
}

const PAE_PREFIX = 'DSSEv1 ';
const SP = ' ';

/**
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, where
 * LEN is the ASCII decimal byte length (protocol.md, "Signature Definition").
 * The type's length is its UTF-8 byte length, not its character count.
 */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const head = paeHead(payloadType, payload.length);
  const headLength = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLength + payload.length);
  out.write(head, 0, 'utf8');
  out.set(payload, headLength);
  return out;
}

/** Everything of the PAE before the body, "DSSEv1 <len> <type> <len> ", to be written as UTF-8. */
function paeHead(payloadType: string, bodyLength: number): string {
  return `${PAE_PREFIX}${Buffer.byteLength(payloadType, 'utf8')}${SP}${payloadType}${SP}${bodyLength}${SP}`;
}

// A DSSE envelope outside a bundle may carry several signatures (envelope.md,
// "Multiple signatures"); more than this is an attempt to make us do work.
const MAX_SIGNATURES = 64;
const MAX_KEYID = 1024;
const MAX_PAYLOAD_TYPE = 1024;

/** Reads an envelope from parsed JSON; every field is checked, nothing is assumed. */
export function parseEnvelope(value: unknown, where = 'envelope'): Parsed<DsseEnvelope> {
  const r = parseEnvelopeWithPae(value, where);
  return r.ok ? { ok: true, value: r.value.envelope } : r;
}

/** Where a parse puts the PAE: a fresh buffer unless the caller has one to lend. */
export type Allocate = (size: number) => Buffer;

/** A fresh buffer, not zeroed: every byte of it is written before it is read. */
export const freshBuffer: Allocate = (size) => Buffer.allocUnsafe(size);

/**
 * The same, also returning PAE(payloadType, payload): the payload is decoded
 * straight into the PAE buffer, so verification copies it no second time.
 * The envelope's payload is a view of that buffer.
 */
export function parseEnvelopeWithPae(value: unknown, where = 'envelope', allocate: Allocate = freshBuffer): Parsed<{ envelope: DsseEnvelope; pae: Buffer }> {
  if (!isObject(value)) return fail('EVIDENCE_MALFORMED', `${where} is not a JSON object`);
  const { payloadType, payload, signatures } = value;
  if (typeof payloadType !== 'string' || payloadType.length > MAX_PAYLOAD_TYPE) {
    return fail('EVIDENCE_MALFORMED', `${where}.payloadType must be a string`);
  }
  // proto3 JSON omits empty fields, so an absent payload is the empty payload.
  const n = payload === undefined ? 0 : typeof payload === 'string' ? base64DecodedLength(payload) : undefined;
  if (n === undefined) return fail('BASE64_INVALID', `${where}.payload is not valid base64`);
  const head = paeHead(payloadType, n);
  const headLength = Buffer.byteLength(head, 'utf8');
  const framed = allocate(headLength + n);
  framed.write(head, 0, 'utf8');
  if (n > 0 && !decodeBase64Into(payload as string, framed, headLength)) return fail('BASE64_INVALID', `${where}.payload is not valid base64`);
  if (!Array.isArray(signatures)) return fail('EVIDENCE_MALFORMED', `${where}.signatures must be an array`);
  if (signatures.length > MAX_SIGNATURES) return fail('EVIDENCE_MALFORMED', `${where} has ${signatures.length} signatures; at most ${MAX_SIGNATURES} are read`);
  const sigs: DsseSignature[] = [];
  for (let i = 0; i < signatures.length; i++) {
    const s: unknown = signatures[i];
    if (!isObject(s)) return fail('EVIDENCE_MALFORMED', `${where}.signatures[${i}] is not an object`);
    const keyid = s['keyid'] ?? '';
    if (typeof keyid !== 'string' || keyid.length > MAX_KEYID) return fail('EVIDENCE_MALFORMED', `${where}.signatures[${i}].keyid must be a string`);
    const sig = decodeBase64(s['sig']);
    if (sig === undefined) return fail('BASE64_INVALID', `${where}.signatures[${i}].sig is not valid base64`);
    if (sig.length === 0) return fail('EVIDENCE_MALFORMED', `${where}.signatures[${i}].sig is empty`);
    sigs.push({ keyid, sig });
  }
  return { ok: true, value: { envelope: { payloadType, payload: framed.subarray(headLength), signatures: sigs }, pae: framed } };
}

export function envelopeToJson(env: DsseEnvelope): DsseEnvelopeJson {
  return {
    payload: encodeBase64(env.payload),
    payloadType: env.payloadType,
    signatures: env.signatures.map((s) => (s.keyid === '' ? { sig: encodeBase64(s.sig) } : { keyid: s.keyid, sig: encodeBase64(s.sig) })),
  };
}

/** Signs PAE(payloadType, payload) through the one Signer port (file and PKCS#11 alike). */
export async function signEnvelope(payloadType: string, payload: Uint8Array, signer: Signer): Promise<DsseEnvelope> {
  const sig = await signer.sign(pae(payloadType, payload));
  return { payloadType, payload: Buffer.from(payload), signatures: [{ keyid: signer.keyid, sig: Buffer.from(sig) }] };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
