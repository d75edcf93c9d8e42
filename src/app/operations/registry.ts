/**
 * The shape of an operation and the machinery every caller shares: the CLI in
 * local mode, the CLI in remote mode and the HTTP server all go through
 * `runOperation` (server and local) or `encodeRequest` (remote client), so
 * validation, authorization and output are the same wherever a use case runs.
 * The table of operations is in ./index.ts.
 */
import type { z } from 'zod';
import type { Config } from '../../core/config.ts';
import { CustodyError } from '../../core/errors.ts';
import { requireRole, type Role } from '../../core/identity.ts';
import type { ByteStream, IngestProgress } from '../../core/ports.ts';
import { auditRefusal } from '../audit.ts';
import type { Context } from '../workspace.ts';

/** What `envScope` returns for a call that reaches every environment ('*' is never an environment name). */
export const ALL_ENVIRONMENTS = '*';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The environment(s) a call acts on; see `Operation.envScope`. */
export type EnvScope = string | readonly string[] | undefined;

/** What travels beside the JSON input: the bytes of an upload, and progress for humans. */
export interface OperationIO {
  /** A local file path (CLI, local mode) or a stream (the HTTP request body). */
  upload?: string | ByteStream;
  onProgress?: (p: IngestProgress) => void;
}

export interface Operation<I extends z.ZodObject = z.ZodObject, O extends z.ZodType = z.ZodType> {
  /** Stable, dotted: `<noun>.<verb>`; also the OpenAPI operationId. */
  readonly id: string;
  readonly method: HttpMethod;
  /** Under /v1; `{name}` segments are filled from input fields of that name. */
  readonly path: `/v1/${string}`;
  readonly summary: string;
  readonly description?: string;
  /** The role the caller must hold; null lets any authenticated identity call it. */
  readonly role: Role | null;
  /**
   * The environment(s) the call acts on, checked against an environment-scoped
   * token: every one must be within the token's scope. ALL_ENVIRONMENTS means the
   * call reaches every environment, which no scoped token may do. A call that
   * names a stored thing (an exception by id) looks its environment up in `ctx`;
   * when there is no such thing it returns undefined and the use case says so.
   */
  envScope?(input: z.output<I>, ctx: Context): EnvScope | Promise<EnvScope>;
  /**
   * Every input field, flat. Over HTTP, path fields come from the path; GET,
   * DELETE and upload operations take the rest from the query string; others
   * from a JSON body. Use z.strictObject (unknown fields are refused: a body can
   * never smuggle in an `actor`), keep domain checks in the use case so both
   * modes report the same codes, and put no refinement on the object itself.
   */
  readonly input: I;
  /** The JSON the caller gets back, identical in local and remote mode. Use z.object (old clients ignore new fields). */
  readonly output: O;
  /** A valid input: the OpenAPI example, and what the authorization matrix and fuzz tests send. */
  readonly example: z.input<I>;
  /** The request body is the raw bytes of `io.upload` (application/octet-stream). */
  readonly upload?: boolean;
  /** Largest request body; default `server.bodyLimitBytes` (64 KiB). Evidence routes: `(c) => c.limits.evidenceBytes`. */
  bodyLimit?(config: Config): number;
  run(ctx: Context, input: z.output<I>, io: OperationIO): Promise<z.input<O>>;
}

/** Keeps the literal `id` so `invoke(g, 'artifact.add', …)` is typed by the table. */
export function defineOperation<const Id extends string, I extends z.ZodObject, O extends z.ZodType>(op: Operation<I, O> & { readonly id: Id }): Operation<I, O> & { readonly id: Id } {
  return op;
}

// ---------------------------------------------------------------- running

/**
 * Authorize, validate, run and shape the output. The role is checked before the
 * input is even parsed (a caller without the role learns nothing about valid
 * inputs); the environment scope after, since it depends on the input. A refusal
 * is audited, and nothing else is written.
 */
export async function executeOperation(ctx: Context, op: Operation, rawInput: unknown, io: OperationIO = {}): Promise<unknown> {
  await authorizeRole(ctx, op);
  const input = parseInput(op, rawInput);
  await authorizeScope(ctx, op, input);
  const output = await op.run(ctx, input, io);
  return parseOutput(op, output);
}

export async function authorizeRole(ctx: Context, op: Operation): Promise<void> {
  if (op.role === null) return;
  try {
    requireRole(ctx.actor, op.role, op.id);
  } catch (e) {
    await auditRefusal(ctx, op.id, undefined, e);
  }
}

/** The environments a call needs that the actor's scope does not cover (none when unscoped). */
export function outOfScope(scope: readonly string[] | undefined, wanted: string | readonly string[] | undefined): string[] {
  if (scope === undefined || wanted === undefined) return [];
  return (typeof wanted === 'string' ? [wanted] : [...wanted]).filter((env) => !scope.includes(env));
}

async function authorizeScope(ctx: Context, op: Operation, input: Record<string, unknown>): Promise<void> {
  const scope = ctx.actor.environments;
  if (scope === undefined || !op.envScope) return;
  const missing = outOfScope(scope, await op.envScope(input, ctx));
  if (missing.length === 0) return;
  const what = missing.includes(ALL_ENVIRONMENTS) ? 'every environment' : missing.join(', ');
  const e = new CustodyError('FORBIDDEN', `${ctx.actor.identity} may act on ${scope?.join(', ') || 'no environment'}, not on ${what}`, {
    hint: 'use a token scoped to this environment',
    details: { environments: missing },
  });
  await auditRefusal(ctx, op.id, undefined, e);
}

export function parseInput(op: Operation, raw: unknown): Record<string, unknown> {
  const r = op.input.safeParse(raw ?? {});
  if (!r.success) throw new CustodyError('INPUT_INVALID', describeIssues(r.error), { details: { operation: op.id } });
  return r.data;
}

function parseOutput(op: Operation, value: unknown): unknown {
  const r = op.output.safeParse(value);
  // Our bug, not the caller's: say so without echoing what we were about to send.
  if (!r.success) throw new CustodyError('INTERNAL', `the ${op.id} result does not match its schema: ${describeIssues(r.error)}`);
  return r.data;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.map(String).join('.');
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

// ---------------------------------------------------------------- HTTP mapping

export type FieldPlace = 'path' | 'query' | 'body';
export type FieldKind = 'array' | 'number' | 'boolean' | 'scalar';

export function pathParams(op: Pick<Operation, 'path'>): string[] {
  return [...op.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1] ?? '');
}

/** Where each input field travels over HTTP. */
export function fieldPlaces(op: Operation): Record<string, FieldPlace> {
  const params = pathParams(op);
  const inQuery = op.method === 'get' || op.method === 'delete' || op.upload === true;
  const places: Record<string, FieldPlace> = {};
  for (const name of Object.keys(op.input.shape)) places[name] = params.includes(name) ? 'path' : inQuery ? 'query' : 'body';
  return places;
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch']);

/** The JSON type under optional/default wrappers: how a query-string value must be decoded. */
export function fieldKind(schema: z.ZodType): FieldKind {
  let def = schema._zod.def as { type: string; innerType?: z.ZodType };
  while (WRAPPERS.has(def.type) && def.innerType) def = def.innerType._zod.def;
  if (def.type === 'array') return 'array';
  if (def.type === 'number' || def.type === 'int') return 'number';
  if (def.type === 'boolean') return 'boolean';
  return 'scalar';
}

/** Query strings carry text: turn it back into the field's JSON type, leaving anything odd for the schema to refuse. */
export function decodeQueryValue(kind: FieldKind, v: unknown): unknown {
  if (v === undefined) return undefined;
  switch (kind) {
    case 'array':
      return Array.isArray(v) ? v : [v];
    case 'number':
      return typeof v === 'string' && /^-?\d{1,15}(\.\d{1,15})?$/.test(v) ? Number(v) : v;
    case 'boolean':
      return v === 'true' ? true : v === 'false' ? false : v;
    case 'scalar':
      return v;
  }
}

export interface EncodedRequest {
  method: HttpMethod;
  /** The path with its parameters filled in and percent-encoded. */
  path: string;
  query: URLSearchParams;
  body?: Record<string, unknown>;
}

/** The remote client's half of the mapping: a validated input to an HTTP request. */
export function encodeRequest(op: Operation, input: Record<string, unknown>): EncodedRequest {
  const places = fieldPlaces(op);
  const query = new URLSearchParams();
  const body: Record<string, unknown> = {};
  let path: string = op.path;
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const place = places[name];
    if (place === 'path') path = path.replace(`{${name}}`, encodeURIComponent(text(value)));
    else if (place === 'query') {
      for (const v of Array.isArray(value) ? (value as unknown[]) : [value]) query.append(name, text(v));
    } else body[name] = value;
  }
  const hasBody = Object.values(places).includes('body');
  return { method: op.method, path, query, ...(hasBody ? { body } : {}) };
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Optional input fields as use cases take them (absent, never `undefined`: the code is built with exactOptionalPropertyTypes). */
export type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & { [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined> };

export function defined<T extends object>(o: T): Defined<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>;
}
