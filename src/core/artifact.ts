import semver from 'semver';
import { CustodyError } from './errors.ts';
import { parseDigest, type DigestString } from './digest.ts';

/**
 * An artifact: one name+version mapped to one digest, forever.
 * `digests` holds every digest Custody knows for the content (sha256 is the
 * identity; sha512 is recorded when Custody saw the bytes).
 */
export interface Artifact {
  digest: DigestString;
  name: string;
  version: string;
  size: number | null;
  digests: Partial<Record<'sha256' | 'sha512', string>>;
  labels: Record<string, string>;
  source: ArtifactSource | null;
  /** True when Custody holds the bytes in its blob store. */
  stored: boolean;
  createdAt: string;
  createdBy: string;
}

export interface ArtifactSource {
  repository?: string;
  commit?: string;
}

const NAME_MAX = 256;
// purl per https://github.com/package-url/purl-spec: pkg:type/namespace/name; plain names are a strict subset.
const PURL_RE = /^pkg:[a-z][a-z0-9.+-]*\/[A-Za-z0-9._~%@/+-]+$/;
// A leading '@' is an npm scope; any other '@' would be read as a version separator.
const PLAIN_NAME_RE = /^@?[A-Za-z0-9][A-Za-z0-9._/+-]*$/;
// The regular expression published at https://semver.org (SemVer 2.0.0), verbatim.
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const VERSION_MAX = 128;
const LABEL_KEY_RE = /^[a-z0-9]([a-z0-9._/-]{0,62}[a-z0-9])?$/;
const LABEL_VALUE_MAX = 256;
const COMMIT_RE = /^[0-9a-f]{7,64}$/;

export function validateName(name: string): string {
  if (name.trim() === '') throw new CustodyError('NAME_INVALID', 'artifact name is empty');
  if (name.length > NAME_MAX) throw new CustodyError('NAME_INVALID', `artifact name is longer than ${NAME_MAX} characters`);
  if (name.startsWith('pkg:')) {
    if (!PURL_RE.test(name)) {
      throw new CustodyError('NAME_INVALID', `"${name}" is not a valid package URL`, {
        hint: 'use pkg:<type>/<namespace>/<name>, e.g. pkg:npm/app or pkg:oci/app',
      });
    }
    if (name.includes('@', name.lastIndexOf('/'))) {
      throw new CustodyError('NAME_INVALID', `"${name}" carries a version; pass the version with --version instead`);
    }
    return name;
  }
  if (!PLAIN_NAME_RE.test(name) || name.includes('..')) {
    throw new CustodyError('NAME_INVALID', `"${name}" is not a valid artifact name`, {
      hint: 'use letters, digits and . _ / + - (a leading @scope/ is fine), or a package URL',
    });
  }
  return name;
}

/** Versions are strict semver 2.0.0: the versioning discipline depends on ordering them. */
export function validateVersion(version: string): string {
  if (version.trim() === '') throw new CustodyError('VERSION_INVALID', 'version is empty');
  if (version.length > VERSION_MAX || !SEMVER_RE.test(version)) {
    throw new CustodyError('VERSION_INVALID', `"${version}" is not a semantic version`, { hint: 'e.g. 1.4.2 or 2.0.0-rc.1' });
  }
  return version;
}

export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b);
}

export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CustodyError('INPUT_INVALID', `label "${pair}" must be key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!LABEL_KEY_RE.test(key)) throw new CustodyError('INPUT_INVALID', `label key "${key}" is invalid`, { hint: 'lowercase letters, digits, . _ / -' });
    if (value.length > LABEL_VALUE_MAX) throw new CustodyError('INPUT_INVALID', `label "${key}" is longer than ${LABEL_VALUE_MAX} characters`);
    if (Object.hasOwn(labels, key)) throw new CustodyError('INPUT_INVALID', `label "${key}" given twice`);
    labels[key] = value;
  }
  return labels;
}

/** `--source <repository>[@<commit>]` */
export function parseSource(input: string): ArtifactSource {
  const at = input.lastIndexOf('@');
  const repository = at > 0 ? input.slice(0, at) : input;
  const commit = at > 0 ? input.slice(at + 1) : undefined;
  if (repository === '' || repository.length > 512 || /\s/.test(repository)) {
    throw new CustodyError('INPUT_INVALID', `source repository "${repository}" is invalid`);
  }
  if (commit !== undefined && !COMMIT_RE.test(commit)) {
    throw new CustodyError('INPUT_INVALID', `source commit "${commit}" is not a hex commit id`);
  }
  return commit === undefined ? { repository } : { repository, commit };
}

/** `name@version` or a digest: how users refer to an artifact on the command line. */
export type ArtifactRef = { kind: 'digest'; digest: DigestString } | { kind: 'name'; name: string; version: string | undefined };

export function parseArtifactRef(input: string): ArtifactRef {
  if (input.startsWith('sha256:') || input.startsWith('sha512:')) {
    const d = parseDigest(input);
    return { kind: 'digest', digest: `${d.algorithm}:${d.hex}` };
  }
  const at = input.lastIndexOf('@');
  // A leading '@' belongs to a scoped name (@scope/pkg), not to a version.
  if (at > 0 && !input.slice(at + 1).includes('/')) {
    const name = validateName(input.slice(0, at));
    const version = validateVersion(input.slice(at + 1));
    return { kind: 'name', name, version };
  }
  return { kind: 'name', name: validateName(input), version: undefined };
}
