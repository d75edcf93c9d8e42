import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readlink, rename, symlink, unlink } from 'node:fs/promises';
import { syncPath } from './fs-durable.ts';
import { join } from 'node:path';
import { CustodyError } from '../core/errors.ts';
import type { Target, TargetOutcome, TargetRequest } from '../core/ports.ts';

/**
 * A file channel: `<dir>/<env>/<name>/<version>` holds the bytes and
 * `<dir>/<env>/<name>/current` is a symlink to the version, replaced by rename so
 * readers see either the old version or the new one, never neither.
 */
export class FsTarget implements Target {
  readonly type = 'fs';
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async apply(req: TargetRequest, _signal?: AbortSignal): Promise<TargetOutcome> {
    if (req.blobPath === null) {
      throw new CustodyError('TARGET_FAILED', `the fs target needs the bytes of ${req.artifact.name}@${req.artifact.version}, which was registered by digest only`, {
        hint: 'register the artifact from its file, or use a command/oci target for artifacts that live elsewhere',
      });
    }
    const channel = join(this.dir, safeSegment(req.environment), safeSegment(req.artifact.name));
    const versionFile = join(channel, safeSegment(req.artifact.version));
    await mkdir(channel, { recursive: true });
    // Copy under a temporary name, fsync, then rename: the version file is whole or absent.
    const tmp = join(channel, `.${safeSegment(req.artifact.version)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await copyFile(req.blobPath, tmp);
      await syncPath(tmp);
      await rename(tmp, versionFile);
      const link = join(channel, `.current.${randomBytes(6).toString('hex')}`);
      await symlink(safeSegment(req.artifact.version), link);
      await rename(link, join(channel, 'current'));
      await syncPath(channel);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      if (e instanceof CustodyError) throw e;
      throw new CustodyError('TARGET_FAILED', `fs target could not publish into ${channel}: ${(e as Error).message}`, { cause: e });
    }
    const current = await readlink(join(channel, 'current'));
    return { output: `published ${versionFile}; current -> ${current}`, details: { path: versionFile, current } };
  }
}

/** One path segment from a name that may hold `/` or `:` (package URLs): reversible and never `..`. */
export function safeSegment(s: string): string {
  const enc = encodeURIComponent(s);
  return enc === '.' || enc === '..' ? enc.replace(/\./g, '%2E') : enc;
}
