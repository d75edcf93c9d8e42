import { parseToken } from '../../src/core/token.ts';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { allOperations } from '../../src/app/operations/index.ts';
import { defineOperation, type Operation } from '../../src/app/operations/registry.ts';
import { CustodyError } from '../../src/core/errors.ts';
import { openApiDocument } from '../../src/server/app.ts';
import { redactUrl } from '../../src/server/log.ts';
import { api, stateOf } from './fixture.ts';

interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as ErrorBody;
  assert.equal(body.error.code, code, text);
  assert.doesNotMatch(text, /\n\s+at |node:internal|\.ts:\d+/, 'no stack trace in an error body');
  return body;
}

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('request bodies', () => {
  it('refuses a JSON body over 64 KiB, announced or chunked, with 413 and no state change', async () => {
    const t = await api();
    const token = await t.token(['builder']);
    const before = await stateOf(t.ctx);
    const big = JSON.stringify({ digest: DIGEST, name: 'app', version: '1.0.0', source: 'x'.repeat(70 * 1024) });
    await expectError(await t.request('POST', '/v1/artifacts', { token, body: big, headers: { 'content-type': 'application/json' } }), 413, 'INPUT_TOO_LARGE');
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(8 * 1024).fill(32));
        c.close();
      },
    });
    const res = await t.app.request('/v1/artifacts', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: chunked, duplex: 'half' });
    await expectError(res, 413, 'INPUT_TOO_LARGE');
    assert.equal(await stateOf(t.ctx), before);
  });

  it('refuses an upload over limits.artifactBytes, announced or streamed, and keeps no byte of it', async () => {
    const t = await api({ config: 'limits: { artifactBytes: 1024 }' });
    const token = await t.token(['builder']);
    const before = await stateOf(t.ctx);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' };
    const declared = await t.app.request('/v1/artifacts/upload?name=big&version=1.0.0', { method: 'POST', headers: { ...headers, 'content-length': '4096' }, body: new Uint8Array(4096) });
    await expectError(declared, 413, 'INPUT_TOO_LARGE');
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(1024).fill(i));
        c.close();
      },
    });
    const res = await t.app.request('/v1/artifacts/upload?name=big&version=1.0.0', { method: 'POST', headers, body: streamed, duplex: 'half' });
    await expectError(res, 413, 'INPUT_TOO_LARGE');
    assert.equal(await stateOf(t.ctx), before);
    assert.deepEqual(await readdir(join(t.ws.home, 'blobs', '.tmp')), []);
    const fits = await t.app.request('/v1/artifacts/upload?name=small&version=1.0.0', { method: 'POST', headers, body: new Uint8Array(1024) });
    assert.equal(fits.status, 200);
  });

  it('refuses malformed, non-object, deeply nested and non-UTF-8 JSON with 400 INPUT_INVALID', async () => {
    const t = await api();
    const token = await t.token(['builder']);
    const before = await stateOf(t.ctx);
    const cases: [string | Uint8Array, RegExp][] = [
      ['{"digest": ', /not valid JSON/],
      ['[1,2,3]', /must be a JSON object/],
      ['"a string"', /must be a JSON object/],
      ['null', /must be a JSON object/],
      [`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, /nests deeper/],
      [new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), /not valid UTF-8/],
      ['{"__proto__": {"admin": true}, "digest": "x", "name": "a", "version": "1.0.0"}', /__proto__/],
      ['{"digest": 1, "name": [], "version": {}}', /digest/],
    ];
    for (const [body, message] of cases) {
      const res = await t.request('POST', '/v1/artifacts', { token, body, headers: { 'content-type': 'application/json' } });
      const err = await expectError(res, 400, 'INPUT_INVALID');
      assert.match(err.error.message, message);
    }
    const wrongType = await t.request('POST', '/v1/artifacts', { token, body: 'digest=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await expectError(wrongType, 400, 'INPUT_INVALID');
    assert.equal(await stateOf(t.ctx), before);
  });

  it('maps query strings to typed inputs and refuses unknown or malformed parameters', async () => {
    const t = await api();
    const token = await t.token([]);
    const ok = await t.request('GET', '/v1/artifacts?limit=1&labels=a%3Db&labels=c%3Dd', { token });
    assert.equal(ok.status, 200, await ok.clone().text());
    await expectError(await t.request('GET', '/v1/artifacts?limit=abc', { token }), 400, 'INPUT_INVALID');
    await expectError(await t.request('GET', '/v1/artifacts?limit=0', { token }), 400, 'INPUT_INVALID');
    await expectError(await t.request('GET', '/v1/artifacts?bogus=1', { token }), 400, 'INPUT_INVALID');
    const show = await t.request('GET', `/v1/artifacts/${encodeURIComponent('pkg:npm/example@1.0.0')}`, { token });
    assert.equal(show.status, 200);
    await expectError(await t.request('GET', `/v1/artifacts/${encodeURIComponent('pkg:npm/nothing@1.0.0')}`, { token }), 404, 'ARTIFACT_NOT_FOUND');
  });
});

describe('errors, headers and the log', () => {
  const boom = defineOperation({
    id: 'test.boom',
    method: 'get',
    path: '/v1/test/boom',
    summary: 'throws',
    role: null,
    input: z.strictObject({ kind: z.enum(['throw', 'shape', 'slow']) }),
    output: z.object({ ok: z.boolean() }),
    example: { kind: 'throw' },
    run: async (_ctx, input) => {
      if (input.kind === 'throw') throw new CustodyError('STORE_ERROR', 'SELECT * FROM secret_table failed at /var/lib/custody/custody.db');
      if (input.kind === 'slow') await new Promise((r) => setTimeout(r, 500));
      return input.kind === 'slow' ? { ok: true } : ({ ok: 'not a boolean' } as never);
    },
  }) as unknown as Operation;

  it('hides internal errors behind a request id, and logs them', async () => {
    const t = await api({ appDeps: { operations: [...allOperations(), boom] }, server: 'rateLimit: { perSecond: 100000, burst: 100000 }\ntokenCacheSeconds: 0\ntimeouts: { handlerSeconds: 0.2 }' });
    const token = await t.token([]);
    const res = await t.request('GET', '/v1/test/boom?kind=throw', { token });
    const body = await expectError(res, 500, 'STORE_ERROR');
    assert.doesNotMatch(body.error.message, /secret_table|\/var\/lib/);
    assert.match(body.error.message, new RegExp(res.headers.get('x-request-id') ?? 'missing'));
    assert.ok(t.logs.some((l) => l['msg'] === 'internal error' && String(l['error']).includes('secret_table')));
    await expectError(await t.request('GET', '/v1/test/boom?kind=shape', { token }), 500, 'INTERNAL');
    const slow = await t.request('GET', '/v1/test/boom?kind=slow', { token });
    await expectError(slow, 503, 'REQUEST_TIMEOUT');
    assert.equal(slow.headers.get('retry-after'), '1');
  });

  it('answers unknown routes with 404 ROUTE_NOT_FOUND', async () => {
    const t = await api();
    await expectError(await t.request('GET', '/v1/nothing'), 404, 'ROUTE_NOT_FOUND');
    await expectError(await t.request('DELETE', '/v1/artifacts'), 404, 'ROUTE_NOT_FOUND');
  });

  it('sets security headers, and no CORS headers unless origins are configured', async () => {
    const t = await api();
    const res = await t.request('GET', '/healthz', { headers: { origin: 'https://evil.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.ok(res.headers.get('strict-transport-security'));
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const pre = await t.request('OPTIONS', '/v1/artifacts', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    assert.equal(pre.headers.get('access-control-allow-origin'), null);

    const c = await api({ server: 'cors: { origins: ["https://dash.example.com"] }' });
    const ok = await c.request('GET', '/healthz', { headers: { origin: 'https://dash.example.com' } });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://dash.example.com');
    const other = await c.request('GET', '/healthz', { headers: { origin: 'https://evil.example' } });
    assert.notEqual(other.headers.get('access-control-allow-origin'), 'https://evil.example');
  });

  it('logs every request as one JSON object with identity, route, status and duration, and no secret', async () => {
    const t = await api();
    const token = await t.token(['builder'], { identity: 'ci:logged' });
    await t.request('GET', `/v1/artifacts/${encodeURIComponent('pkg:npm/example@1.0.0')}?token=hunter2&password=pw`, { token });
    await t.request('POST', '/v1/tokens', { token, json: { identity: 'x@example.com', roles: [] } });
    const created = await t.request('POST', '/v1/artifacts', { token, json: { digest: DIGEST, name: 'app', version: '1.0.0' } });
    assert.equal(created.status, 200);
    const lines = t.logs.filter((l) => l['msg'] === 'request');
    assert.equal(lines.length, 3);
    const [show, forbidden, add] = lines;
    assert.equal(show?.['route'], '/v1/artifacts/{ref}');
    assert.equal(show?.['status'], 400);
    assert.equal(forbidden?.['status'], 403);
    assert.equal(forbidden?.['code'], 'ROLE_REQUIRED');
    assert.equal(add?.['identity'], 'ci:logged');
    assert.equal(add?.['op'], 'artifact.add');
    assert.equal(typeof add?.['ms'], 'number');
    const all = JSON.stringify(t.logs);
    // The secret is everything after `cst_<16 hex id>_`; it may itself contain '_'.
    const secret = parseToken(token)?.secret;
    assert.ok(secret !== undefined && secret.length === 43);
    assert.ok(!all.includes(secret), 'the token secret is never logged');
    assert.ok(!all.includes('hunter2') && !all.includes('=pw'), 'secret query parameters are redacted');
  });

  it('redacts credentials in URLs and bearer-looking strings', () => {
    assert.equal(redactUrl('/v1/x?api_key=abc&name=app'), '/v1/x?api_key=[REDACTED]&name=app');
    assert.equal(redactUrl(`/v1/x/cst_0123456789abcdef_${'A'.repeat(43)}`), '/v1/x/[REDACTED]');
    assert.doesNotMatch(redactUrl('/v1/x?u=https%3A%2F%2Fbob%3Apw%40host%2F'), /bob|pw/);
    assert.doesNotMatch(redactUrl('/v1/x?next=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln'), /eyJhbGci/);
  });
});

describe('back-pressure', () => {
  it('answers 429 RATE_LIMITED with Retry-After once an identity exceeds its burst, leaving others alone', async () => {
    const t = await api({ server: 'rateLimit: { perSecond: 1, burst: 3 }\ntokenCacheSeconds: 0' });
    const noisy = await t.token([], { identity: 'noisy@example.com' });
    const quiet = await t.token([], { identity: 'quiet@example.com' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await t.request('GET', '/v1/whoami', { token: noisy })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const limited = await t.request('GET', '/v1/whoami', { token: noisy });
    await expectError(limited, 429, 'RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await t.request('GET', '/v1/whoami', { token: quiet })).status, 200);
  });

  it('answers 503 STORE_BUSY with Retry-After when the store queue is full, never SQLITE_BUSY', async () => {
    const t = await api({ server: 'rateLimit: { perSecond: 100000, burst: 100000 }\ntokenCacheSeconds: 30\nstoreQueue: 2' });
    const token = await t.token(['builder']);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => t.request('POST', '/v1/artifacts', { token, json: { digest: `sha256:${i.toString(16).padStart(64, '0')}`, name: 'busy', version: `1.0.${i}` } })),
    );
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.includes(503), `some requests were turned away: ${statuses.join(',')}`);
    assert.ok(statuses.includes(200));
    assert.ok(statuses.every((s) => s === 200 || s === 503), statuses.join(','));
    for (const r of results.filter((x) => x.status === 503)) {
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(((await r.json()) as ErrorBody).error.code, 'STORE_BUSY');
    }
    const stored = await t.ctx.store.read((tx) => tx.artifacts.list({ name: 'busy' }));
    assert.equal(stored.length, statuses.filter((s) => s === 200).length, 'exactly the acknowledged requests are stored');
  });
});

describe('draining', () => {
  it('answers 503 SHUTTING_DOWN with Connection: close while draining, and stays live', async () => {
    const t = await api();
    const token = await t.token([]);
    t.state.draining = true;
    const res = await t.request('GET', '/v1/whoami', { token });
    await expectError(res, 503, 'SHUTTING_DOWN');
    assert.equal(res.headers.get('connection'), 'close');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal((await t.request('GET', '/healthz')).status, 200);
    await expectError(await t.request('GET', '/readyz'), 503, 'SHUTTING_DOWN');
  });
});

describe('health and the API description', () => {
  it('serves /healthz, /readyz and /v1/openapi.json without a token', async () => {
    const t = await api();
    assert.deepEqual(await (await t.request('GET', '/healthz')).json(), { status: 'ok' });
    assert.deepEqual(await (await t.request('GET', '/readyz')).json(), { status: 'ready' });
    const doc = (await (await t.request('GET', '/v1/openapi.json')).json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string; 'x-custody-role': string }>> };
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocument())));
    const ids = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    assert.deepEqual(ids.sort(), allOperations().map((o) => o.id).sort());
    assert.equal(doc.paths['/v1/tokens']?.['post']?.['x-custody-role'], 'key-admin');
  });

  it('reports not ready when the store is closed', async () => {
    const t = await api();
    await t.ctx.store.close();
    await expectError(await t.request('GET', '/readyz'), 503, 'NOT_READY');
    const files = await readdir(join(t.ws.home));
    assert.ok(files.includes('custody.db'));
  });
});

describe('the CLI finds each operation in its group alone', () => {
  it('loads every registered operation by id, the same definition the server routes, and refuses an unknown id', async () => {
    const { loadOperation } = await import('../../src/app/operations/by-group.ts');
    for (const op of allOperations()) assert.equal(await loadOperation(op.id), op, op.id);
    for (const id of ['artifact.nope', 'nope.add', 'constructor.x', 'artifact', 'whoami.x', ''])  {
      await assert.rejects(loadOperation(id), (e) => e instanceof CustodyError && e.code === 'INTERNAL', id);
    }
  });
});
