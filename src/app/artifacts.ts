import {
  parseArtifactRef,
  parseLabels,
  parseSource,
  validateName,
  validateVersion,
  type Artifact,
} from '../core/artifact.ts';
import { digestEquals, parseDigest, formatDigest, type DigestString } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import type { ByteStream, IngestProgress, StagedBlob, Tx } from '../core/ports.ts';
import { auditRefusal } from './audit.ts';
import { failpoint } from '../adapters/failpoints.ts';
import type { Context } from './workspace.ts';

export interface AddArtifactInput {
  /** A file (by path) or an upload stream to hash and store; or */
  file?: string | ByteStream;
  /** a digest for an artifact that lives elsewhere (an OCI image, say). */
  digest?: string | undefined;
  name: string;
  version: string;
  labels?: readonly string[] | undefined;
  source?: string | undefined;
  onProgress?: (p: IngestProgress) => void;
}

export interface AddArtifactResult {
  artifact: Artifact;
  created: boolean;
}

export async function addArtifact(ctx: Context, input: AddArtifactInput): Promise<AddArtifactResult> {
  // Validate everything cheap before reading a byte of the file.
  const name = validateName(input.name);
  const version = validateVersion(input.version);
  const labels = parseLabels(input.labels ?? []);
  const source = input.source === undefined ? null : parseSource(input.source);
  if ((input.file === undefined) === (input.digest === undefined)) {
    throw new CustodyError('USAGE', 'give either a file or --digest, not both and not neither');
  }
  const given = input.digest === undefined ? undefined : parseDigest(input.digest);
  if (given && given.algorithm !== 'sha256') {
    throw new CustodyError('DIGEST_INVALID', 'an artifact is identified by its sha256 digest', { hint: 'pass --digest sha256:<64 hex>' });
  }

  let staged: StagedBlob | undefined;
  if (input.file !== undefined) staged = await ctx.blobs.stage(input.file, input.onProgress);
  let digest: DigestString;
  if (staged) digest = `sha256:${staged.sha256}`;
  else if (given) digest = formatDigest(given);
  else throw new CustodyError('USAGE', 'give either a file or --digest');
  const now = ctx.clock.now().toISOString();
  const candidate: Artifact = {
    digest,
    name,
    version,
    size: staged ? staged.size : null,
    digests: staged ? { sha256: staged.sha256, sha512: staged.sha512 } : { sha256: digest.slice('sha256:'.length) },
    labels,
    source,
    stored: staged !== undefined,
    createdAt: now,
    createdBy: ctx.actor.identity,
  };

  try {
    const result = await ctx.store.transaction(async (tx) => {
      const existing = await findExisting(tx, candidate);
      if (existing) return { artifact: existing, created: false };
      await tx.artifacts.insert(candidate);
      await tx.log.append({
        type: 'artifact.added',
        actor: ctx.actor.identity,
        time: now,
        subject: digest,
        payload: { name, version, size: candidate.size, digests: candidate.digests, labels, source, stored: candidate.stored },
      });
      // Publish inside the transaction: if the commit fails, discard() removes it; if the process dies, recovery does.
      await staged?.publish();
      failpoint('artifact.add.before-commit');
      return { artifact: candidate, created: true };
    });
    failpoint('artifact.add.after-commit');
    if (result.created) await staged?.finish();
    else await staged?.discard();
    return result;
  } catch (e) {
    await staged?.discard();
    return auditRefusal(ctx, 'artifact.add', digest, e);
  }
}

/** Idempotent re-add returns the record; any other overlap is a conflict that changes nothing. */
async function findExisting(tx: Tx, a: Artifact): Promise<Artifact | undefined> {
  const sameVersion = await tx.artifacts.byNameVersion(a.name, a.version);
  if (sameVersion) {
    if (digestEquals(sameVersion.digest, a.digest)) return sameVersion;
    throw new CustodyError('ARTIFACT_CONFLICT', `${a.name}@${a.version} is already registered with digest ${sameVersion.digest}`, {
      hint: 'a version never moves: publish the new build under a new version',
      details: { name: a.name, version: a.version, existing: sameVersion.digest, attempted: a.digest },
    });
  }
  const sameDigest = await tx.artifacts.byDigest(a.digest);
  if (sameDigest) {
    throw new CustodyError('ARTIFACT_CONFLICT', `${a.digest} is already registered as ${sameDigest.name}@${sameDigest.version}`, {
      hint: 'one digest is one artifact; refer to it by its existing name and version',
      details: { existing: `${sameDigest.name}@${sameDigest.version}`, digest: a.digest },
    });
  }
  return undefined;
}

export async function findArtifact(tx: Tx, ref: string): Promise<Artifact> {
  const parsed = parseArtifactRef(ref);
  let found: Artifact | undefined;
  if (parsed.kind === 'digest') {
    found = await tx.artifacts.byDigest(parsed.digest);
  } else if (parsed.version !== undefined) {
    found = await tx.artifacts.byNameVersion(parsed.name, parsed.version);
  } else {
    const versions = await tx.artifacts.versionsOf(parsed.name);
    if (versions.length > 1) {
      throw new CustodyError('INPUT_INVALID', `${parsed.name} has ${versions.length} versions; say which`, {
        hint: `e.g. ${parsed.name}@${versions[0]?.version ?? '1.0.0'}, or use the digest`,
      });
    }
    found = versions[0];
  }
  if (!found) throw new CustodyError('ARTIFACT_NOT_FOUND', `no artifact ${ref}`, { hint: 'list artifacts with `custody artifact list`' });
  return found;
}

export async function showArtifact(ctx: Context, ref: string): Promise<{ artifact: Artifact; history: { index: number; type: string; actor: string; time: string }[] }> {
  return ctx.store.read(async (tx) => {
    const artifact = await findArtifact(tx, ref);
    const entries = await tx.log.bySubject(artifact.digest);
    return { artifact, history: entries.map((e) => ({ index: e.index, type: e.type, actor: e.actor, time: e.time })) };
  });
}

export async function listArtifacts(ctx: Context, filter: { name?: string | undefined; labels?: readonly string[] | undefined; limit?: number | undefined } = {}): Promise<Artifact[]> {
  const label = filter.labels && filter.labels.length > 0 ? parseLabels(filter.labels) : undefined;
  return ctx.store.read((tx) =>
    tx.artifacts.list({
      ...(filter.name === undefined ? {} : { name: filter.name }),
      ...(label === undefined ? {} : { label }),
      ...(filter.limit === undefined ? {} : { limit: filter.limit }),
    }),
  );
}
