/**
 * The HTTP API, generated from the operation registry (src/app/operations): one
 * route per operation, validated on the way in by @hono/zod-openapi and on the
 * way out by the operation's output schema, with authentication, the declared
 * role, per-identity rate limits, body limits and a deadline in front of it.
 *
 * Order of checks on every operation route, each one cheaper than the next:
 *   draining? → bearer token → rate limit → role → body size → JSON shape →
 *   schema → environment scope → the use case → output schema.
 */
import { OpenAPIHono, createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import type { Context as HonoContext, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { randomBytes } from 'node:crypto';
import type { Authenticator} from '../app/auth.ts';
import { type Authenticated } from '../app/auth.ts';
import { allOperations } from '../app/operations/index.ts';
import {
  authorizeRole,
  decodeQueryValue,
  describeIssues,
  executeOperation,
  fieldKind,
  fieldPlaces,
  type Operation,
  type OperationIO,
} from '../app/operations/registry.ts';
import { tallyAppends, waitingNotice, type CheckpointScheduler } from '../app/log.ts';
import { actingAs, type Context } from '../app/workspace.ts';
import { CustodyError, httpStatusFor, toCustodyError, type ErrorCode } from '../core/errors.ts';
import { VERSION } from '../cli/version.ts';
import { redactUrl, stderrLogger, type Logger } from './log.ts';
import { RateLimiter } from './ratelimit.ts';

/** A note for humans about the request (e.g. entries waiting for a checkpoint); the CLI prints it on stderr. */
export const NOTICE_HEADER = 'Custody-Notice';

/** Live state the listener and the app share: draining during shutdown, requests in flight. */
export class ServerState {
  draining = false;
  inflight = 0;
  private waiters: (() => void)[] = [];

  enter(): void {
    this.inflight++;
  }

  leave(): void {
    this.inflight--;
    if (this.inflight === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

export interface AppDeps {
  /** The server's workspace; every request gets a copy acting as its authenticated caller. */
  ctx: Context;
  auth: Authenticator;
  state?: ServerState;
  log?: Logger;
  /** Default: every registered operation. Tests add their own. */
  operations?: readonly Operation[];
  /** Reports whether the store answers; default: a read of the log head. */
  ready?: () => Promise<void>;
  /** Signs log checkpoints after requests that appended entries (at most once per log.checkpointInterval). */
  checkpoints?: CheckpointScheduler;
}

type Env = {
  Variables: { requestId: string; auth?: Authenticated; op?: string; route?: string };
};

const JSON_DEPTH_MAX = 32;
const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) })
  .meta({ id: 'Error', description: 'Every failure: a stable code (src/core/errors.ts), a message and a hint.' });

export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const { ctx, auth } = deps;
  const config = ctx.config.server;
  const state = deps.state ?? new ServerState();
  const log = deps.log ?? stderrLogger;
  const limiter = new RateLimiter(config.rateLimit);
  const operations = deps.operations ?? allOperations();
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) throw new CustodyError('INPUT_INVALID', describeIssues(result.error));
    },
  });

  app.use('*', async (c, next) => {
    const started = performance.now();
    const requestId = randomBytes(8).toString('hex');
    c.set('requestId', requestId);
    state.enter();
    // A server's other clients may have requests waiting in its sockets: the store gathers their write
    // transactions into group commits (a request is served from its socket's callback to its COMMIT in one
    // turn of the event loop, so the next request is only read after, unless the commit waits for it).
    const done = ctx.store.concurrent?.();
    try {
      await next();
    } finally {
      done?.();
      state.leave();
      c.header('X-Request-Id', requestId);
      if (state.draining) c.header('Connection', 'close');
      const a = c.get('auth');
      const res = c.res;
      log({
        level: res.status >= 500 ? 'error' : 'info',
        msg: 'request',
        id: requestId,
        method: c.req.method,
        route: c.get('route') ?? null,
        op: c.get('op') ?? null,
        path: redactUrl(c.req.url),
        status: res.status,
        ms: Math.round((performance.now() - started) * 100) / 100,
        identity: a?.actor.identity ?? null,
        auth: a?.method ?? null,
        ...(a?.tokenId ? { tokenId: a.tokenId } : {}),
        ...(res.status >= 400 ? { code: res.headers.get('x-custody-error') } : {}),
      });
    }
  });
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin' }));
  // CORS stays off (no Access-Control-* headers at all) unless origins are configured.
  if (config.cors.origins.length > 0) app.use('*', cors({ origin: config.cors.origins, allowHeaders: ['Authorization', 'Content-Type'], maxAge: 600 }));
  app.use('*', async (c, next) => {
    if (state.draining && c.req.path !== '/healthz') throw new CustodyError('SHUTTING_DOWN', 'the server is shutting down', { hint: 'retry against another instance, or in a moment' });
    await next();
  });

  /** After a request that appended entries: the scheduler signs (now, or when the interval is up); a missing key is told to the caller. */
  async function checkpointAfter(c: HonoContext<Env>, appended: number): Promise<void> {
    if (appended === 0 || !deps.checkpoints) return;
    const notice = waitingNotice(await deps.checkpoints.notify().catch(() => undefined));
    if (notice) c.header(NOTICE_HEADER, notice.replace(/[^\x20-\x7e]/g, '?').slice(0, 512));
  }

  app.onError((err, c) => errorResponse(c, err, log));
  app.notFound((c) => errorResponse(c, new CustodyError('ROUTE_NOT_FOUND', `no route ${c.req.method} ${new URL(c.req.url).pathname}`, { hint: 'the API is described at /v1/openapi.json' }), log));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  const ready = deps.ready ?? (() => ctx.store.read(async (tx) => void (await tx.log.byIndex(0))));
  app.get('/readyz', async (c) => {
    try {
      await ready();
    } catch (e) {
      throw new CustodyError('NOT_READY', 'the store does not answer', { cause: e });
    }
    return c.json({ status: 'ready' });
  });

  const document = openApiDocument(operations);
  app.get('/v1/openapi.json', (c) => c.json(document));

  for (const op of operations) {
    const middleware: MiddlewareHandler<Env>[] = [
      async (c, next) => {
        c.set('op', op.id);
        c.set('route', op.path);
        const who = await auth.authenticate(c.req.header('authorization'));
        c.set('auth', who);
        limiter.take(who.actor.identity);
        // A refusal here is recorded (request.refused): a batch for the log like any other.
        const authorized = await tallyAppends(() => authorizeRole(actingAs(ctx, who.actor), op));
        await checkpointAfter(c, authorized.appended);
        if ('error' in authorized) throw authorized.error;
        await next();
      },
      op.upload ? uploadGate(op.bodyLimit?.(ctx.config) ?? ctx.config.limits.artifactBytes) : jsonBody(op.bodyLimit?.(ctx.config) ?? config.bodyLimitBytes),
      ...(op.upload ? [] : [deadline(config.timeouts.handlerSeconds * 1000)]),
    ];
    app.openapi({ ...routeFor(op), middleware }, async (c) => {
      const who = c.get('auth');
      if (!who) throw new CustodyError('INTERNAL', 'route reached without authentication');
      const v = c.req as unknown as { valid(target: string): Record<string, unknown> | undefined };
      const input = { ...v.valid('param'), ...v.valid('query'), ...v.valid('json') };
      const io: OperationIO = {};
      if (op.upload) {
        const length = c.req.header('content-length');
        // No body at all is an empty artifact, as an empty file is locally.
        const chunks: AsyncIterable<Uint8Array> = c.req.raw.body ?? (async function* () {})();
        io.upload = { label: 'the upload', chunks, ...(length === undefined ? {} : { expectedBytes: Number(length) }) };
      }
      // Each request is a batch for the log; a caller whose entries wait for a checkpoint is told, as the CLI tells locally.
      const run = await tallyAppends(() => executeOperation(actingAs(ctx, who.actor), op, input, io));
      await checkpointAfter(c, run.appended);
      if ('error' in run) throw run.error;
      return c.json(run.result as Record<string, unknown>, 200);
    });
  }
  return app;
}

// ---------------------------------------------------------------- routes from operations

/** The route an operation becomes: what is validated at runtime and what the OpenAPI document says. */
export function routeFor(op: Operation): RouteConfig {
  const places = fieldPlaces(op);
  const shape = op.input.shape as Record<string, z.ZodType>;
  const names = (place: string) => Object.keys(places).filter((n) => places[n] === place);
  const pick = (list: string[]) => Object.fromEntries(list.map((n) => [n, true])) as Record<string, true>;
  const paramNames = names('path');
  const queryNames = names('query');
  const bodyNames = names('body');
  const request: NonNullable<RouteConfig['request']> = {};
  if (paramNames.length) request.params = op.input.pick(pick(paramNames));
  // Always a strict query schema, even when empty: an unknown parameter is refused, not ignored.
  request.query = z.strictObject(
    Object.fromEntries(
      queryNames.map((n) => {
        const field = shape[n] ?? z.never();
        const kind = fieldKind(field);
        return [n, z.preprocess((v) => decodeQueryValue(kind, v), field)];
      }),
    ),
  );
  if (op.upload) {
    request.body = { required: true, content: { 'application/octet-stream': { schema: z.string().meta({ format: 'binary', description: 'the artifact bytes' }) } } };
  } else if (bodyNames.length > 0) {
    request.body = { content: { 'application/json': { schema: (bodyNames.length === Object.keys(shape).length ? op.input : op.input.omit(pick(paramNames))) as never, example: bodyExample(op, bodyNames) } } };
  }
  return createRoute({
    method: op.method,
    path: op.path,
    operationId: op.id,
    summary: op.summary,
    ...(op.description === undefined ? {} : { description: op.description }),
    tags: [op.id.split('.')[0] ?? op.id],
    security: [{ bearer: [] }],
    'x-custody-role': op.role ?? 'any authenticated identity',
    'x-custody-environment-scoped': op.envScope !== undefined,
    request,
    responses: {
      200: { description: 'Success', content: { 'application/json': { schema: op.output as never } } },
      400: { description: 'Invalid input', content: { 'application/json': { schema: ErrorSchema } } },
      401: { description: 'No valid bearer token', content: { 'application/json': { schema: ErrorSchema } } },
      403: { description: `Needs the ${op.role ?? 'any'} role${op.envScope ? ', within the token\'s environments' : ''}`, content: { 'application/json': { schema: ErrorSchema } } },
      413: { description: 'Body over the limit', content: { 'application/json': { schema: ErrorSchema } } },
      429: { description: 'Rate limited (Retry-After)', content: { 'application/json': { schema: ErrorSchema } } },
      503: { description: 'Busy or shutting down (Retry-After)', content: { 'application/json': { schema: ErrorSchema } } },
      default: { description: 'Any other coded error', content: { 'application/json': { schema: ErrorSchema } } },
    },
  });
}

function bodyExample(op: Operation, bodyNames: string[]): Record<string, unknown> {
  const ex = op.example;
  return Object.fromEntries(bodyNames.filter((n) => ex[n] !== undefined).map((n) => [n, ex[n]]));
}

/** The OpenAPI 3.1 document for a set of operations: served at /v1/openapi.json and published as schemas/openapi.json. */
export function openApiDocument(operations: readonly Operation[] = allOperations()): Record<string, unknown> {
  const doc = new OpenAPIHono();
  doc.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A Custody API token (cst_…) or an OIDC JWT from a configured CI issuer.',
  });
  for (const op of operations) doc.openAPIRegistry.registerPath(routeFor(op));
  return doc.getOpenAPI31Document({
    openapi: '3.1.0',
    info: { title: 'Custody', version: VERSION, description: 'Policy-gated, signed and audited artifact promotion. Errors are { error: { code, message, hint } }.' },
  }) as unknown as Record<string, unknown>;
}

// ---------------------------------------------------------------- body handling

/**
 * JSON bodies, parsed defensively: a size limit enforced while reading (not
 * trusting Content-Length alone), strict UTF-8, a nesting limit, an object at
 * the top. Whatever fails is INPUT_INVALID or INPUT_TOO_LARGE, never a
 * SyntaxError. The validated text is handed on to the schema validator.
 */
function jsonBody(limit: number): MiddlewareHandler<Env> {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const bytes = await readLimited(body, limit);
    if (bytes.length === 0) return next();
    if (type !== 'application/json') throw new CustodyError('INPUT_INVALID', 'send the request body as Content-Type: application/json');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new CustodyError('INPUT_INVALID', 'the request body is not valid UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CustodyError('INPUT_INVALID', 'the request body is not valid JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CustodyError('INPUT_INVALID', 'the request body must be a JSON object');
    if (depthOver(value, JSON_DEPTH_MAX)) throw new CustodyError('INPUT_INVALID', `the request body nests deeper than ${JSON_DEPTH_MAX} levels`);
    // hono caches bodies as promises, whatever its type says; the validator re-reads from here.
    (c.req.bodyCache as unknown as { text?: Promise<string> }).text = Promise.resolve(text);
    await next();
  };
}

function uploadGate(limit: number): MiddlewareHandler<Env> {
  return async (c, next) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/octet-stream') throw new CustodyError('INPUT_INVALID', 'send the artifact as Content-Type: application/octet-stream');
    const declared = c.req.header('content-length');
    if (declared !== undefined && !/^\d{1,16}$/.test(declared)) throw new CustodyError('INPUT_INVALID', 'Content-Length is not a number');
    // Refuse before a byte is read; a chunked body is counted as it streams to disk.
    if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
    await next();
  };
}

function tooLarge(limit: number): CustodyError {
  return new CustodyError('INPUT_TOO_LARGE', `the request body is over the ${limit}-byte limit for this route`);
}

async function readLimited(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function depthOver(v: unknown, max: number, d = 0): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (d >= max) return true;
  for (const child of Object.values(v as Record<string, unknown>)) if (depthOver(child, max, d + 1)) return true;
  return false;
}

function deadline(ms: number): MiddlewareHandler<Env> {
  return async (_c, next) => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CustodyError('REQUEST_TIMEOUT', `the request took longer than ${ms / 1000}s`, { hint: 'retry; the operation is idempotent where it matters', details: { retryAfterSeconds: 1 } })), ms);
      timer.unref();
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}

// ---------------------------------------------------------------- errors

const RETRY_CODES = new Set<ErrorCode>(['STORE_BUSY', 'RATE_LIMITED', 'SHUTTING_DOWN', 'REQUEST_TIMEOUT', 'JWKS_UNAVAILABLE']);

/** `{ error: { code, message, hint?, details? } }` with the code's status; internal errors say only that, and are logged. */
export function errorResponse(c: HonoContext<Env>, thrown: unknown, log: Logger): Response {
  const err = fromThrown(thrown);
  const status = httpStatusFor(err.code);
  const body: { code: string; message: string; hint?: string; details?: Record<string, unknown> } = { code: err.code, message: err.message };
  if (err.category === 'internal') {
    body.message = `internal error (request ${c.get('requestId') ?? '?'})`;
    log({ level: 'error', msg: 'internal error', id: c.get('requestId') ?? null, code: err.code, error: err.message, cause: err.cause instanceof Error ? err.cause.message : undefined });
  } else {
    if (err.hint !== undefined) body.hint = err.hint;
    if (err.details !== undefined) body.details = err.details;
  }
  c.header('x-custody-error', err.code);
  if (status === 401) c.header('WWW-Authenticate', 'Bearer');
  if (RETRY_CODES.has(err.code)) {
    const after = err.details?.['retryAfterSeconds'];
    c.header('Retry-After', String(typeof after === 'number' ? after : 1));
  }
  return c.json({ error: body }, status as 500);
}

function fromThrown(e: unknown): CustodyError {
  if (e instanceof CustodyError) return e;
  if (e instanceof HTTPException) {
    // Raised by hono or the zod-openapi validators before our middleware could say it better.
    if (e.status === 413) return new CustodyError('INPUT_TOO_LARGE', 'the request body is over the limit for this route');
    if (e.status === 415) return new CustodyError('INPUT_INVALID', 'unsupported Content-Type for this route', { hint: 'send application/json' });
    if (e.status < 500) return new CustodyError('INPUT_INVALID', e.message || 'bad request');
  }
  return toCustodyError(e);
}
