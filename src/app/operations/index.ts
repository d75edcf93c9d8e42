/**
 * THE OPERATION REGISTRY: one table drives the HTTP routes (request and response
 * validation), the OpenAPI 3.1 document at /v1/openapi.json, the role each route
 * requires, the authorization-matrix and fuzz tests, and the CLI's remote mode.
 *
 * To expose a use case (say `promote`), add one entry to a group file here:
 *
 *   defineOperation({
 *     id: 'promotion.request',                    // <noun>.<verb>; the OpenAPI operationId
 *     method: 'post',
 *     path: '/v1/promotions',                     // `{field}` segments come from input fields
 *     summary: 'Request a promotion into an environment',
 *     role: 'deployer',                           // or null: any authenticated identity
 *     envScope: (input) => input.to,              // only if the call acts on one environment
 *     input: z.strictObject({ artifact: z.string().max(1300), to: z.string().max(64), idempotencyKey: z.string().max(200).optional() }),
 *     output: PromotionSchema,                    // z.object: exactly what --json prints
 *     example: { artifact: 'pkg:npm/example@1.0.0', to: 'dev' },
 *     // bodyLimit: (c) => c.limits.evidenceBytes, // evidence routes (default 64 KiB)
 *     run: (ctx, input) => promote(ctx, input),   // ctx.actor is the AUTHENTICATED caller
 *   }),
 *
 * then make the CLI command call it; the same line works locally and remotely:
 *
 *   r.run(async (g) => {
 *     const out = await invoke(g, 'promotion.request', { artifact, to: opts.to });
 *     return { json: out, human: renderPromotion(out), exitCode: … };
 *   });
 *
 * Rules that keep the two modes identical and the server safe:
 * - `ctx.actor` is who is calling: in local mode from custody.yaml / --as, on the
 *   server from the verified token. Never take an identity from the input; strict
 *   input objects refuse unknown fields, so a body cannot claim to be someone else.
 * - `run` returns the JSON object the CLI prints with --json; human output is
 *   rendered from that object alone, so a remote call prints the same text.
 * - Errors are CustodyErrors; over HTTP they become `{ error: { code, message, hint } }`
 *   with the code's status, and the remote CLI turns them back into the same
 *   CustodyError, hence the same message and exit code.
 * - `example` must succeed against the fixture workspace the matrix test seeds
 *   (test/server/fixture.ts): extend the seed if a new example needs state.
 * - Refusals (role, scope, conflicts, denials) are audited by the machinery.
 */
import type { z } from 'zod';
import { CustodyError } from '../../core/errors.ts';
import type { Context } from '../workspace.ts';
import { ARTIFACT_OPERATIONS } from './artifacts.ts';
import { AUDIT_OPERATIONS } from './audit.ts';
import { EVIDENCE_OPERATIONS } from './evidence.ts';
import { KEY_OPERATIONS } from './keys.ts';
import { POLICY_OPERATIONS } from './policy.ts';
import { PROMOTION_OPERATIONS } from './promotions.ts';
import { executeOperation, type Operation, type OperationIO } from './registry.ts';
import { TOKEN_OPERATIONS } from './tokens.ts';

/** Every operation; a new group file is spread in here. */
export const OPERATIONS = [
  ...ARTIFACT_OPERATIONS,
  ...TOKEN_OPERATIONS,
  ...KEY_OPERATIONS,
  ...EVIDENCE_OPERATIONS,
  ...POLICY_OPERATIONS,
  ...AUDIT_OPERATIONS,
  ...PROMOTION_OPERATIONS,
] as const;

export type AnyOperation = (typeof OPERATIONS)[number];
export type OperationId = AnyOperation['id'];
type ById<K extends OperationId> = Extract<AnyOperation, { id: K }>;
export type InputOf<K extends OperationId> = z.input<ById<K>['input']>;
export type OutputOf<K extends OperationId> = z.output<ById<K>['output']>;

const BY_ID = new Map<string, Operation>(OPERATIONS.map((op) => [op.id, op as unknown as Operation]));
if (BY_ID.size !== OPERATIONS.length) throw new CustodyError('INTERNAL', 'two operations share an id');
// Two routes on one method and path would shadow each other silently (parallel branches add operations).
const ROUTES = new Set(OPERATIONS.map((op) => `${op.method} ${op.path.replace(/\{[^}]+\}/g, '{}')}`));
if (ROUTES.size !== OPERATIONS.length) throw new CustodyError('INTERNAL', 'two operations share a method and path');

export function operation(id: string): Operation {
  const op = BY_ID.get(id);
  if (!op) throw new CustodyError('INTERNAL', `no operation ${id}`);
  return op;
}

/** Every registered operation, untyped: what the server and the tests iterate. */
export function allOperations(): readonly Operation[] {
  return [...BY_ID.values()];
}

/** Runs an operation in-process, as the local CLI and the server do. */
export async function runOperation<K extends OperationId>(ctx: Context, id: K, input: InputOf<K>, io?: OperationIO): Promise<OutputOf<K>> {
  return (await executeOperation(ctx, operation(id), input, io)) as OutputOf<K>;
}

export { defineOperation, executeOperation, type Operation, type OperationIO } from './registry.ts';
