/**
 * What the operations behind the remote CLI refuse over the network that a local
 * user may do, and what they never do with what a client sends: open a path,
 * load a library it names, or let a body grow the log's own checkpoints.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { packTar } from '../../src/adapters/evidence-tar.ts';
import { operation } from '../../src/app/operations/index.ts';
import { EXAMPLE_ATTESTATION, EXAMPLE_POLICY_YAML } from '../../src/app/operations/examples.ts';
import { rejectsWithCode } from '../helpers.ts';
import { api, stateOf } from './fixture.ts';

async function body(res: Response): Promise<{ error?: { code: string; message: string }; [k: string]: unknown }> {
  return (await res.json()) as { error?: { code: string; message: string } };
}

describe('operations behind the remote CLI', () => {
  it('loads only the PKCS#11 modules server.pkcs11Modules lists, and audits the refusal', async () => {
    const t = await api({ server: 'rateLimit: { perSecond: 100000, burst: 100000 }\ntokenCacheSeconds: 0\npkcs11Modules: [/opt/hsm/listed.so]' });
    const admin = await t.token(['key-admin'], { identity: 'keys@example.com' });
    const before = await stateOf(t.ctx);
    const refused = await t.call(operation('key.create'), { name: 'hsm', backend: 'pkcs11', module: '/tmp/evil.so', slot: '0', pinEnv: 'HSM_PIN' }, admin);
    assert.equal(refused.status, 403);
    const e = await body(refused);
    assert.equal(e.error?.code, 'FORBIDDEN');
    assert.match(e.error?.message ?? '', /does not load the PKCS#11 module \/tmp\/evil\.so/);
    assert.equal(await stateOf(t.ctx), before);
    const last = await t.ctx.store.read(async (tx) => tx.log.byIndex((await tx.log.size()) - 1));
    assert.deepEqual([last?.type, last?.actor, last?.payload['action']], ['request.refused', 'keys@example.com', 'key.create']);
    // A listed module gets past the gate to the backend (here: no PIN in the server's environment).
    delete process.env['HSM_PIN_PARITY'];
    const listed = await t.call(operation('key.create'), { name: 'hsm', backend: 'pkcs11', module: '/opt/hsm/listed.so', slot: '0', pinEnv: 'HSM_PIN_PARITY' }, admin);
    assert.equal((await body(listed)).error?.code, 'HSM_ERROR');
  });

  it('treats every path a client sends as a name in messages, never as a file to open', async () => {
    const t = await api();
    const admin = await t.token(['builder', 'policy-admin', 'key-admin'], { identity: 'admin@example.com' });
    // The evidence is the text; "source" only names it.
    const imported = await t.call(operation('evidence.import'), { evidence: EXAMPLE_ATTESTATION, source: '/etc/shadow' }, admin);
    assert.equal(imported.status, 200, await imported.clone().text());
    const notJson = await t.call(operation('evidence.import'), { evidence: 'not json\nat all', source: '/etc/shadow' }, admin);
    assert.match((await body(notJson)).error?.message ?? '', /^\/etc\/shadow line 1: /);
    // A folder's root is a label; its files are what was sent.
    const files = { root: '/nonexistent/policies', sources: [{ path: 'dev.yaml', text: EXAMPLE_POLICY_YAML }] };
    const shown = await t.call(operation('policy.show'), { environment: 'dev', files }, admin);
    assert.equal(shown.status, 200, await shown.clone().text());
    assert.equal((await body(shown))['file'], 'dev.yaml');
    for (const path of ['../dev.yaml', '/etc/dev.yaml', 'a/../../dev.yaml', '.hidden/dev.yaml', 'dev.txt', 'a\\b.yaml']) {
      const res = await t.call(operation('policy.show'), { environment: 'dev', files: { root: 'p', sources: [{ path, text: EXAMPLE_POLICY_YAML }] } }, admin);
      assert.equal((await body(res)).error?.code, 'INPUT_INVALID', path);
    }
    const twice = await t.call(operation('policy.show'), { environment: 'dev', files: { root: 'p', sources: [{ path: 'dev.yaml', text: EXAMPLE_POLICY_YAML }, { path: 'dev.yaml', text: EXAMPLE_POLICY_YAML }] } }, admin);
    assert.equal((await body(twice)).error?.code, 'INPUT_INVALID');
  });

  it('keeps cosignatures from growing a stored checkpoint past what readers accept', async () => {
    const t = await api();
    const auditor = await t.token(['auditor']);
    const latest = (await body(await t.call(operation('audit.checkpoint'), {}, auditor)))['note'] as string;
    // Well-formed cosignature lines (a name and a base64 signature): each request stays within the limits, together they would not.
    const lines = (from: number) => Array.from({ length: 40 }, (_, i) => `— witness.test/w${from + i} ${Buffer.alloc(72, from + i).toString('base64')}`).join('\n');
    const first = await t.call(operation('audit.cosign'), { checkpoint: `${latest}${lines(0)}\n` }, auditor);
    assert.deepEqual(await body(first), { attached: true });
    const grown = (await body(await t.call(operation('audit.checkpoint'), {}, auditor)))['note'];
    const second = await t.call(operation('audit.cosign'), { checkpoint: `${latest}${lines(40)}\n` }, auditor);
    assert.equal((await body(second)).error?.code, 'INPUT_TOO_LARGE');
    assert.equal((await body(await t.call(operation('audit.checkpoint'), {}, auditor)))['note'], grown, 'the stored checkpoint is unchanged');
  });

  it('finds no environment named after an Object property (found by the fuzz test)', async () => {
    const t = await api();
    const reader = await t.token([]);
    for (const environment of ['valueOf', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      for (const [id, input] of [
        ['policy.explain', { artifact: 'pkg:npm/example@1.0.0', environment }],
        ['policy.show', { environment }],
        ['policy.simulate', { environment }],
      ] as const) {
        const res = await t.call(operation(id), input, reader);
        assert.equal((await body(res)).error?.code, 'ENVIRONMENT_NOT_FOUND', `${id} ${environment}`);
      }
    }
  });

  it('packs an export in memory only up to its limit', async () => {
    const members = [{ name: 'a.txt', data: new Uint8Array(4096) }];
    assert.ok((await packTar(members, 1 << 20)).length > 4096);
    await rejectsWithCode(() => packTar(members, 2048), 'INPUT_TOO_LARGE');
  });
});
