/**
 * An in-process API over a fresh workspace, seeded so that every registered
 * operation's `example` succeeds (the authorization matrix relies on it). A new
 * operation whose example needs state extends `seed` below.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addArtifact } from '../../src/app/artifacts.ts';
import { createToken } from '../../src/app/tokens.ts';
import { actingAs, type Context } from '../../src/app/workspace.ts';
import { encodeRequest, type Operation } from '../../src/app/operations/registry.ts';
import { ROLES, type Actor, type Role } from '../../src/core/identity.ts';
import { generateToken } from '../../src/core/token.ts';
import { composeServer, type ComposeOptions } from '../../src/server/listen.ts';
import type { LogLine } from '../../src/server/log.ts';
import { tempWorkspace, type Workspace } from '../helpers.ts';

export const ADMIN: Actor = { identity: 'admin@example.com', roles: [...ROLES] };
/** The bytes every upload example sends. */
export const EXAMPLE_UPLOAD = Buffer.from('example artifact\n');
/** The id of the token `token.revoke`'s example names. */
export const EXAMPLE_TOKEN_ID = '0123456789abcdef';

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
}

export async function api(options: ApiOptions = {}): Promise<Api> {
  const ws = await tempWorkspace();
  if (options.config !== undefined) await appendFile(join(ws.home, 'custody.yaml'), `${options.config}\n`);
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
  }
}

/** Everything a refused request must leave untouched; refusal audit entries are expected to grow. */
export async function stateOf(ctx: Context): Promise<string> {
  return ctx.store.read(async (tx) => {
    const artifacts = (await tx.artifacts.list({ limit: 10_000 })).map((a) => a.digest).sort();
    const tokens = (await tx.tokens.list()).map((t) => `${t.id}:${t.revokedAt ?? ''}`).sort();
    const size = await tx.log.size();
    const entries = (await tx.log.range(0, size)).filter((e) => e.type !== 'request.refused').map((e) => e.id);
    return JSON.stringify({ artifacts, tokens, entries });
  });
}
