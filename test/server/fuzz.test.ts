/**
 * Property-based fuzz of every registered route's input: whatever arrives, the
 * answer is never a 5xx, and a 4xx changes no state (the audit entry a refusal
 * leaves aside). Iterates the registry, so new operations are fuzzed too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { allOperations } from '../../src/app/operations/index.ts';
import { ROLES } from '../../src/core/identity.ts';
import { api, stateOf } from './fixture.ts';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 60);

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '../../etc/passwd', 'sha256:', `sha256:${'0'.repeat(64)}`, 'pkg:npm/x@1.0.0', '%00', '\u0000', '{{7*7}}', "' OR 1=1 --", '__proto__', 'constructor', 'x'.repeat(5000)),
);
const hostileValue = fc.oneof(hostileString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(hostileString, { maxLength: 5 }), fc.jsonValue({ maxDepth: 3 }));

describe('fuzzing every route', async () => {
  const t = await api();
  const admin = await t.token([...ROLES], { identity: 'fuzzer@example.com' });

  async function check(label: string, send: () => Promise<Response>): Promise<void> {
    const before = await stateOf(t.ctx);
    const res = await send();
    const text = await res.text();
    assert.ok(res.status < 500, `${label}: ${res.status} ${text}`);
    if (res.status >= 400) {
      assert.equal(await stateOf(t.ctx), before, `${label}: a ${res.status} changed state (${text})`);
      const body = JSON.parse(text) as { error: { code: string } };
      assert.match(body.error.code, /^[A-Z_]+$/);
    }
  }

  for (const op of allOperations()) {
    const fields = Object.keys(op.input.shape);
    const example = op.example;

    it(`${op.id}: one field of the example replaced by anything`, async () => {
      const field = fields.length > 0 ? fc.constantFrom(...fields) : fc.constant('extra');
      await fc.assert(
        fc.asyncProperty(field, hostileValue, async (name, value) => {
          await check(`${op.id} ${name}=${JSON.stringify(value)?.slice(0, 80)}`, () => t.call(op, { ...example, [name]: value }, admin));
        }),
        { numRuns: RUNS },
      );
    });

    it(`${op.id}: arbitrary objects as input`, async () => {
      const keys = fc.oneof(fc.constantFrom(...fields, 'actor', 'createdBy', '__proto__'), fc.string({ maxLength: 10 }));
      await fc.assert(
        fc.asyncProperty(fc.dictionary(keys, hostileValue, { maxKeys: 6 }), async (input) => {
          await check(`${op.id} ${JSON.stringify(input).slice(0, 120)}`, () => t.call(op, input, admin));
        }),
        { numRuns: RUNS },
      );
    });

    it(`${op.id}: raw bytes as the body and raw text as the query`, async () => {
      const path = op.path.replace(/\{[^}]+\}/g, 'x');
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 60 }), fc.constantFrom('application/json', 'application/octet-stream', 'text/plain'), async (body, query, type) => {
          const init = op.method === 'get' ? {} : { body, headers: { 'content-type': type } };
          await check(`${op.id} raw ${type}`, () => t.request(op.method.toUpperCase(), `${path}?${encodeURI(query)}`, { token: admin, ...init }));
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('reached both the use cases and the validators', (tc) => {
    const seen = new Map<number, number>();
    for (const l of t.logs) if (l['msg'] === 'request') seen.set(l['status'] as number, (seen.get(l['status'] as number) ?? 0) + 1);
    assert.ok((seen.get(200) ?? 0) > 0 && (seen.get(400) ?? 0) > 0, JSON.stringify([...seen]));
    tc.diagnostic(`statuses seen: ${JSON.stringify(Object.fromEntries(seen))}`);
  });
});
