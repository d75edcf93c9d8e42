/**
 * Key management over the registry. Private key material never leaves a
 * backend: no operation returns it, and no operation takes a passphrase or a
 * PIN. Signing on a server uses the server's KEK (CUSTODY_KEK_FILE or
 * CUSTODY_KEY_PASSPHRASE in its environment) and its HSM PINs.
 *
 * Roles: changing keys needs key-admin (the use cases keep their own checks
 * too); reading public facts needs any identity; `key.check` needs key-admin,
 * because it unlocks a private key (a KDF run or an HSM login per call).
 */
import { z } from 'zod';
import { CustodyError } from '../../core/errors.ts';
import { KEY_ALGORITHMS, KEY_BACKENDS, KEY_PURPOSES, KEY_STATUSES } from '../../core/key.ts';
import { auditRefusal } from '../audit.ts';
import { checkKey, createKey, exportPublicKey, importPublicKey, listKeys, retireKeyVersion, revokeKeyVersion, rotateKey, showKey } from '../keys.ts';
import { defined, defineOperation } from './registry.ts';

// Types and sizes only: the use cases validate names, algorithms, purposes and
// durations, so local and remote mode refuse bad values with the same codes.
const KeyName = z.string().max(128).describe('Key name, e.g. release');
const KeyRef = z.string().min(1).max(160).describe('name (the newest version) or name@version');
const Purposes = z.array(z.string().max(64)).max(16).describe('sign-artifact, attest, promotion-receipt, policy or log-checkpoint');
const Duration = z.string().max(32).describe('a duration such as 90d');
const Pem = z.string().max(16 * 1024).describe('a PEM SubjectPublicKeyInfo');
const Source = z.string().max(1024).describe('what to call the PEM in messages, e.g. its file name on the client (never opened)');

/** A public key to import in the example (its private half was never kept). */
const EXAMPLE_PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEACmZVcMqBf3cBlBZhzAyHumsY2DzEi+cJ5tvW4T4LXxo=\n-----END PUBLIC KEY-----\n';

export const KeySchema = z
  .object({
    keyid: z.string().describe('sha256 of the SPKI, hex'),
    name: z.string(),
    version: z.number().int(),
    algorithm: z.enum(KEY_ALGORITHMS),
    owner: z.string(),
    purposes: z.array(z.enum(KEY_PURPOSES)),
    notBefore: z.string(),
    notAfter: z.string().nullable(),
    status: z.enum(KEY_STATUSES),
    retiredAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revocationReason: z.string().nullable(),
    compromisedSince: z.string().nullable(),
    backend: z.enum(KEY_BACKENDS),
    publicKeyPem: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
  })
  .meta({ id: 'Key', description: 'One version of a signing key: public facts only.' });

const KEY_STATES = ['active', 'overlap', 'retired', 'revoked', 'expired', 'not-yet-valid'] as const;
export const KeyViewSchema = KeySchema.extend({ state: z.enum(KEY_STATES).describe('what it can do now') }).meta({ id: 'KeyView' });

const PrivateLocation = z
  .union([
    z.object({ backend: z.literal('file'), path: z.string().describe('the encrypted file, relative to the workspace') }),
    z.object({ backend: z.literal('pkcs11'), module: z.string(), slot: z.number().int(), tokenLabel: z.string().optional(), objectId: z.string(), pinEnv: z.string().describe('the variable holding the PIN (never the PIN)') }),
    z.object({ backend: z.literal('external') }),
  ])
  .meta({ id: 'PrivateKeyLocation', description: 'Where the private half lives, without anything secret.' });

const History = z.array(z.object({ index: z.number().int(), type: z.string(), actor: z.string(), time: z.string() }));

export const KEY_OPERATIONS = [
  defineOperation({
    id: 'key.create',
    method: 'post',
    path: '/v1/keys',
    summary: 'Create a signing key: encrypted under the server\'s KEK (file) or generated inside an HSM (pkcs11)',
    description: 'Over the API, --backend pkcs11 may name only a module listed in server.pkcs11Modules: loading a library runs its code in the server. The PIN is read from the named variable in the server\'s environment.',
    role: 'key-admin',
    input: z.strictObject({
      name: KeyName,
      algorithm: z.string().max(64).optional().describe('ed25519, ecdsa-p256-sha256 or rsa-pss-3072-sha256'),
      purposes: Purposes.optional(),
      expires: Duration.optional(),
      backend: z.string().max(16).optional().describe('file (default) or pkcs11'),
      owner: z.string().max(300).optional().describe('who owns the key (default: the caller)'),
      module: z.string().max(4096).optional().describe('pkcs11: absolute path of the PKCS#11 library'),
      slot: z.string().max(20).optional().describe('pkcs11: the slot id'),
      pinEnv: z.string().max(128).optional().describe('pkcs11: the environment variable that holds the PIN'),
    }),
    output: z.object({ key: KeySchema }),
    example: { name: 'example-new', algorithm: 'ed25519', purposes: ['attest'], expires: '90d' },
    run: async (ctx, input) => {
      if (ctx.served === true && input.backend === 'pkcs11' && (input.module === undefined || !ctx.config.server.pkcs11Modules.includes(input.module))) {
        const e = new CustodyError('FORBIDDEN', `the server does not load the PKCS#11 module ${input.module ?? '(none given)'}`, {
          hint: 'list it in server.pkcs11Modules in the server\'s custody.yaml, or create the key on the server\'s machine',
        });
        await auditRefusal(ctx, 'key.create', input.name, e);
      }
      return { key: await createKey(ctx, defined(input)) };
    },
  }),
  defineOperation({
    id: 'key.list',
    method: 'get',
    path: '/v1/keys',
    summary: 'Every version of every key, with what it can do now',
    role: null,
    input: z.strictObject({}),
    output: z.object({ keys: z.array(KeyViewSchema) }),
    example: {},
    run: async (ctx) => ({ keys: await listKeys(ctx) }),
  }),
  defineOperation({
    id: 'key.show',
    method: 'get',
    path: '/v1/keys/{ref}',
    summary: 'One key version with its other versions, where its private half lives, and its log history',
    role: null,
    input: z.strictObject({ ref: KeyRef }),
    output: z.object({ key: KeyViewSchema, versions: z.array(KeyViewSchema), privateKey: PrivateLocation, history: History }),
    example: { ref: 'example-key' },
    run: (ctx, input) => showKey(ctx, input.ref),
  }),
  defineOperation({
    id: 'key.check',
    method: 'post',
    path: '/v1/keys/{ref}/check',
    summary: 'Prove a key can sign here: unlock it, sign a challenge, verify the signature',
    description: 'Needs key-admin: it unlocks a private key (the KEK or an HSM login). Nothing secret is returned.',
    role: 'key-admin',
    input: z.strictObject({ ref: KeyRef, purpose: z.string().max(64).optional().describe('the purpose to check (default: its first)') }),
    output: z.object({ keyid: z.string(), name: z.string(), version: z.number().int(), purpose: z.enum(KEY_PURPOSES), backend: z.enum(KEY_BACKENDS), verified: z.literal(true) }),
    example: { ref: 'example-key' },
    run: async (ctx, input) => {
      const c = await checkKey(ctx, input.ref, input.purpose);
      return { keyid: c.key.keyid, name: c.key.name, version: c.key.version, purpose: c.purpose, backend: c.backend, verified: c.verified };
    },
  }),
  defineOperation({
    id: 'key.export-public',
    method: 'get',
    path: '/v1/keys/{ref}/public',
    summary: 'The public key of a key version, as PEM or JWK',
    role: null,
    input: z.strictObject({ ref: KeyRef, format: z.string().max(8).optional().describe('pem (default) or jwk') }),
    output: z.object({
      keyid: z.string(),
      name: z.string(),
      version: z.number().int(),
      algorithm: z.enum(KEY_ALGORITHMS),
      pem: z.string().optional(),
      jwk: z.record(z.string(), z.unknown()).optional(),
    }),
    example: { ref: 'example-key', format: 'jwk' },
    run: async (ctx, input) => {
      const out = await exportPublicKey(ctx, input.ref, input.format ?? 'pem');
      const k = out.key;
      return { keyid: k.keyid, name: k.name, version: k.version, algorithm: k.algorithm, ...(out.pem === undefined ? {} : { pem: out.pem }), ...(out.jwk === undefined ? {} : { jwk: out.jwk }) };
    },
  }),
  defineOperation({
    id: 'key.import-public',
    method: 'post',
    path: '/v1/keys/external',
    summary: 'Register an external key from its PEM public key: it verifies, Custody never holds its private half',
    role: 'key-admin',
    input: z.strictObject({
      name: KeyName,
      pem: Pem,
      source: Source.optional(),
      purposes: Purposes.optional(),
      owner: z.string().max(300).optional(),
      keyid: z.string().max(64).optional().describe('refuse the PEM unless its key id is exactly this'),
      expires: Duration.optional(),
    }),
    output: z.object({ key: KeySchema }),
    example: { name: 'example-imported', pem: EXAMPLE_PEM, purposes: ['attest'], owner: 'github:acme/app' },
    run: async (ctx, input) => ({ key: await importPublicKey(ctx, defined(input)) }),
  }),
  defineOperation({
    id: 'key.rotate',
    method: 'post',
    path: '/v1/keys/{name}/rotate',
    summary: 'Make the next version of a key; earlier versions become verify-only after the overlap',
    role: 'key-admin',
    input: z.strictObject({
      name: KeyName,
      overlap: Duration.optional().describe('how long the replaced version may keep signing'),
      algorithm: z.string().max(64).optional(),
      expires: Duration.optional(),
      publicKeyPem: Pem.optional().describe("external keys: the successor's public key"),
    }),
    output: z.object({ key: KeySchema, retired: z.array(KeySchema) }),
    example: { name: 'example-key', overlap: '1d' },
    run: (ctx, input) => rotateKey(ctx, defined(input)),
  }),
  defineOperation({
    id: 'key.retire',
    method: 'post',
    path: '/v1/keys/{ref}/retire',
    summary: 'Stop one version signing now; it keeps verifying what it signed before',
    role: 'key-admin',
    input: z.strictObject({ ref: KeyRef.describe('name@version') }),
    output: z.object({ key: KeySchema }),
    example: { ref: 'example-retire@1' },
    run: async (ctx, input) => ({ key: await retireKeyVersion(ctx, input.ref) }),
  }),
  defineOperation({
    id: 'key.revoke',
    method: 'post',
    path: '/v1/keys/{ref}/revoke',
    summary: 'Revoke one version for good: its signatures from compromisedSince on stop verifying',
    role: 'key-admin',
    input: z.strictObject({
      ref: KeyRef.describe('name@version'),
      reason: z.string().max(64).describe('compromised, superseded, cessation-of-operation, affiliation-changed or unspecified'),
      compromisedSince: z.string().max(64).optional().describe('RFC 3339; default now, never in the future'),
    }),
    output: z.object({ key: KeySchema }),
    example: { ref: 'example-revoke@1', reason: 'superseded' },
    run: async (ctx, input) => ({ key: await revokeKeyVersion(ctx, input.ref, { reason: input.reason, ...(input.compromisedSince === undefined ? {} : { compromisedSince: input.compromisedSince }) }) }),
  }),
] as const;
