/**
 * File I/O for signatures and attestations: bounded reads of evidence and
 * trust material, streaming digests of artifacts, and the convenience copies
 * of stored bundles under `<home>/evidence/`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseDigest, type DigestString } from '../core/digest.ts';
import { CustodyError } from '../core/errors.ts';
import { fsError } from './fs-errors.ts';
import { readLimited } from './read-limited.ts';
import { moduleUrl } from './module-url.ts';

export { readLimited };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** JSON is UTF-8 (RFC 8259 §8.1); anything else would not hash back to the bytes received. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (e) {
    throw new CustodyError('EVIDENCE_INVALID', `${what} is not UTF-8 text`, { cause: e });
  }
}

export interface FileDigests {
  sha256: string;
  sha512: string;
  size: number;
}

/** Streams a file once through sha256 and sha512. */
export async function digestFile(path: string): Promise<FileDigests> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new CustodyError('INPUT_INVALID', `${path} is not a regular file`);
  } catch (e) {
    throw fsError(e, path);
  }
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      sha256.update(chunk);
      sha512.update(chunk);
      size += chunk.length;
    }
  } catch (e) {
    throw fsError(e, path);
  }
  return { sha256: sha256.digest('hex'), sha512: sha512.digest('hex'), size };
}

// ---------------------------------------------------------------- trusted roots

const ROOT_MAX = 4 * 1024 * 1024;
let publicGood: unknown;

/**
 * The Sigstore public-good trusted root as shipped inside the installed
 * @sigstore/tuf package (its TUF seed), so keyless verification works offline.
 * It is as fresh as the installed package: `--trusted-root` or the workspace's
 * `trustedRoot` setting override it.
 */
export async function publicGoodTrustedRoot(): Promise<unknown> {
  if (publicGood !== undefined) return publicGood;
  const path = createRequire(moduleUrl(import.meta.url)).resolve('@sigstore/tuf/seeds.json');
  const seeds = parseJson(decodeUtf8(await readLimited(path, ROOT_MAX, 'the @sigstore/tuf seeds'), 'seeds'), path) as Record<string, { targets?: Record<string, string> }>;
  const target = Object.values(seeds)[0]?.targets?.['trusted_root.json'];
  if (target === undefined) throw new CustodyError('TRUSTED_ROOT_INVALID', `${path} holds no trusted_root.json`);
  publicGood = parseJson(Buffer.from(target, 'base64').toString('utf8'), `${path} (trusted_root.json)`);
  return publicGood;
}

export async function readTrustedRoot(path: string): Promise<unknown> {
  return parseJson(decodeUtf8(await readLimited(path, ROOT_MAX, 'trusted root'), path), path);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CustodyError('TRUSTED_ROOT_INVALID', `${where} is not JSON`, { cause: e });
  }
}

// ---------------------------------------------------------------- stored copies

/** Where the readable copy of a stored bundle lives; the database holds the original. */
export function evidencePath(home: string, digest: DigestString, format: 'bundle' | 'dsse'): string {
  return join(home, 'evidence', `${parseDigest(digest).hex}${format === 'bundle' ? '.sigstore.json' : '.intoto.json'}`);
}
