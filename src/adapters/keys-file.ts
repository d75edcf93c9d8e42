/**
 * File backend for private keys: PKCS#8 encrypted at rest with AES-256-GCM, one
 * file per key under `<home>/keys/<keyid>.key`.
 *
 * The data-encryption key of each file comes from a per-file random salt and a
 * key-encryption key (KEK):
 * - `CUSTODY_KEK_FILE`: 32 raw bytes, expanded with HKDF-SHA-256 (salt, info
 *   "custody-key-file/v1");
 * - `CUSTODY_KEY_PASSPHRASE`: scrypt, N=2^17, r=8, p=1 (128 MiB, ~0.3 s), the
 *   parameters stored in the file so they can be raised later.
 * The file's header (format, keyid, algorithm, KDF parameters, IV) is the GCM
 * additional data: a file copied over another key's file, or with its header
 * edited, fails to decrypt. Once decrypted, the private key must also derive
 * the expected keyid.
 *
 * A private key is decrypted at most once per process and kept as a KeyObject,
 * so signing costs what node:crypto costs.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scrypt as scryptCb,
  type KeyObject,
  type ScryptOptions,
} from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { listDir, ownerAlive, syncPath } from './fs-durable.ts';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../core/canonical.ts';
import { keyidOf, signBytes } from '../core/crypto.ts';
import { CustodyError } from '../core/errors.ts';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../core/key.ts';
import { signPrehashed } from '../core/prehash.ts';
import type { PrivateKeyRef, Signer } from '../core/ports.ts';
import { failpoint } from './failpoints.ts';
import { fsError } from './fs-errors.ts';

export const KEY_FILE_FORMAT = 'custody-encrypted-key/v1';
/** OWASP's minimum for scrypt is N=2^17, r=8, p=1: 128 MiB and about 0.3 s per derivation here. */
export const SCRYPT_DEFAULTS = { N: 2 ** 17, r: 8, p: 1 } as const;
const HKDF_INFO = 'custody-key-file/v1';
/** An encrypted PKCS#8 of the largest accepted key (RSA 4096) is ~3.5 KiB; anything near this limit is not ours. */
export const KEY_FILE_MAX_BYTES = 64 * 1024;
export const KEK_BYTES = 32;

/** Where the KEK comes from; the app reads these from the environment. */
export interface KekSource {
  passphrase?: string | undefined;
  kekFile?: string | undefined;
}

const b64 = z.string().max(KEY_FILE_MAX_BYTES).regex(/^[A-Za-z0-9+/]*={0,2}$/);
// Bounds on parameters read from a file: a tampered file must not make us allocate gigabytes.
const ScryptParams = z.strictObject({
  kind: z.literal('scrypt'),
  salt: b64,
  N: z.number().int().min(2 ** 14).max(2 ** 20).refine((n) => (n & (n - 1)) === 0, 'N must be a power of two'),
  r: z.number().int().min(1).max(16),
  p: z.number().int().min(1).max(4),
});
const HkdfParams = z.strictObject({ kind: z.literal('kek-file'), salt: b64 });
const KeyFileSchema = z.strictObject({
  format: z.literal(KEY_FILE_FORMAT),
  keyid: z.string().regex(/^[0-9a-f]{64}$/),
  algorithm: z.enum(KEY_ALGORITHMS),
  kdf: z.discriminatedUnion('kind', [ScryptParams, HkdfParams]),
  cipher: z.literal('aes-256-gcm'),
  iv: b64,
  ciphertext: b64,
  tag: b64,
});
type KeyFile = z.infer<typeof KeyFileSchema>;
type KdfParams = KeyFile['kdf'];

// ---------------------------------------------------------------- KEK

type Kek = { kind: 'scrypt'; passphrase: string } | { kind: 'kek-file'; key: Buffer };

function kekMissing(): CustodyError {
  return new CustodyError('KEK_MISSING', 'no key-encryption key: set CUSTODY_KEY_PASSPHRASE or CUSTODY_KEK_FILE', {
    hint: 'private keys are only ever stored encrypted; e.g. `head -c 32 /dev/urandom > kek && export CUSTODY_KEK_FILE=$PWD/kek`',
  });
}

/**
 * Reads exactly 32 raw bytes from the KEK file, never more than 33. Symbolic
 * links are followed here (secret mounts, e.g. Kubernetes', are symlinks): the
 * operator names this path, unlike the key files inside the workspace.
 */
async function readKekFile(path: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY);
  } catch (e) {
    throw new CustodyError('KEK_INVALID', `cannot read CUSTODY_KEK_FILE: ${fsError(e, path).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CustodyError('KEK_INVALID', `CUSTODY_KEK_FILE ${path} is not a regular file`);
    const buf = Buffer.alloc(KEK_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead !== KEK_BYTES) {
      throw new CustodyError('KEK_INVALID', `CUSTODY_KEK_FILE ${path} must hold exactly ${KEK_BYTES} raw bytes, it holds ${bytesRead >= KEK_BYTES + 1 ? 'more' : bytesRead}`, {
        hint: 'create one with `head -c 32 /dev/urandom > kek` (raw bytes, no newline, no hex)',
      });
    }
    return buf.subarray(0, KEK_BYTES);
  } finally {
    await fh.close();
  }
}

/** The KEK new files are encrypted under: the KEK file when set, else the passphrase. */
async function kekForWriting(src: KekSource): Promise<Kek> {
  if (src.kekFile !== undefined && src.kekFile !== '') return { kind: 'kek-file', key: await readKekFile(src.kekFile) };
  if (src.passphrase !== undefined && src.passphrase !== '') return { kind: 'scrypt', passphrase: src.passphrase };
  throw kekMissing();
}

/** The KEK a file was written under, as the file itself says. */
async function kekForReading(src: KekSource, kdf: KdfParams): Promise<Kek> {
  if (kdf.kind === 'kek-file') {
    if (src.kekFile === undefined || src.kekFile === '') {
      if (src.passphrase === undefined || src.passphrase === '') throw kekMissing();
      throw new CustodyError('KEK_MISSING', 'this key file is encrypted under a KEK file, and CUSTODY_KEK_FILE is not set', {
        hint: 'set CUSTODY_KEK_FILE to the 32-byte file it was created with',
      });
    }
    return { kind: 'kek-file', key: await readKekFile(src.kekFile) };
  }
  if (src.passphrase === undefined || src.passphrase === '') {
    if (src.kekFile === undefined || src.kekFile === '') throw kekMissing();
    throw new CustodyError('KEK_MISSING', 'this key file is encrypted under a passphrase, and CUSTODY_KEY_PASSPHRASE is not set', {
      hint: 'set CUSTODY_KEY_PASSPHRASE to the passphrase it was created with',
    });
  }
  return { kind: 'scrypt', passphrase: src.passphrase };
}

function scrypt(passphrase: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(passphrase.normalize('NFC'), salt, 32, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

async function dataKey(kek: Kek, kdf: KdfParams): Promise<Buffer> {
  const salt = Buffer.from(kdf.salt, 'base64');
  if (kek.kind === 'kek-file' && kdf.kind === 'kek-file') return Buffer.from(hkdfSync('sha256', kek.key, salt, HKDF_INFO, 32));
  if (kek.kind === 'scrypt' && kdf.kind === 'scrypt') {
    try {
      return await scrypt(kek.passphrase, salt, kdf);
    } catch (e) {
      throw new CustodyError('KEY_DECRYPT_FAILED', 'scrypt refused the key file\'s parameters', { cause: e });
    }
  }
  throw new CustodyError('INTERNAL', 'KEK kind does not match the key file');
}

// ---------------------------------------------------------------- encryption

/** The header bytes the GCM tag authenticates: everything but the ciphertext and tag. */
function aad(f: Omit<KeyFile, 'ciphertext' | 'tag'>): Buffer {
  return Buffer.from(canonicalJson({ format: f.format, keyid: f.keyid, algorithm: f.algorithm, kdf: f.kdf, cipher: f.cipher, iv: f.iv }), 'utf8');
}

export async function encryptPrivateKey(privateKey: KeyObject, algorithm: KeyAlgorithm, kekSource: KekSource): Promise<{ keyid: string; file: string }> {
  const kek = await kekForWriting(kekSource);
  const keyid = keyidOf(createPublicKey(privateKey));
  const salt = randomBytes(16).toString('base64');
  const kdf: KdfParams = kek.kind === 'scrypt' ? { kind: 'scrypt', salt, ...SCRYPT_DEFAULTS } : { kind: 'kek-file', salt };
  const dek = await dataKey(kek, kdf);
  const iv = randomBytes(12);
  const header = { format: KEY_FILE_FORMAT, keyid, algorithm, kdf, cipher: 'aes-256-gcm', iv: iv.toString('base64') } as const;
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const cipher = createCipheriv('aes-256-gcm', dek, iv);
    cipher.setAAD(aad(header));
    const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
    const file: KeyFile = { ...header, ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
    return { keyid, file: `${JSON.stringify(file, null, 2)}\n` };
  } finally {
    pkcs8.fill(0);
    dek.fill(0);
  }
}

export function parseKeyFile(text: string, label: string): KeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} is corrupted: not JSON`);
  }
  const r = KeyFileSchema.safeParse(json);
  if (!r.success) {
    const where = r.error.issues[0]?.path.join('.') ?? '';
    throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} is corrupted or not a ${KEY_FILE_FORMAT} file${where ? ` (at ${where})` : ''}`);
  }
  return r.data;
}

/** Decrypts a key file's content; the result must derive `expectedKeyid`. */
export async function decryptKeyFile(text: string, expectedKeyid: string, kekSource: KekSource, label = expectedKeyid.slice(0, 12)): Promise<KeyObject> {
  const f = parseKeyFile(text, label);
  if (f.keyid !== expectedKeyid) {
    throw new CustodyError('KEY_ID_MISMATCH', `the key file of ${label} holds key ${f.keyid.slice(0, 12)}…, not ${expectedKeyid.slice(0, 12)}…`, {
      hint: 'key files are bound to their key id; restore the right file from a backup',
    });
  }
  const kek = await kekForReading(kekSource, f.kdf);
  const dek = await dataKey(kek, f.kdf);
  let pkcs8: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek, Buffer.from(f.iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(aad(f));
    decipher.setAuthTag(Buffer.from(f.tag, 'base64'));
    pkcs8 = Buffer.concat([decipher.update(Buffer.from(f.ciphertext, 'base64')), decipher.final()]);
  } catch {
    // No cause attached: nothing from inside the decryption belongs in an error.
    throw new CustodyError('KEY_DECRYPT_FAILED', `cannot decrypt the key file of ${label}: wrong ${f.kdf.kind === 'scrypt' ? 'passphrase' : 'KEK file'}, or the file was altered`, {
      hint: f.kdf.kind === 'scrypt' ? 'check CUSTODY_KEY_PASSPHRASE' : 'check that CUSTODY_KEK_FILE is the file this key was created under',
    });
  } finally {
    dek.fill(0);
  }
  try {
    const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    if (keyidOf(createPublicKey(privateKey)) !== expectedKeyid) {
      throw new CustodyError('KEY_ID_MISMATCH', `the key file of ${label} decrypts to a different key than recorded`);
    }
    return privateKey;
  } catch (e) {
    if (e instanceof CustodyError) throw e;
    throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} decrypts to something that is not a private key`);
  } finally {
    pkcs8.fill(0);
  }
}

// ---------------------------------------------------------------- generation and signing

export function generateKeyPair(algorithm: KeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (algorithm) {
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'ecdsa-p256-sha256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'rsa-pss-3072-sha256':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
  }
}

/** A Signer over a private key held in this process. */
export class FileSigner implements Signer {
  readonly keyid: string;
  readonly algorithm: KeyAlgorithm;
  readonly inProcess = true;
  readonly #privateKey: KeyObject;

  constructor(keyid: string, algorithm: KeyAlgorithm, privateKey: KeyObject) {
    this.keyid = keyid;
    this.algorithm = algorithm;
    this.#privateKey = privateKey;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(signBytes(this.algorithm, this.#privateKey, data));
  }

  signDigest(sha256: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(signPrehashed(this.algorithm, this.#privateKey, sha256));
    } catch (e) {
      return Promise.reject(e instanceof CustodyError ? e : new CustodyError('INTERNAL', 'signing the digest failed', { cause: e }));
    }
  }

  /** Keeps the key object out of JSON and inspection output. */
  toJSON(): { keyid: string; algorithm: KeyAlgorithm } {
    return { keyid: this.keyid, algorithm: this.algorithm };
  }
}

/** Decrypted keys of this process, by keyid (a decrypted key is checked to derive its keyid). */
const unlocked = new Map<string, KeyObject>();

/** Forgets every decrypted key (tests and benchmarks that must measure a cold start). */
export function forgetUnlockedKeys(): void {
  unlocked.clear();
}

// ---------------------------------------------------------------- the store of key files

export interface StagedKeyFile {
  keyid: string;
  ref: PrivateKeyRef;
  /** Moves the file into place (no clobbering), leaving a marker that recovery uses if the transaction never commits. Inside the transaction. */
  publish: () => Promise<void>;
  /** After commit: the file is permanent. */
  finish: () => Promise<void>;
  /** After a failure: removes the staged or just-published file; safe to call twice. */
  discard: () => Promise<void>;
}

export class FileKeyStore {
  readonly dir: string;
  private readonly kek: KekSource;

  constructor(home: string, kek: KekSource) {
    this.dir = join(home, 'keys');
    this.kek = kek;
  }

  /** Fails early with KEK_MISSING / KEK_INVALID, before any key is generated. */
  async checkKek(): Promise<void> {
    await kekForWriting(this.kek);
  }

  refFor(keyid: string): PrivateKeyRef {
    return { backend: 'file', path: `keys/${keyid}.key` };
  }

  /** Encrypts the key and writes it to a temporary file (0600, fsynced); not yet under its name. */
  async stage(privateKey: KeyObject, algorithm: KeyAlgorithm): Promise<StagedKeyFile> {
    const { keyid, file } = await encryptPrivateKey(privateKey, algorithm, this.kek);
    const tmpDir = join(this.dir, '.tmp');
    const pendingDir = join(this.dir, '.pending');
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(pendingDir, { recursive: true, mode: 0o700 });
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const final = join(this.dir, `${keyid}.key`);
    const marker = join(pendingDir, `${process.pid}-${keyid}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(file);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw fsError(e, tmp);
    }
    await fh.close();
    let published = false;
    return {
      keyid,
      ref: this.refFor(keyid),
      publish: async () => {
        if (published) return;
        await (await open(marker, 'w', 0o600)).close();
        await syncPath(pendingDir);
        try {
          // link() refuses an existing name, where rename() would silently replace another key's file.
          await link(tmp, final);
        } catch (e) {
          await unlink(marker).catch(() => undefined);
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CustodyError('KEY_EXISTS', `a key file for ${keyid.slice(0, 12)}… already exists`);
          throw fsError(e, final);
        }
        published = true;
        await unlink(tmp).catch(() => undefined);
        await syncPath(this.dir);
        failpoint('key.file.after-publish');
      },
      finish: async () => {
        await unlink(marker).catch(() => undefined);
      },
      discard: async () => {
        await unlink(tmp).catch(() => undefined);
        if (published) await unlink(final).catch(() => undefined);
        await unlink(marker).catch(() => undefined);
        published = false;
      },
    };
  }

  /**
   * Removes what an interrupted create left behind: temporary files, and key
   * files published by a process that died before its transaction committed.
   */
  async recover(isKnown: (keyid: string) => Promise<boolean>): Promise<{ removed: number }> {
    let removed = 0;
    for (const name of await listDir(join(this.dir, '.tmp'))) {
      if (ownerAlive(name)) continue;
      await unlink(join(this.dir, '.tmp', name)).catch(() => undefined);
      removed++;
    }
    for (const name of await listDir(join(this.dir, '.pending'))) {
      if (ownerAlive(name)) continue;
      const keyid = name.slice(name.indexOf('-') + 1);
      if (/^[0-9a-f]{64}$/.test(keyid) && !(await isKnown(keyid))) {
        await unlink(join(this.dir, `${keyid}.key`)).catch(() => undefined);
        removed++;
      }
      await unlink(join(this.dir, '.pending', name)).catch(() => undefined);
    }
    return { removed };
  }

  /** A Signer for a recorded key; decrypts its file on first use in this process. */
  async signer(keyid: string, algorithm: KeyAlgorithm, ref: PrivateKeyRef, label: string): Promise<Signer> {
    const cached = unlocked.get(keyid);
    if (cached) return new FileSigner(keyid, algorithm, cached);
    // The path is derived from the keyid, never taken from the database: a tampered row cannot point elsewhere.
    if (ref.backend !== 'file' || ref.path !== `keys/${keyid}.key`) {
      throw new CustodyError('KEY_INVALID', `the private key reference of ${label} does not name its own key file`);
    }
    const text = await this.readKeyFile(join(this.dir, `${keyid}.key`), label);
    const privateKey = await decryptKeyFile(text, keyid, this.kek, label);
    unlocked.set(keyid, privateKey);
    return new FileSigner(keyid, algorithm, privateKey);
  }

  private async readKeyFile(path: string, label: string): Promise<string> {
    let fh;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CustodyError('KEY_NOT_FOUND', `the encrypted key file of ${label} is missing (${path})`, { hint: 'restore the workspace\'s keys/ folder from a backup' });
      }
      throw fsError(e, path);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} is not a regular file`);
      if (st.size > KEY_FILE_MAX_BYTES) throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} is ${st.size} bytes, over the ${KEY_FILE_MAX_BYTES}-byte limit`);
      const buf = Buffer.alloc(KEY_FILE_MAX_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > KEY_FILE_MAX_BYTES) throw new CustodyError('KEY_DECRYPT_FAILED', `the key file of ${label} grew past the ${KEY_FILE_MAX_BYTES}-byte limit`);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  }
}

