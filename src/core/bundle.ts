/**
 * Sigstore bundles (sigstore/protobuf-specs, protos/sigstore_bundle.proto), as
 * protobuf JSON. Custody writes v0.3; it reads v0.1, v0.2 and v0.3.
 *
 * Producing goes through @sigstore/bundle, so the JSON is exactly what other
 * Sigstore clients emit. Parsing is Custody's own, because it must turn every
 * malformed field (bad base64, a negative log index, a second DSSE signature)
 * into a coded reason rather than an exception or a silent default: the
 * protobuf JSON decoder reads invalid base64 leniently and numbers loosely.
 */
import { BUNDLE_V01_MEDIA_TYPE, BUNDLE_V02_MEDIA_TYPE, BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V03_MEDIA_TYPE, bundleToJSON, toDSSEBundle, toMessageSignatureBundle } from '@sigstore/bundle';
import { isObject, parseEnvelopeWithPae, type Allocate, type DsseEnvelope } from './dsse.ts';
import { decodeBase64 } from './encoding.ts';
import { CustodyError } from './errors.ts';
import { fail, type Parsed } from './verify/reasons.ts';

export { BUNDLE_V01_MEDIA_TYPE, BUNDLE_V02_MEDIA_TYPE, BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V03_MEDIA_TYPE };

export type BundleVersion = '0.1' | '0.2' | '0.3';

const MEDIA_TYPES: ReadonlyMap<string, BundleVersion> = new Map([
  [BUNDLE_V01_MEDIA_TYPE, '0.1'],
  [BUNDLE_V02_MEDIA_TYPE, '0.2'],
  [BUNDLE_V03_LEGACY_MEDIA_TYPE, '0.3'],
  [BUNDLE_V03_MEDIA_TYPE, '0.3'],
]);

export function isBundleMediaType(s: string): boolean {
  return MEDIA_TYPES.has(s);
}

// ---------------------------------------------------------------- produce

/** A message-signature bundle v0.3 whose verification material is the key hint (the keyid). */
export function messageSignatureBundle(input: { sha256: Uint8Array; signature: Uint8Array; keyid: string }): unknown {
  return bundleToJSON(toMessageSignatureBundle({ digest: Buffer.from(input.sha256), signature: Buffer.from(input.signature), keyHint: input.keyid }));
}

/**
 * A DSSE bundle v0.3. The bundle spec allows exactly one signature, and the
 * envelope's keyid must equal the verification material's hint.
 */
export function dsseBundle(envelope: DsseEnvelope): unknown {
  const [only] = envelope.signatures;
  if (!only || envelope.signatures.length !== 1) throw new CustodyError('INTERNAL', 'a DSSE bundle carries exactly one signature');
  return bundleToJSON(
    toDSSEBundle({ artifact: envelope.payload, artifactType: envelope.payloadType, signature: only.sig, keyHint: only.keyid }),
  );
}

// ---------------------------------------------------------------- parse

export type BundleKey = { type: 'publicKey'; hint: string } | { type: 'certificate'; der: Buffer };

export type BundleContent =
  | { type: 'messageSignature'; algorithm: 'sha256' | 'sha384' | 'sha512'; digest: Buffer; signature: Buffer }
  | { type: 'dsse'; envelope: DsseEnvelope; /** PAE(payloadType, payload), built while decoding. */ pae: Buffer };

export interface TlogEntry {
  logIndex: bigint;
  integratedTime: bigint;
  kind: string;
  kindVersion: string;
  hasInclusionPromise: boolean;
  hasInclusionProof: boolean;
}

export interface ParsedBundle {
  mediaType: string;
  version: BundleVersion;
  key: BundleKey;
  content: BundleContent;
  tlogEntries: TlogEntry[];
  rfc3161Timestamps: number;
  /** The JSON as read, for libraries that take the protobuf JSON (keyless verification). */
  json: Record<string, unknown>;
}

const HASH_ALGORITHMS: Record<string, 'sha256' | 'sha384' | 'sha512'> = { SHA2_256: 'sha256', SHA2_384: 'sha384', SHA2_512: 'sha512' };
const DIGEST_LENGTH = { sha256: 32, sha384: 48, sha512: 64 } as const;
const INT64_MAX = 2n ** 63n - 1n;
const MAX_TLOG_ENTRIES = 32;
const MAX_CHAIN = 10;

/**
 * Reads a bundle from parsed JSON. Each problem becomes one coded reason:
 * MEDIA_TYPE_UNKNOWN, BASE64_INVALID, LOG_INDEX_INVALID, DSSE_SIGNATURE_COUNT,
 * KEY_HINT_MISMATCH or EVIDENCE_MALFORMED. `allocate` is where the DSSE PAE goes.
 */
export function parseBundle(value: unknown, allocate?: Allocate): Parsed<ParsedBundle> {
  if (!isObject(value)) return fail('EVIDENCE_MALFORMED', 'the bundle is not a JSON object');
  const mediaType = value['mediaType'];
  if (typeof mediaType !== 'string') return fail('EVIDENCE_MALFORMED', 'bundle.mediaType is missing');
  const version = MEDIA_TYPES.get(mediaType);
  if (version === undefined) return fail('MEDIA_TYPE_UNKNOWN', `unknown bundle media type "${mediaType.slice(0, 100)}"`);

  const vm = value['verificationMaterial'];
  if (!isObject(vm)) return fail('EVIDENCE_MALFORMED', 'bundle.verificationMaterial is missing');
  const key = parseKey(vm, version);
  if (!key.ok) return key;
  const tlog = parseTlogEntries(vm['tlogEntries']);
  if (!tlog.ok) return tlog;
  const ts = parseTimestamps(vm['timestampVerificationData']);
  if (!ts.ok) return ts;

  const hasMessage = value['messageSignature'] !== undefined;
  const hasDsse = value['dsseEnvelope'] !== undefined;
  if (hasMessage === hasDsse) return fail('EVIDENCE_MALFORMED', 'a bundle holds exactly one of messageSignature and dsseEnvelope');
  let content: BundleContent;
  if (hasDsse) {
    const parsedEnv = parseEnvelopeWithPae(value['dsseEnvelope'], 'bundle.dsseEnvelope', allocate);
    if (!parsedEnv.ok) return parsedEnv;
    const { envelope, pae } = parsedEnv.value;
    // sigstore_bundle.proto: "a client MUST reject an envelope if the number of signatures is not equal to one".
    if (envelope.signatures.length !== 1) {
      return fail('DSSE_SIGNATURE_COUNT', `the bundle's DSSE envelope has ${envelope.signatures.length} signatures; a bundle carries exactly one`);
    }
    if (envelope.payload.length === 0) return fail('EVIDENCE_MALFORMED', "the bundle's DSSE payload is empty");
    // sigstore_bundle.proto: the key hints "MUST be exactly the same" in the material and the envelope.
    const keyid = envelope.signatures[0]?.keyid ?? '';
    if (key.value.type === 'publicKey' && keyid !== '' && key.value.hint !== '' && keyid !== key.value.hint) {
      return fail('KEY_HINT_MISMATCH', 'the DSSE keyid differs from the verification material hint');
    }
    content = { type: 'dsse', envelope, pae };
  } else {
    const msg = parseMessageSignature(value['messageSignature']);
    if (!msg.ok) return msg;
    content = msg.value;
  }
  return { ok: true, value: { mediaType, version, key: key.value, content, tlogEntries: tlog.value, rfc3161Timestamps: ts.value, json: value } };
}

function parseKey(vm: Record<string, unknown>, version: BundleVersion): Parsed<BundleKey> {
  const { publicKey, certificate, x509CertificateChain } = vm;
  const given = (publicKey === undefined ? 0 : 1) + (certificate === undefined ? 0 : 1) + (x509CertificateChain === undefined ? 0 : 1);
  if (given !== 1) return fail('EVIDENCE_MALFORMED', 'bundle.verificationMaterial holds exactly one of publicKey, certificate and x509CertificateChain');
  if (publicKey !== undefined) {
    if (!isObject(publicKey)) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.publicKey must be an object');
    const hint = publicKey['hint'] ?? '';
    if (typeof hint !== 'string' || hint.length > 1024) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.publicKey.hint must be a string');
    return { ok: true, value: { type: 'publicKey', hint } };
  }
  if (certificate !== undefined) {
    if (version !== '0.3') return fail('EVIDENCE_MALFORMED', `a v${version} bundle carries x509CertificateChain, not certificate`);
    if (!isObject(certificate)) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.certificate must be an object');
    const der = decodeBase64(certificate['rawBytes']);
    if (der === undefined) return fail('BASE64_INVALID', 'verificationMaterial.certificate.rawBytes is not valid base64');
    if (der.length === 0) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.certificate is empty');
    return { ok: true, value: { type: 'certificate', der } };
  }
  // protobuf-specs: "When used in a 0.3 bundle ... form (3) MUST be used" for keyless signing.
  if (version === '0.3') return fail('EVIDENCE_MALFORMED', 'a v0.3 bundle carries certificate, not x509CertificateChain');
  if (!isObject(x509CertificateChain) || !Array.isArray(x509CertificateChain['certificates'])) {
    return fail('EVIDENCE_MALFORMED', 'verificationMaterial.x509CertificateChain.certificates must be an array');
  }
  const certs: unknown[] = x509CertificateChain['certificates'];
  if (certs.length === 0 || certs.length > MAX_CHAIN) return fail('EVIDENCE_MALFORMED', `the certificate chain must hold 1 to ${MAX_CHAIN} certificates`);
  let leaf: Buffer | undefined;
  for (const [i, c] of certs.entries()) {
    const der = isObject(c) ? decodeBase64(c['rawBytes']) : undefined;
    if (der === undefined) return fail('BASE64_INVALID', `x509CertificateChain.certificates[${i}].rawBytes is not valid base64`);
    if (der.length === 0) return fail('EVIDENCE_MALFORMED', `x509CertificateChain.certificates[${i}] is empty`);
    leaf ??= der;
  }
  return leaf ? { ok: true, value: { type: 'certificate', der: leaf } } : fail('EVIDENCE_MALFORMED', 'empty certificate chain');
}

function parseMessageSignature(m: unknown): Parsed<BundleContent> {
  if (!isObject(m) || !isObject(m['messageDigest'])) return fail('EVIDENCE_MALFORMED', 'bundle.messageSignature.messageDigest is missing');
  const md = m['messageDigest'];
  const algorithm = typeof md['algorithm'] === 'string' ? HASH_ALGORITHMS[md['algorithm']] : undefined;
  if (algorithm === undefined) return fail('EVIDENCE_MALFORMED', 'messageSignature.messageDigest.algorithm must be SHA2_256, SHA2_384 or SHA2_512');
  const digest = decodeBase64(md['digest']);
  if (digest === undefined) return fail('BASE64_INVALID', 'messageSignature.messageDigest.digest is not valid base64');
  if (digest.length !== DIGEST_LENGTH[algorithm]) return fail('EVIDENCE_MALFORMED', `messageSignature.messageDigest.digest is not a ${algorithm} digest`);
  const signature = decodeBase64(m['signature']);
  if (signature === undefined) return fail('BASE64_INVALID', 'messageSignature.signature is not valid base64');
  if (signature.length === 0) return fail('EVIDENCE_MALFORMED', 'messageSignature.signature is empty');
  return { ok: true, value: { type: 'messageSignature', algorithm, digest, signature } };
}

/**
 * logIndex is attacker-controlled (as sigstore-js notes): it must be a
 * non-negative int64, given as a decimal string or a safe JSON integer.
 */
function parseUint63(v: unknown): bigint | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
  if (typeof v !== 'string' || !/^(0|[1-9]\d{0,18})$/.test(v)) return undefined;
  const n = BigInt(v);
  return n <= INT64_MAX ? n : undefined;
}

function parseTlogEntries(v: unknown): Parsed<TlogEntry[]> {
  // proto3 JSON omits an empty repeated field.
  if (v === undefined) return { ok: true, value: [] };
  if (!Array.isArray(v)) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.tlogEntries must be an array');
  if (v.length > MAX_TLOG_ENTRIES) return fail('EVIDENCE_MALFORMED', `more than ${MAX_TLOG_ENTRIES} transparency log entries`);
  const out: TlogEntry[] = [];
  for (const [i, e] of (v as unknown[]).entries()) {
    const at = `tlogEntries[${i}]`;
    if (!isObject(e)) return fail('EVIDENCE_MALFORMED', `${at} is not an object`);
    const logIndex = parseUint63(e['logIndex']);
    if (logIndex === undefined) return fail('LOG_INDEX_INVALID', `${at}.logIndex must be a non-negative integer`);
    const integratedTime = e['integratedTime'] === undefined ? 0n : parseUint63(e['integratedTime']);
    if (integratedTime === undefined) return fail('EVIDENCE_MALFORMED', `${at}.integratedTime must be a non-negative integer`);
    const logId = e['logId'];
    if (!isObject(logId) || decodeBase64(logId['keyId']) === undefined) return fail('BASE64_INVALID', `${at}.logId.keyId is not valid base64`);
    const kv = e['kindVersion'];
    if (!isObject(kv) || typeof kv['kind'] !== 'string' || typeof kv['version'] !== 'string') return fail('EVIDENCE_MALFORMED', `${at}.kindVersion is missing`);
    if (decodeBase64(e['canonicalizedBody']) === undefined) return fail('BASE64_INVALID', `${at}.canonicalizedBody is not valid base64`);
    const promise = e['inclusionPromise'];
    if (promise !== undefined && (!isObject(promise) || decodeBase64(promise['signedEntryTimestamp']) === undefined)) {
      return fail('BASE64_INVALID', `${at}.inclusionPromise.signedEntryTimestamp is not valid base64`);
    }
    const proof = e['inclusionProof'];
    if (proof !== undefined) {
      if (!isObject(proof)) return fail('EVIDENCE_MALFORMED', `${at}.inclusionProof is not an object`);
      if (parseUint63(proof['logIndex']) === undefined) return fail('LOG_INDEX_INVALID', `${at}.inclusionProof.logIndex must be a non-negative integer`);
      if (parseUint63(proof['treeSize']) === undefined) return fail('EVIDENCE_MALFORMED', `${at}.inclusionProof.treeSize must be a non-negative integer`);
      if (decodeBase64(proof['rootHash']) === undefined) return fail('BASE64_INVALID', `${at}.inclusionProof.rootHash is not valid base64`);
      const hashes = proof['hashes'] ?? [];
      if (!Array.isArray(hashes) || hashes.length > 64) return fail('EVIDENCE_MALFORMED', `${at}.inclusionProof.hashes must be an array of at most 64 hashes`);
      for (const [j, h] of (hashes as unknown[]).entries()) {
        if (decodeBase64(h) === undefined) return fail('BASE64_INVALID', `${at}.inclusionProof.hashes[${j}] is not valid base64`);
      }
      const cp = proof['checkpoint'];
      if (cp !== undefined && (!isObject(cp) || typeof cp['envelope'] !== 'string')) return fail('EVIDENCE_MALFORMED', `${at}.inclusionProof.checkpoint.envelope must be a string`);
    }
    out.push({
      logIndex,
      integratedTime,
      kind: kv['kind'],
      kindVersion: kv['version'],
      hasInclusionPromise: promise !== undefined,
      hasInclusionProof: proof !== undefined,
    });
  }
  return { ok: true, value: out };
}

function parseTimestamps(v: unknown): Parsed<number> {
  if (v === undefined) return { ok: true, value: 0 };
  if (!isObject(v)) return fail('EVIDENCE_MALFORMED', 'verificationMaterial.timestampVerificationData must be an object');
  const list = v['rfc3161Timestamps'] ?? [];
  if (!Array.isArray(list) || list.length > 32) return fail('EVIDENCE_MALFORMED', 'rfc3161Timestamps must be an array of at most 32 timestamps');
  for (const [i, t] of (list as unknown[]).entries()) {
    if (!isObject(t) || decodeBase64(t['signedTimestamp']) === undefined) return fail('BASE64_INVALID', `rfc3161Timestamps[${i}].signedTimestamp is not valid base64`);
  }
  return { ok: true, value: list.length };
}
