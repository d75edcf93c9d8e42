/**
 * `custody verify-bundle`: verify one Sigstore bundle (or DSSE envelope) against
 * an artifact, with a public key or a certificate identity, without a
 * workspace. The flags mirror cosign's `verify-blob`, so habits carry over.
 */
import { decodeUtf8, digestFile, publicGoodTrustedRoot, readLimited, readTrustedRoot } from '../adapters/evidence-files.ts';
import { algorithmOf, keyidOf, parsePublicKeyPem, publicKeyPem } from '../core/crypto.ts';
import { parseDigest } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import { KEY_PURPOSES, toTrustedKeys, type KeyRecord } from '../core/key.ts';
import { parseInput, toKeylessTrust, verifyEvidence, type ArtifactDigests, type VerifyResult } from '../core/verify/index.ts';

export const DEFAULT_EVIDENCE_BYTES = 16 * 1024 * 1024;
const KEY_FILE_MAX = 64 * 1024;
// A keyless message signature is over the artifact's bytes, which @sigstore/verify takes in memory.
const ARTIFACT_IN_MEMORY_MAX = 1024 * 1024 * 1024;

export interface VerifyBundleInput {
  bundle: string;
  /** A file, or `sha256:<64 hex>` for an artifact that is not on disk. */
  target: string;
  key?: string;
  certificateIdentity?: string;
  certificateOidcIssuer?: string;
  trustedRoot?: string;
  predicateType?: string;
  maxBytes?: number;
  now?: Date;
}

export interface VerifyBundleResult {
  result: VerifyResult;
  artifact: ArtifactDigests;
}

export async function verifyBundleFile(input: VerifyBundleInput): Promise<VerifyBundleResult> {
  const keyless = input.certificateIdentity !== undefined || input.certificateOidcIssuer !== undefined;
  if ((input.key === undefined) === !keyless) {
    throw new CustodyError('USAGE', 'give either --key <pem> or --certificate-identity and --certificate-oidc-issuer');
  }
  if (keyless && (input.certificateIdentity === undefined || input.certificateOidcIssuer === undefined)) {
    throw new CustodyError('USAGE', 'give --certificate-identity and --certificate-oidc-issuer together');
  }
  if (!keyless && input.trustedRoot !== undefined) throw new CustodyError('USAGE', '--trusted-root applies to keyless verification only');
  const maxBytes = input.maxBytes ?? DEFAULT_EVIDENCE_BYTES;
  const now = input.now ?? new Date();

  const isDigest = input.target.startsWith('sha256:');
  const file = isDigest ? undefined : await digestFile(input.target);
  const artifact: ArtifactDigests = file ? { sha256: file.sha256, sha512: file.sha512 } : { sha256: parseDigest(input.target).hex };
  const body = decodeUtf8(await readLimited(input.bundle, maxBytes, 'bundle'), input.bundle);

  if (input.key !== undefined) {
    const key = await keyFromPem(input.key, now);
    // The user named the key, so its hint format does not matter (cosign ignores it too).
    const result = verifyEvidence({ input: body, maxBytes, artifact, keys: toTrustedKeys([key]), ignoreHints: true, signedAt: now, ...(input.predicateType === undefined ? {} : { predicateType: input.predicateType }) });
    return { result, artifact };
  }

  const rootJson = input.trustedRoot === undefined ? await publicGoodTrustedRoot() : await readTrustedRoot(input.trustedRoot);
  const trust = toKeylessTrust(rootJson);
  const parsed = parseInput(body, maxBytes);
  const needsBytes = parsed.ok && parsed.value.format === 'bundle' && parsed.value.bundle.content.type === 'messageSignature';
  if (needsBytes && file && file.size > ARTIFACT_IN_MEMORY_MAX) {
    throw new CustodyError('INPUT_TOO_LARGE', `${input.target} is ${file.size} bytes; a keyless message signature is checked over the bytes in memory, at most ${ARTIFACT_IN_MEMORY_MAX}`);
  }
  const artifactBytes = needsBytes && file ? await readLimited(input.target, file.size, 'artifact') : undefined;
  const result = verifyEvidence({
    input: body,
    maxBytes,
    artifact,
    ...(artifactBytes === undefined ? {} : { artifactBytes }),
    keyless: { trust, expect: { identity: input.certificateIdentity ?? '', issuer: input.certificateOidcIssuer ?? '' } },
    ...(input.predicateType === undefined ? {} : { predicateType: input.predicateType }),
  });
  return { result, artifact };
}

/** A key given on the command line: trusted for every purpose, with no validity window of its own. */
async function keyFromPem(path: string, now: Date): Promise<KeyRecord> {
  const publicKey = parsePublicKeyPem(decodeUtf8(await readLimited(path, KEY_FILE_MAX, 'key'), path));
  const epoch = new Date(0).toISOString();
  return {
    keyid: keyidOf(publicKey),
    name: 'key-file',
    version: 1,
    algorithm: algorithmOf(publicKey),
    owner: path,
    purposes: [...KEY_PURPOSES],
    notBefore: epoch,
    notAfter: null,
    status: 'active',
    retiredAt: null,
    revokedAt: null,
    revocationReason: null,
    compromisedSince: null,
    backend: 'external',
    publicKeyPem: publicKeyPem(publicKey),
    createdAt: now.toISOString(),
    createdBy: 'verify-bundle',
  };
}
