/**
 * Signatures and attestations over the registry. What a client has as a file
 * (a predicate, a bundle) travels as its text; the server never opens a path it
 * is given. A signature made here comes back as the stored bundle's text, so a
 * remote `sign --out` writes the same bytes a local one does.
 */
import { z } from 'zod';
import { importEvidence, verifyArtifact } from '../evidence.ts';
import { attestArtifact, signArtifact } from '../sign.ts';
import { EXAMPLE_ATTESTATION } from './examples.ts';
import { defined, defineOperation } from './registry.ts';

const ArtifactRef = z.string().min(1).max(1300).describe('name@version, or sha256:<hex>');
const KeyRef = z.string().min(1).max(160).describe('key name, or name@version');

const ReasonSchema = z.object({ code: z.string(), message: z.string() }).meta({ id: 'Reason' });

export const StoredEvidenceSchema = z
  .object({
    digest: z.string().describe('sha256 of the stored text: the evidence\'s identity'),
    kind: z.enum(['signature', 'attestation']),
    format: z.enum(['bundle', 'dsse']),
    mediaType: z.string().nullable(),
    predicateType: z.string().nullable(),
    signers: z.array(z.string()),
    signedAt: z.string(),
    storedAt: z.string(),
    storedBy: z.string(),
    source: z.enum(['signed', 'attested', 'imported']),
    expect: z.object({ identity: z.string(), issuer: z.string() }).nullable(),
    subjects: z.array(z.string()),
    size: z.number().int(),
  })
  .meta({ id: 'StoredEvidence', description: 'A stored signature or attestation, without its body.' });

const Stored = z.object({
  path: z.string().describe("where the workspace keeps its readable copy (on the server, in remote mode)"),
  created: z.boolean().describe('false when the same bytes were already stored'),
  evidence: StoredEvidenceSchema,
});

const Signed = Stored.extend({ bundle: z.string().describe('the Sigstore bundle v0.3, exactly as stored (what --out writes)') });

const SignatureCheckSchema = z
  .object({
    signer: z.object({
      keyid: z.string(),
      keyName: z.string().optional(),
      keyVersion: z.number().int().optional(),
      certificateIdentity: z.string().optional(),
      certificateIssuer: z.string().optional(),
      owner: z.string().optional(),
    }),
    ok: z.boolean(),
    reasons: z.array(ReasonSchema),
    signedAt: z.string(),
  })
  .meta({ id: 'SignatureCheck' });

export const VerifiedItemSchema = z
  .object({
    digest: z.string(),
    kind: z.enum(['signature', 'attestation']).optional(),
    source: z.enum(['signed', 'attested', 'imported']).optional(),
    predicateType: z.string(),
    verified: z.boolean(),
    reasons: z.array(ReasonSchema),
    signatures: z.array(SignatureCheckSchema),
    storedAt: z.string(),
  })
  .meta({ id: 'VerifiedEvidence', description: 'One stored piece of evidence, verified now.' });

export const EVIDENCE_OPERATIONS = [
  defineOperation({
    id: 'evidence.sign',
    method: 'post',
    path: '/v1/artifacts/{artifact}/signatures',
    summary: "Sign an artifact's digest with a workspace key: a Sigstore bundle v0.3, stored and returned",
    role: 'signer',
    input: z.strictObject({ artifact: ArtifactRef, key: KeyRef.describe('a key with the sign-artifact purpose') }),
    output: Signed,
    example: { artifact: 'pkg:npm/example@1.0.0', key: 'example-key' },
    run: async (ctx, input) => {
      const r = await signArtifact(ctx, input);
      return { path: r.path, created: r.created, evidence: r.evidence, bundle: JSON.stringify(r.bundle) };
    },
  }),
  defineOperation({
    id: 'evidence.attest',
    method: 'post',
    path: '/v1/artifacts/{artifact}/attestations',
    summary: 'Sign an in-toto Statement v1 about an artifact (DSSE in a Sigstore bundle v0.3), store and return it',
    role: 'signer',
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({
      artifact: ArtifactRef,
      key: KeyRef.describe('a key with the attest purpose'),
      predicateType: z.string().max(512).optional().describe('a predicate type URI, or'),
      type: z.string().max(32).optional().describe('a shorthand: provenance, test-result, vulns, spdx, cyclonedx'),
      predicate: z.string().describe('the predicate: the text of a JSON object'),
    }),
    output: Signed,
    example: { artifact: 'pkg:npm/example@1.0.0', key: 'example-key', type: 'test-result', predicate: '{"result":"PASSED","configuration":[{"uri":"https://example.com/ci.yml"}]}' },
    run: async (ctx, input) => {
      const { predicate, ...rest } = input;
      const r = await attestArtifact(ctx, { ...defined(rest), predicateText: predicate });
      return { path: r.path, created: r.created, evidence: r.evidence, bundle: JSON.stringify(r.bundle) };
    },
  }),
  defineOperation({
    id: 'evidence.import',
    method: 'post',
    path: '/v1/evidence',
    summary: 'Store evidence a CI made elsewhere (a bundle, a DSSE envelope, or JSON Lines of them), verified now and on every use',
    description: 'Needs builder, as a CI that registers artifacts does. Nothing is stored unless every piece is about a registered artifact and verifies.',
    role: 'builder',
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({
      evidence: z.string().describe('the text of the bundle, envelope or .intoto.jsonl file'),
      source: z.string().max(1024).optional().describe('what to call it in messages, e.g. its file name on the client (never opened)'),
      certificateIdentity: z.string().max(1024).optional().describe('keyless bundles: the exact certificate identity (SAN) required'),
      certificateOidcIssuer: z.string().max(1024).optional().describe('keyless bundles: the exact OIDC issuer required'),
    }),
    output: z.object({ stored: z.array(Stored) }),
    example: { evidence: EXAMPLE_ATTESTATION, source: 'tests.sigstore.json' },
    run: async (ctx, input) => {
      const { evidence, ...rest } = input;
      const r = await importEvidence(ctx, { ...defined(rest), text: evidence });
      return { stored: r.stored.map((s) => ({ path: s.path, created: s.created, evidence: s.evidence })) };
    },
  }),
  defineOperation({
    id: 'evidence.verify',
    method: 'get',
    path: '/v1/artifacts/{artifact}/evidence',
    summary: "Every stored signature and attestation of an artifact, each verified now against the workspace's keys",
    description: 'A piece that does not verify is reported with its reasons (ok: false), not refused: the CLI exits 1.',
    role: null,
    input: z.strictObject({ artifact: ArtifactRef, predicateType: z.string().max(512).optional().describe('only attestations of this predicate type') }),
    output: z.object({
      ok: z.boolean().describe('true when there is at least one piece and every piece verified'),
      artifact: z.object({ digest: z.string(), name: z.string(), version: z.string() }),
      items: z.array(VerifiedItemSchema),
    }),
    example: { artifact: 'pkg:npm/example@1.0.0' },
    run: async (ctx, input) => {
      const res = await verifyArtifact(ctx, defined(input));
      const a = res.artifact;
      return {
        ok: res.ok,
        artifact: { digest: a.digest, name: a.name, version: a.version },
        items: res.items.map((i) => ({ digest: i.digest, kind: i.kind, source: i.source, predicateType: i.predicateType, verified: i.verified, reasons: i.reasons, signatures: i.signatures, storedAt: i.storedAt })),
      };
    },
  }),
] as const;
