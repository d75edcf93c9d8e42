import { z } from 'zod';
import { ROLES } from '../../core/identity.ts';
import { createToken, listTokens, revokeToken } from '../tokens.ts';
import { ALL_ENVIRONMENTS, defineOperation } from './registry.ts';

export const TokenInfoSchema = z
  .object({
    id: z.string(),
    identity: z.string(),
    roles: z.array(z.enum(ROLES)),
    environments: z.array(z.string()).nullable(),
    description: z.string().nullable(),
    createdAt: z.string(),
    createdBy: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
    status: z.enum(['active', 'expired', 'revoked']),
  })
  .meta({ id: 'TokenInfo', description: 'An API token without its secret.' });

export const TOKEN_OPERATIONS = [
  defineOperation({
    id: 'token.create',
    method: 'post',
    path: '/v1/tokens',
    summary: 'Create an API token; the secret is in this response and nowhere else',
    description: 'Needs key-admin. A token carries only roles its creator holds, and only environments within the creator\'s scope.',
    role: 'key-admin',
    // A token reaches the environments it names, or all of them: a scoped creator can mint only within its scope.
    envScope: (input) => input.environments ?? ALL_ENVIRONMENTS,
    input: z.strictObject({
      identity: z.string().max(300),
      roles: z.array(z.enum(ROLES)).max(ROLES.length),
      environments: z.array(z.string().max(64)).max(64).optional(),
      expires: z.string().max(16).optional().describe('a duration such as 30d, or never (default 90d)'),
      description: z.string().max(1000).optional(),
    }),
    output: TokenInfoSchema.extend({ token: z.string().describe('the bearer secret: shown once') }),
    example: { identity: 'dashboard@acme.example', roles: [], expires: '30d', description: 'read-only dashboard' },
    run: async (ctx, input) => {
      const { token, info } = await createToken(ctx, input);
      return { ...info, token };
    },
  }),
  defineOperation({
    id: 'token.list',
    method: 'get',
    path: '/v1/tokens',
    summary: 'List API tokens (never their secrets)',
    role: 'key-admin',
    input: z.strictObject({}),
    output: z.object({ tokens: z.array(TokenInfoSchema) }),
    example: {},
    run: async (ctx) => ({ tokens: await listTokens(ctx) }),
  }),
  defineOperation({
    id: 'token.revoke',
    method: 'post',
    path: '/v1/tokens/{id}/revoke',
    summary: 'Revoke an API token; idempotent',
    role: 'key-admin',
    input: z.strictObject({ id: z.string().max(64) }),
    output: z.object({ revoked: z.boolean().describe('false when it was already revoked'), token: TokenInfoSchema }),
    example: { id: '0123456789abcdef' },
    run: async (ctx, input) => {
      const { revoked, info } = await revokeToken(ctx, input.id);
      return { revoked, token: info };
    },
  }),
  defineOperation({
    id: 'whoami',
    method: 'get',
    path: '/v1/whoami',
    summary: 'The authenticated identity, its roles and its environment scope',
    role: null,
    input: z.strictObject({}),
    output: z.object({ identity: z.string(), roles: z.array(z.enum(ROLES)), environments: z.array(z.string()).nullable() }),
    example: {},
    run: (ctx) => Promise.resolve({ identity: ctx.actor.identity, roles: [...ctx.actor.roles], environments: ctx.actor.environments ? [...ctx.actor.environments] : null }),
  }),
] as const;
