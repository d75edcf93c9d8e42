/**
 * The authorization matrix: every registered operation × every role, plus no
 * token, a malformed token, an expired token, a revoked token and a wrong
 * environment scope. It iterates the registry, so a new operation is covered the
 * moment it is registered (its `example` must succeed: see fixture.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { allOperations } from '../../src/app/operations/index.ts';
import { ALL_ENVIRONMENTS, defineOperation, type Operation } from '../../src/app/operations/registry.ts';
import { ROLES, type Role } from '../../src/core/identity.ts';
import { api, ONCE_PER_WORKSPACE, stateOf, USE_CASE_ROLES, type Api } from './fixture.ts';

// A test-only environment-scoped operation with no state behind it: it keeps the
// scope columns of the matrix honest whatever the registered operations do.
const scoped = defineOperation({
  id: 'test.deploy',
  method: 'post',
  path: '/v1/test/environments/{env}/deploy',
  summary: 'test only: an environment-scoped operation',
  role: 'deployer',
  envScope: (input) => input.env,
  input: z.strictObject({ env: z.string(), note: z.string().optional() }),
  output: z.object({ env: z.string(), actor: z.string() }),
  example: { env: 'staging', note: 'x' },
  run: (ctx, input) => Promise.resolve({ env: input.env, actor: ctx.actor.identity }),
}) as unknown as Operation;

const OPS = [...allOperations(), scoped];

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: string } };
  return body.error?.code ?? `(no error body, status ${res.status})`;
}

describe('authorization matrix', async () => {
  const t = await api({ appDeps: { operations: OPS } });
  const byRole = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await t.token([r])] as const)));
  const noRoles = await t.token([]);
  const past = new Date(Date.now() - 60_000).toISOString();

  for (const op of OPS) {
    describe(`${op.id} (${op.method.toUpperCase()} ${op.path}, role: ${op.role ?? 'any'})`, async () => {
      // The roles the example succeeds for: the route's, unless its use case narrows an open route further.
      const narrowed = USE_CASE_ROLES[op.id];
      const allowedRoles: readonly Role[] = narrowed ?? (op.role === null ? ROLES : [op.role]);
      const needed: Role[] = narrowed ? [narrowed[0]!] : op.role === null ? [] : [op.role];
      /** A success call; an example that can succeed only once per workspace gets a fresh one each time. */
      const succeed = async (bearer: (target: Api) => Promise<string>): Promise<Response> => {
        const target = ONCE_PER_WORKSPACE.has(op.id) ? await api({ appDeps: { operations: OPS } }) : t;
        return target.call(op, op.example, await bearer(target));
      };

      for (const role of ROLES) {
        const allowed = allowedRoles.includes(role);
        it(`${role}: ${allowed ? '2xx' : '403'}`, async () => {
          if (allowed) {
            const res = await succeed((target) => (target === t ? Promise.resolve(byRole[role]!) : target.token([role])));
            assert.equal(res.status, 200, `${op.id} as ${role}: ${await res.text()}`);
          } else {
            const before = await stateOf(t.ctx);
            const res = await t.call(op, op.example, byRole[role]);
            assert.equal(res.status, 403);
            assert.equal(await errorCode(res), 'ROLE_REQUIRED');
            assert.equal(await stateOf(t.ctx), before, 'a refusal changes nothing');
          }
        });
      }

      const open = op.role === null && narrowed === undefined;
      it(`no roles: ${open ? '2xx' : '403'}`, async () => {
        const res = open ? await succeed((target) => (target === t ? Promise.resolve(noRoles) : target.token([]))) : await t.call(op, op.example, noRoles);
        assert.equal(res.status, open ? 200 : 403);
      });

      for (const [label, make, code] of [
        ['no token', () => Promise.resolve(undefined), 'AUTH_REQUIRED'],
        ['a malformed token', () => Promise.resolve('cst_nothex_x'), 'AUTH_INVALID'],
        ['an unknown token', async () => (await t.token(needed)).replace(/_[^_]+$/, `_${'A'.repeat(43)}`), 'AUTH_INVALID'],
        ['an expired token', () => t.token(needed, { expiresAt: past }), 'AUTH_INVALID'],
        ['a revoked token', () => t.token(needed, { revoked: true }), 'AUTH_INVALID'],
      ] as const) {
        it(`${label}: 401 ${code}`, async () => {
          const bearer = await make();
          const before = await stateOf(t.ctx);
          const res = await t.call(op, op.example, bearer);
          assert.equal(res.status, 401);
          assert.equal(await errorCode(res), code);
          assert.equal(res.headers.get('www-authenticate'), 'Bearer');
          assert.equal(await stateOf(t.ctx), before);
        });
      }

      // The scope may depend on stored state (an exception's environment): ask the seeded workspace.
      const envs = await op.envScope?.(op.input.parse(op.example), t.ctx);
      const wanted = envs === undefined ? [] : typeof envs === 'string' ? [envs] : [...envs];
      it(`a token scoped to another environment: ${wanted.length === 0 ? '2xx (the operation acts on no environment)' : '403'}`, async () => {
        if (wanted.length === 0) {
          const res = await succeed((target) => target.token(needed, { environments: ['elsewhere'] }));
          assert.equal(res.status, 200, await res.text());
          return;
        }
        const other = await t.token(needed, { environments: ['elsewhere'] });
        const before = await stateOf(t.ctx);
        const res = await t.call(op, op.example, other);
        assert.equal(res.status, 403);
        assert.equal(await errorCode(res), 'FORBIDDEN');
        assert.equal(await stateOf(t.ctx), before);
      });

      if (wanted.length > 0 && !wanted.includes(ALL_ENVIRONMENTS)) {
        it('a token scoped to its environments: 2xx', async () => {
          const res = await succeed((target) => target.token(needed, { environments: wanted }));
          assert.equal(res.status, 200, await res.text());
        });
      }
    });
  }

  it('leaves an audit entry for every 403, naming the authenticated caller', async () => {
    const size = await t.ctx.store.read((tx) => tx.log.size());
    const entries = await t.ctx.store.read((tx) => tx.log.range(0, size));
    const refused = entries.filter((e) => e.type === 'request.refused');
    assert.ok(refused.length > 0);
    assert.ok(refused.some((e) => e.actor === 'auditor@example.com' && e.payload['code'] === 'ROLE_REQUIRED'));
    assert.ok(refused.some((e) => e.payload['code'] === 'FORBIDDEN' && e.payload['action'] === 'test.deploy'));
  });
});

describe('the authenticated identity is the only actor', () => {
  it('refuses a body that names another actor, and records the token identity as the creator', async () => {
    const t = await api();
    const builder = await t.token(['builder'], { identity: 'ci:release' });
    const smuggle = await t.request('POST', '/v1/artifacts', {
      token: builder,
      json: { digest: `sha256:${'1'.repeat(64)}`, name: 'app', version: '1.0.0', createdBy: 'alice@example.com' },
    });
    assert.equal(smuggle.status, 400);
    assert.match(await smuggle.text(), /createdBy/);
    const ok = await t.request('POST', '/v1/artifacts', { token: builder, json: { digest: `sha256:${'1'.repeat(64)}`, name: 'app', version: '1.0.0' } });
    assert.equal(ok.status, 200);
    const shown = (await (await t.request('GET', '/v1/artifacts/app@1.0.0', { token: builder })).json()) as { artifact: { createdBy: string }; history: { actor: string }[] };
    assert.equal(shown.artifact.createdBy, 'ci:release');
    assert.deepEqual(shown.history.map((h) => h.actor), ['ci:release']);
  });

  it('lets a key-admin grant only roles and environments it holds itself', async () => {
    const t = await api();
    const admin = await t.token(['key-admin'], { identity: 'keys@example.com' });
    const escalate = await t.request('POST', '/v1/tokens', { token: admin, json: { identity: 'me@example.com', roles: ['approver'] } });
    assert.equal(escalate.status, 403);
    assert.equal(await errorCode(escalate), 'FORBIDDEN');
    const scopedAdmin = await t.token(['key-admin', 'deployer'], { environments: ['dev'] });
    const wider = await t.request('POST', '/v1/tokens', { token: scopedAdmin, json: { identity: 'me@example.com', roles: ['deployer'], environments: ['prod'] } });
    assert.equal(wider.status, 403);
    const unscoped = await t.request('POST', '/v1/tokens', { token: scopedAdmin, json: { identity: 'me@example.com', roles: ['deployer'] } });
    assert.equal(unscoped.status, 403);
    const within = await t.request('POST', '/v1/tokens', { token: scopedAdmin, json: { identity: 'me@example.com', roles: ['deployer'], environments: ['dev'] } });
    assert.equal(within.status, 200);
  });

  it('stops accepting a token the moment it is revoked through the API', async () => {
    const t = await api({ server: 'tokenCacheSeconds: 30' });
    const admin = await t.token(['key-admin']);
    const created = (await (await t.request('POST', '/v1/tokens', { token: admin, json: { identity: 'ci:x', roles: [] } })).json()) as { id: string; token: string };
    assert.equal((await t.request('GET', '/v1/whoami', { token: created.token })).status, 200);
    assert.equal((await t.request('POST', `/v1/tokens/${created.id}/revoke`, { token: admin })).status, 200);
    const after = await t.request('GET', '/v1/whoami', { token: created.token });
    assert.equal(after.status, 401);
    assert.match(await after.text(), /revoked/);
  });
});
