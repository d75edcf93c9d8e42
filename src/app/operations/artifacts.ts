import { z } from 'zod';
import { CustodyError } from '../../core/errors.ts';
import { addArtifact, listArtifacts, showArtifact } from '../artifacts.ts';
import { defineOperation } from './registry.ts';

// Types only: the use cases validate names, versions, labels and digests, so
// local and remote mode refuse bad values with the same codes (NAME_INVALID, …).
const Name = z.string().max(1024).describe('Package URL or plain name, e.g. pkg:npm/app');
const Version = z.string().max(256).describe('Semantic version, e.g. 1.4.2');
const Labels = z.array(z.string().max(600)).max(64).describe('key=value labels, e.g. tier=critical');
const Source = z.string().max(1024).describe('Source repository and commit, repo[@commit]');

export const ArtifactSchema = z
  .object({
    digest: z.string(),
    name: z.string(),
    version: z.string(),
    size: z.number().int().nullable(),
    digests: z.object({ sha256: z.string().optional(), sha512: z.string().optional() }),
    labels: z.record(z.string(), z.string()),
    source: z.object({ repository: z.string().optional(), commit: z.string().optional() }).nullable(),
    stored: z.boolean(),
    createdAt: z.string(),
    createdBy: z.string(),
  })
  .meta({ id: 'Artifact', description: 'An immutable artifact: one name+version, one digest, forever.' });

export const AddArtifactOutput = z
  .object({
    digest: z.string(),
    name: z.string(),
    version: z.string(),
    size: z.number().int().nullable(),
    created: z.boolean().describe('false when the same name, version and digest were already registered'),
    digests: ArtifactSchema.shape.digests,
    labels: ArtifactSchema.shape.labels,
    source: ArtifactSchema.shape.source,
  })
  .meta({ id: 'ArtifactAdded' });

function added(r: Awaited<ReturnType<typeof addArtifact>>): z.input<typeof AddArtifactOutput> {
  const a = r.artifact;
  return { digest: a.digest, name: a.name, version: a.version, size: a.size, created: r.created, digests: a.digests, labels: a.labels, source: a.source };
}

export const ARTIFACT_OPERATIONS = [
  defineOperation({
    id: 'artifact.add',
    method: 'post',
    path: '/v1/artifacts',
    summary: 'Register an artifact by digest (its bytes live elsewhere, e.g. an OCI image)',
    role: 'builder',
    input: z.strictObject({ digest: z.string().max(200).describe('sha256:<64 hex>'), name: Name, version: Version, labels: Labels.optional(), source: Source.optional() }),
    output: AddArtifactOutput,
    example: { digest: `sha256:${'e'.repeat(64)}`, name: 'pkg:oci/example', version: '1.0.0', labels: ['tier=standard'] },
    run: async (ctx, input) => added(await addArtifact(ctx, input)),
  }),
  defineOperation({
    id: 'artifact.upload',
    method: 'post',
    path: '/v1/artifacts/upload',
    summary: 'Register an artifact from its bytes: the body is the file, hashed (sha256 + sha512) and stored',
    description: 'The request body is the artifact itself (application/octet-stream), streamed to disk with the same temporary-file, fsync and rename discipline as a local add; the other fields travel in the query string.',
    role: 'builder',
    upload: true,
    bodyLimit: (config) => config.limits.artifactBytes,
    input: z.strictObject({ name: Name, version: Version, labels: Labels.optional(), source: Source.optional() }),
    output: AddArtifactOutput,
    example: { name: 'pkg:npm/example', version: '1.0.0' },
    run: async (ctx, input, io) => {
      if (io.upload === undefined) throw new CustodyError('USAGE', 'artifact.upload needs the artifact bytes');
      return added(await addArtifact(ctx, { ...input, file: io.upload, ...(io.onProgress ? { onProgress: io.onProgress } : {}) }));
    },
  }),
  defineOperation({
    id: 'artifact.list',
    method: 'get',
    path: '/v1/artifacts',
    summary: 'List artifacts, newest first',
    role: null,
    input: z.strictObject({ name: Name.optional(), labels: Labels.optional(), limit: z.number().int().min(1).max(10_000).optional() }),
    output: z.object({ artifacts: z.array(ArtifactSchema) }),
    example: { limit: 20 },
    run: async (ctx, input) => ({ artifacts: await listArtifacts(ctx, input) }),
  }),
  defineOperation({
    id: 'artifact.show',
    method: 'get',
    path: '/v1/artifacts/{ref}',
    summary: 'One artifact (name@version or digest), with its log history',
    role: null,
    input: z.strictObject({ ref: z.string().min(1).max(1300).describe('name@version, or sha256:<hex>') }),
    output: z.object({
      artifact: ArtifactSchema,
      history: z.array(z.object({ index: z.number().int(), type: z.string(), actor: z.string(), time: z.string() })),
    }),
    example: { ref: 'pkg:npm/example@1.0.0' },
    run: (ctx, input) => showArtifact(ctx, input.ref),
  }),
] as const;
