/**
 * Signing use cases: `custody sign` (a message signature over the artifact's
 * digest) and `custody attest` (an in-toto Statement v1 in DSSE). Both go
 * through the one Signer port, whatever holds the private key (an encrypted
 * file or a PKCS#11 token), and both produce a Sigstore bundle v0.3 whose
 * `verificationMaterial.publicKey.hint` is the keyid.
 */
import { readLimited, decodeUtf8 } from '../adapters/evidence-files.ts';
import type { Artifact } from '../core/artifact.ts';
import { dsseBundle, messageSignatureBundle } from '../core/bundle.ts';
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from '../core/dsse.ts';
import { CustodyError } from '../core/errors.ts';
import { requireRole } from '../core/identity.ts';
import { artifactSubject, buildStatement, predicateTypeFor, validatePredicate } from '../core/intoto.ts';
import { toTrustedKeys, type KeyRecord } from '../core/key.ts';
import type { Signer } from '../core/ports.ts';
import { signsDigests } from '../core/prehash.ts';
import { verifyEvidence, type VerifyResult } from '../core/verify/index.ts';
import { findArtifact } from './artifacts.ts';
import { auditRefusal } from './audit.ts';
import { artifactDigests, storeEvidence, toStored, writeCopies, type StoredRef } from './evidence.ts';
import { loadSigner } from './keys.ts';
import type { Context } from './workspace.ts';

export interface SignInput {
  artifact: string;
  key: string;
  /** Also write the bundle here. */
  out?: string;
}

export interface AttestInput extends SignInput {
  /** A predicate type URI, or */
  predicateType?: string;
  /** a shorthand: provenance, test-result, vulns, spdx, cyclonedx. */
  type?: string;
  /** The predicate JSON: a file here, or */
  predicate?: string;
  /** its text, as a client sends it (the server never opens a path it is given). */
  predicateText?: string;
}

export type SignResult = StoredRef & { bundle: unknown };

/**
 * `custody sign`: a Sigstore message signature of the artifact, made from its
 * sha256 digest alone (so artifacts registered by digest sign alike). For
 * ECDSA and RSA-PSS the digest is signed as the artifact's own hash: the
 * signature is the one a signer over the whole file makes, and `cosign
 * verify-blob` accepts it for the file. Ed25519 signs whole messages only, so
 * its signature is over the 32 digest bytes as the message: Custody-specific.
 */
export async function signArtifact(ctx: Context, input: SignInput): Promise<SignResult> {
  const now = ctx.clock.now();
  let subject: string | undefined;
  try {
    requireRole(ctx.actor, 'signer', 'signing');
    const artifact = await ctx.store.read((tx) => findArtifact(tx, input.artifact));
    subject = artifact.digest;
    const { key, signer } = await loadSigner(ctx, input.key, 'sign-artifact');
    const sha256 = Buffer.from(artifact.digests.sha256 ?? artifact.digest.slice('sha256:'.length), 'hex');
    const signature = signsDigests(key.algorithm) ? await signDigestWith(signer, sha256) : await signer.sign(sha256);
    const bundle = messageSignatureBundle({ sha256, signature, keyid: key.keyid });
    return await finish(ctx, input, artifact, key, bundle, now);
  } catch (e) {
    return auditRefusal(ctx, 'sign', subject, e);
  }
}

/** `custody attest`: a Statement v1 about the artifact (its name@version and every digest Custody knows), signed as DSSE. */
export async function attestArtifact(ctx: Context, input: AttestInput): Promise<SignResult> {
  const now = ctx.clock.now();
  let subject: string | undefined;
  try {
    requireRole(ctx.actor, 'signer', 'attesting');
    if ((input.predicateType === undefined) === (input.type === undefined)) {
      throw new CustodyError('USAGE', 'give either --predicate-type <uri> or --type <shorthand>, not both and not neither');
    }
    const predicateType = input.predicateType ?? predicateTypeFor(input.type ?? '');
    if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(predicateType) || predicateType.length > 512) {
      throw new CustodyError('USAGE', `"${predicateType}" is not a predicate type URI`, { hint: 'e.g. https://slsa.dev/provenance/v1' });
    }
    if ((input.predicate === undefined) === (input.predicateText === undefined)) throw new CustodyError('USAGE', 'give the predicate as a file or as text, not both and not neither');
    const max = ctx.config.limits.evidenceBytes;
    const raw = input.predicateText !== undefined ? parsePredicate(input.predicateText, 'the predicate', max) : await readPredicate(input.predicate ?? '', max);
    const predicate = validatePredicate(predicateType, raw);
    const artifact = await ctx.store.read((tx) => findArtifact(tx, input.artifact));
    subject = artifact.digest;
    const { key, signer } = await loadSigner(ctx, input.key, 'attest');
    const statement = buildStatement([artifactSubject(artifact)], predicateType, predicate);
    const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), signer);
    return await finish(ctx, input, artifact, key, dsseBundle(envelope), now);
  } catch (e) {
    return auditRefusal(ctx, 'attest', subject, e);
  }
}

async function readPredicate(path: string, max: number): Promise<unknown> {
  return parsePredicate(decodeUtf8(await readLimited(path, max, 'predicate'), path), path, max);
}

/** A predicate's JSON text; `what` names it in messages (a file, or "the predicate"). */
export function parsePredicate(text: string, what: string, max: number): unknown {
  if (Buffer.byteLength(text, 'utf8') > max) throw new CustodyError('INPUT_TOO_LARGE', `${what} is over ${max} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CustodyError('PREDICATE_INVALID', `${what} is not JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Verifies what was just signed through the same pipeline every reader uses
 * (a misbehaving signer or token is caught before anything is stored), then
 * stores it with its log entry and writes the readable copy.
 */
async function finish(ctx: Context, input: SignInput, artifact: Artifact, key: KeyRecord, bundle: unknown, now: Date): Promise<SignResult> {
  const body = JSON.stringify(bundle);
  const result: VerifyResult = verifyEvidence({ input: body, maxBytes: ctx.config.limits.evidenceBytes, artifact: artifactDigests(artifact), keys: toTrustedKeys([key]), signedAt: now });
  if (!result.ok) {
    throw new CustodyError('INTERNAL', `the signature just made by ${key.name}@${key.version} does not verify: ${result.reasons.map((r) => r.code).join(', ')}`, {
      hint: 'the key backend returned a bad signature; check the key and the token',
    });
  }
  const evidence = toStored({ body, result, source: result.kind === 'attestation' ? 'attested' : 'signed', time: now.toISOString(), actor: ctx.actor.identity, expect: null });
  const created = await ctx.store.transaction((tx) => storeEvidence(ctx, tx, evidence, artifact));
  const [path] = await writeCopies(ctx, [evidence], input.out);
  const { body: _body, ...meta } = evidence;
  return { evidence: meta, path: path ?? '', created, bundle };
}

/** Every backend that holds ECDSA or RSA keys signs digests; one that cannot must say so, not sign something else. */
function signDigestWith(signer: Signer, sha256: Uint8Array): Promise<Uint8Array> {
  if (!signer.signDigest) return Promise.reject(new CustodyError('KEY_ALGORITHM_UNSUPPORTED', `this backend cannot sign a digest with ${signer.algorithm}`));
  return signer.signDigest(sha256);
}
