/**
 * An in-process API over a fresh workspace, seeded so that every registered
 * operation's `example` succeeds (the authorization matrix relies on it). A new
 * operation whose example needs state extends `seed` below.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addArtifact } from '../../src/app/artifacts.ts';
import { createKey } from '../../src/app/keys.ts';
import { DEFAULT_PROMOTION_DEPS, promote } from '../../src/app/promotion.ts';
import { CustodyError } from '../../src/core/errors.ts';
import { signCheckpointNow } from '../../src/app/log.ts';
import { EXAMPLE_EXTERNAL_KEY_PEM, EXAMPLE_EXTERNAL_KEYID, EXAMPLE_POLICY_YAML } from '../../src/app/operations/examples.ts';
import { publishPolicies } from '../../src/app/policy.ts';
import { createToken } from '../../src/app/tokens.ts';
import { actingAs, type Context } from '../../src/app/workspace.ts';
import { encodeRequest, type Operation } from '../../src/app/operations/registry.ts';
import { ROLES, type Actor, type Role } from '../../src/core/identity.ts';
import { generateToken } from '../../src/core/token.ts';
import { composeServer, type ComposeOptions } from '../../src/server/listen.ts';
import type { LogLine } from '../../src/server/log.ts';
import { tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';

export const ADMIN: Actor = { identity: 'admin@example.com', roles: [...ROLES] };
/** The bytes every upload example sends. */
export const EXAMPLE_UPLOAD = Buffer.from('example artifact\n');
/** The id of the token `token.revoke`'s example names. */
export const EXAMPLE_TOKEN_ID = '0123456789abcdef';

/**
 * Operations whose example can succeed only once per workspace: it takes a
 * name (key.create) or moves a thing on from a state (approve, retire, revoke).
 * The matrix gives each of their expected successes a freshly seeded workspace.
 */
export const ONCE_PER_WORKSPACE: ReadonlySet<string> = new Set(['key.create', 'key.import-public', 'key.retire', 'key.revoke', 'exception.approve', 'exception.revoke']);

/**
 * Operations open to any identity whose use case still decides who may act on
 * the example, with the roles that may: `exception.revoke` lets the requester
 * withdraw their own, and otherwise needs approver or policy-admin (no matrix
 * token is the requester).
 */
export const USE_CASE_ROLES: Readonly<Record<string, readonly Role[]>> = { 'exception.revoke': ['approver', 'policy-admin'] };

/** Environments the examples act on: dev passes package-URL names, prod waits for approvals that never all come. */
const PROMOTION_CONFIG = `environments:
  dev: {}
  prod: {}
`;
const PROD_POLICY = 'apiVersion: custody.dev/v1\nkind: Policy\nname: prod\ngates:\n  approvals:\n    approvals:\n      count: 20\n      approvers: [{ role: approver }]\n      distinctFrom: [requester, signers]\n';
/** The promotion the approve example votes on (awaiting many approvals), and the one the reject example vetoes. */
export const EXAMPLE_PROMOTION_IDS = ['pr_00000000000000a1', 'pr_00000000000000b1'] as const;

/** Server-side signing reads the KEK from the process environment, as `custody server` does. */
async function ensureKek(): Promise<void> {
  if (process.env['CUSTODY_KEK_FILE'] || process.env['CUSTODY_KEY_PASSPHRASE']) return;
  await useFreshKek();
}

export interface Api {
  ws: Workspace;
  /** The server's context (store behind back-pressure); act with `actingAs`. */
  ctx: Context;
  app: ReturnType<typeof composeServer>['app'];
  state: ReturnType<typeof composeServer>['state'];
  logs: LogLine[];
  request(method: string, path: string, init?: { token?: string; json?: unknown; body?: string | Uint8Array; headers?: Record<string, string> }): Promise<Response>;
  /** A fresh API token with these roles (and scope, expiry or revocation). */
  token(roles: readonly Role[], options?: { identity?: string; environments?: string[]; expiresAt?: string; revoked?: boolean; id?: string }): Promise<string>;
  /** Sends `op`'s input the way the remote CLI would. */
  call(op: Operation, input: Record<string, unknown>, token: string | undefined, upload?: Uint8Array): Promise<Response>;
}

/** Appends a `server:` block (YAML, indented by two) to the workspace's custody.yaml. */
export async function serverConfig(ws: Workspace, yaml: string): Promise<void> {
  await appendFile(join(ws.home, 'custody.yaml'), `server:\n${yaml.replace(/^/gm, '  ')}\n`);
}

export interface ApiOptions extends ComposeOptions {
  /** YAML for the server block; default: generous rate limits and no token cache, so tests see revocations at once. */
  server?: string;
  /** Top-level YAML appended to custody.yaml (e.g. limits). */
  config?: string;
  /** Seed the `log` key and a first checkpoint (default); false leaves the log with no key that can sign. */
  logKey?: boolean;
}

export async function api(options: ApiOptions = {}): Promise<Api> {
  await ensureKek();
  const ws = await tempWorkspace();
  const configFile = join(ws.home, 'custody.yaml');
  await writeFile(configFile, (await readFile(configFile, 'utf8')).replace('environments: {}\n', PROMOTION_CONFIG));
  if (options.config !== undefined) await appendFile(configFile, `${options.config}\n`);
  await serverConfig(ws, options.server ?? 'rateLimit: { perSecond: 100000, burst: 100000 }\ntokenCacheSeconds: 0');
  const opened = await ws.open();
  const logs: LogLine[] = [];
  const { app, ctx, state } = composeServer(opened, { log: (l) => logs.push(l), ...options });
  const admin = actingAs(ctx, ADMIN);

  const request: Api['request'] = (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token !== undefined) headers['authorization'] = `Bearer ${init.token}`;
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers['content-type'] ??= 'application/json';
    }
    return Promise.resolve(app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }));
  };

  const token: Api['token'] = async (roles, o = {}) => {
    if (o.expiresAt === undefined && !o.revoked && o.id === undefined) {
      const created = await createToken(admin, { identity: o.identity ?? `${roles.join('+') || 'none'}@example.com`, roles, ...(o.environments ? { environments: o.environments } : {}) });
      return created.token;
    }
    // States the use case never produces on purpose (already expired, a chosen id): write the record directly.
    const fresh = generateToken();
    const id = o.id ?? fresh.id;
    const now = new Date().toISOString();
    await ctx.store.transaction((tx) =>
      tx.tokens.insert({
        id,
        identity: o.identity ?? 'fixture@example.com',
        roles: [...roles],
        environments: o.environments ?? null,
        description: null,
        salt: fresh.salt,
        hash: fresh.hash,
        createdAt: now,
        createdBy: ADMIN.identity,
        expiresAt: o.expiresAt ?? null,
        revokedAt: o.revoked ? now : null,
        revokedBy: o.revoked ? ADMIN.identity : null,
      }),
    );
    return fresh.token.replace(fresh.id, id);
  };

  const call: Api['call'] = (op, input, bearer, upload) => {
    const enc = encodeRequest(op, input);
    const q = enc.query.toString();
    const headers: Record<string, string> = {};
    let body: string | Uint8Array | undefined;
    if (op.upload) {
      headers['content-type'] = 'application/octet-stream';
      body = upload ?? EXAMPLE_UPLOAD;
    } else if (enc.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(enc.body);
    }
    return request(enc.method.toUpperCase(), `${enc.path}${q ? `?${q}` : ''}`, { ...(bearer === undefined ? {} : { token: bearer }), headers, ...(body === undefined ? {} : { body }) });
  };

  await seed(admin, ws);
  return { ws, ctx, app, state, logs, request, token, call };

  async function seed(admin: Context, w: Workspace): Promise<void> {
    const file = join(w.dir, 'example.bin');
    await writeFile(file, EXAMPLE_UPLOAD);
    await addArtifact(admin, { file, name: 'pkg:npm/example', version: '1.0.0' });
    await token([], { id: EXAMPLE_TOKEN_ID, identity: 'example@example.com' });
    // Keys the examples name; `log` signs checkpoints, so the log examples have one to prove into.
    await createKey(admin, { name: 'example-key', purposes: ['sign-artifact', 'attest'] });
    await createKey(admin, { name: 'example-policy', purposes: ['policy'] });
    await createKey(admin, { name: 'example-retire', purposes: ['sign-artifact'] });
    await createKey(admin, { name: 'example-revoke', purposes: ['sign-artifact'] });
    if (options.logKey !== false) await createKey(admin, { name: 'log', purposes: ['log-checkpoint'] });
    // The key that signed the examples' evidence and policy bundle (src/app/operations/examples.ts).
    await ctx.store.transaction((tx) =>
      tx.keys.insert(
        {
          keyid: EXAMPLE_EXTERNAL_KEYID,
          name: 'example-external',
          version: 1,
          algorithm: 'ed25519',
          owner: 'github:acme/app',
          purposes: ['attest', 'policy'],
          notBefore: '2020-01-01T00:00:00.000Z',
          notAfter: null,
          status: 'active',
          retiredAt: null,
          revokedAt: null,
          revocationReason: null,
          compromisedSince: null,
          backend: 'external',
          publicKeyPem: EXAMPLE_EXTERNAL_KEY_PEM,
          createdAt: '2020-01-01T00:00:00.000Z',
          createdBy: ADMIN.identity,
        },
        null,
      ),
    );
    await mkdir(join(w.home, 'policies'), { recursive: true });
    await writeFile(join(w.home, 'policies', 'dev.yaml'), EXAMPLE_POLICY_YAML);
    await writeFile(join(w.home, 'policies', 'prod.yaml'), PROD_POLICY);
    await publishPolicies(admin, { key: 'example-policy' });
    // Promotions: dev has held two versions (so rollback has a candidate), prod has two promotions awaiting approval.
    await createKey(admin, { name: 'receipts', purposes: ['promotion-receipt'] });
    const older = join(w.dir, 'example-0.9.0.bin');
    await writeFile(older, 'example artifact 0.9.0\n');
    await addArtifact(admin, { file: older, name: 'pkg:npm/example', version: '0.9.0' });
    await promote(admin, { artifact: 'pkg:npm/example@0.9.0', to: 'dev' });
    await promote(admin, { artifact: 'pkg:npm/example@1.0.0', to: 'dev' });
    for (const id of EXAMPLE_PROMOTION_IDS) {
      const p = await promote(admin, { artifact: 'pkg:npm/example@1.0.0', to: 'prod' }, { ...DEFAULT_PROMOTION_DEPS, newId: () => id });
      if (p.state !== 'awaiting-approval') throw new CustodyError('INTERNAL', `fixture promotion ${id} is ${p.state}`);
    }
    // Exceptions with the ids the approve and revoke examples name, requested by someone no matrix token is.
    const now = Date.now();
    for (const id of ['ex-00000000a001', 'ex-00000000a002']) {
      await ctx.store.transaction((tx) =>
        tx.exceptions.insert({
          id,
          environment: 'dev',
          gates: ['named'],
          artifact: 'pkg:npm/example@1.*',
          justification: 'EXAMPLE-2: seeded for the examples',
          requestedBy: 'example@example.com',
          createdAt: new Date(now).toISOString(),
          expiresAt: new Date(now + 86_400_000).toISOString(),
          approvedBy: null,
          approverRoles: [],
          approvedAt: null,
          revokedAt: null,
          revokedBy: null,
        }),
      );
    }
    if (options.logKey !== false) await signCheckpointNow(admin);
  }
}

/** Everything a refused request must leave untouched; refusal audit entries are expected to grow. */
export async function stateOf(ctx: Context): Promise<string> {
  return ctx.store.read(async (tx) => {
    const artifacts = (await tx.artifacts.list({ limit: 10_000 })).map((a) => a.digest).sort();
    const tokens = (await tx.tokens.list()).map((t) => `${t.id}:${t.revokedAt ?? ''}`).sort();
    const keys = (await tx.keys.list()).map((k) => `${k.keyid}:${k.status}:${k.retiredAt ?? ''}:${k.compromisedSince ?? ''}`).sort();
    const exceptions = (await tx.exceptions.list()).map((e) => `${e.id}:${e.approvedBy ?? ''}:${e.revokedAt ?? ''}`).sort();
    const policies = (await tx.policies.list()).map((p) => p.version);
    const size = await tx.log.size();
    const entries = (await tx.log.range(0, size)).filter((e) => e.type !== 'request.refused').map((e) => e.id);
    return JSON.stringify({ artifacts, tokens, keys, exceptions, policies, entries });
  });
}
