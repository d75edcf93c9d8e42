/**
 * `custody server`: the API on @hono/node-server, and its lifecycle. Shutdown
 * is graceful: stop accepting, let in-flight requests finish up to a deadline,
 * cut what is left (an interrupted upload discards its temporary file), wait for
 * every handler to settle, then close the store. Nothing is acknowledged that is
 * not committed, and nothing committed is half-written.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Authenticator } from '../app/auth.ts';
import { CheckpointScheduler, checkpointIntervalMs, signWorkspaceCheckpoint } from '../app/log.ts';
import { actingAs, openWorkspace, type Context } from '../app/workspace.ts';
import { BoundedStore } from '../adapters/store-bounded.ts';
import { CustodyError } from '../core/errors.ts';
import { createApp, ServerState, type AppDeps } from './app.ts';
import { stderrLogger, type Logger } from './log.ts';

export interface StartOptions {
  home: string;
  /** host:port; default from custody.yaml (server.listen). Port 0 picks a free one. */
  listen?: string;
  log?: Logger;
  /** For tests: extra operations, or a fake JWKS source. */
  appDeps?: Partial<Pick<AppDeps, 'operations' | 'checkpoints'>>;
  authDeps?: Partial<ConstructorParameters<typeof Authenticator>[0]>;
}

export interface RunningServer {
  url: string;
  port: number;
  ctx: Context;
  state: ServerState;
  /** Graceful stop; resolves once the store is closed. Safe to call twice. */
  close(reason?: string): Promise<{ drainedMs: number; cut: boolean }>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new CustodyError('USAGE', `"${listen}" is not host:port`, { hint: 'e.g. --listen 127.0.0.1:8080, or [::1]:8080' });
  }
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

export interface ComposeOptions {
  log?: Logger;
  appDeps?: Partial<Pick<AppDeps, 'operations' | 'checkpoints'>>;
  authDeps?: Partial<ConstructorParameters<typeof Authenticator>[0]>;
}

/**
 * Wires an opened workspace into an API: the store behind back-pressure, the
 * authenticator, the app. `startServer` listens with it; tests call `app.request()`.
 */
export function composeServer(
  opened: Context,
  options: ComposeOptions = {},
): { app: ReturnType<typeof createApp>; ctx: Context; state: ServerState; auth: Authenticator; checkpoints: CheckpointScheduler } {
  const config = opened.config.server;
  const store = new BoundedStore(opened.store, { maxPending: config.storeQueue });
  // The workspace's own actor never acts over HTTP: every request replaces it with its caller.
  const ctx = actingAs({ ...opened, store, served: true }, { identity: 'custody-server', roles: [] });
  const auth = new Authenticator({ store, clock: ctx.clock, home: ctx.home, server: config, ...options.authDeps });
  const state = new ServerState();
  const checkpoints = options.appDeps?.checkpoints ?? new CheckpointScheduler({ sign: () => signWorkspaceCheckpoint(ctx), clock: ctx.clock, intervalMs: checkpointIntervalMs(ctx) });
  const app = createApp({ ctx, auth, state, ...(options.log ? { log: options.log } : {}), ...options.appDeps, checkpoints });
  return { app, ctx, state, auth, checkpoints };
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const log = options.log ?? stderrLogger;
  const opened = await openWorkspace(options.home);
  const config = opened.config.server;
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListen(options.listen ?? config.listen));
  } catch (e) {
    await opened.close();
    throw e;
  }
  const { app, ctx, state, checkpoints } = composeServer(opened, { log, ...(options.appDeps ? { appDeps: options.appDeps } : {}), ...(options.authDeps ? { authDeps: options.authDeps } : {}) });

  const server = createAdaptorServer({
    fetch: app.fetch,
    serverOptions: {
      headersTimeout: config.timeouts.headersSeconds * 1000,
      requestTimeout: config.timeouts.requestSeconds * 1000,
      keepAliveTimeout: config.timeouts.keepAliveSeconds * 1000,
      // Node enforces the header and request timeouts on this tick (default 30 s): check every second.
      connectionsCheckingInterval: 1000,
    },
  }) as Server;
  server.maxHeadersCount = 100;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await opened.close();
    throw new CustodyError('USAGE', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
  }
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log({ level: 'info', msg: 'listening', url, home: ctx.home, operations: app.routes.length });
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) {
    log({ level: 'warn', msg: 'listening beyond loopback over plain HTTP: put a TLS-terminating proxy in front, or tokens cross the network in clear' });
  }

  let closing: Promise<{ drainedMs: number; cut: boolean }> | undefined;
  const close = (reason = 'close') => {
    closing ??= (async () => {
      const started = performance.now();
      state.draining = true;
      log({ level: 'info', msg: 'shutting down', reason, inflight: state.inflight });
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const grace = config.timeouts.shutdownSeconds * 1000;
      const cut = !(await settles(state.idle(), grace));
      if (cut) {
        log({ level: 'warn', msg: 'deadline reached; closing the remaining connections', inflight: state.inflight });
        server.closeAllConnections();
        // Handlers see their streams end and clean up; give them a moment to settle.
        await settles(state.idle(), 5000);
      }
      await settles(stopped, 1000);
      // Entries of the last interval get their checkpoint before the store closes.
      await checkpoints.flush().catch((e: unknown) => log({ level: 'warn', msg: 'no checkpoint was signed at shutdown', error: e instanceof Error ? e.message : String(e) }));
      checkpoints.close();
      await opened.close();
      const drainedMs = Math.round(performance.now() - started);
      log({ level: 'info', msg: 'stopped', drainedMs, cut });
      return { drainedMs, cut };
    })();
    return closing;
  };
  return { url, port: addr.port, ctx, state, close };
}

/** True when `p` settled within `ms`. */
async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
