import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { cli, ROOT, tempDir, tempWorkspace, useFreshKek } from '../helpers.ts';

const EXAMPLES = join(ROOT, 'examples', 'policies');

before(async () => {
  await useFreshKek();
});

async function workspace() {
  const ws = await tempWorkspace('alice@acme.example');
  const path = join(ws.home, 'custody.yaml');
  await writeFile(path, (await readFile(path, 'utf8')).replace('environments: {}\n', 'environments:\n  dev: {}\n  staging: { from: [dev] }\n  prod: { from: [staging] }\n'));
  await cp(EXAMPLES, join(ws.home, 'policies'), { recursive: true });
  return ws;
}

describe('custody policy check', () => {
  it('passes the examples (exit 0) and lists the explicit loosenings as warnings', async () => {
    const dir = await tempDir();
    const r = await cli(['policy', 'check', EXAMPLES, '--home', join(dir, 'none')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /warning: staging\.yaml:13:3: gates\.tests: loosened: where rewritten/);
    assert.match(r.stdout, /ok: 7 files, 3 policies \(dev, prod, staging\), 38 test cases; 0 problems, 2 warnings/);
    const strict = await cli(['policy', 'check', EXAMPLES, '--strict', '--home', join(dir, 'none'), '--json']);
    assert.equal(strict.code, 2);
    assert.equal(strict.json<{ ok: boolean }>().ok, false);
  });

  it('exits 2 with file:line:col for schema errors, unknown fields, CEL errors and unmarked loosenings', async () => {
    const dir = await tempDir();
    await cp(EXAMPLES, dir, { recursive: true });
    await writeFile(join(dir, 'staging.yaml'), (await readFile(join(dir, 'staging.yaml'), 'utf8')).replace(/    loosen:\n.*\n/, ''));
    await writeFile(join(dir, 'extra.yaml'), 'apiVersion: custody.dev/v1\nkind: Policy\nname: extra\ngates:\n  a:\n    rule: { expr: "artifact.name ==" }\n  b:\n    approvals: { count: 1, quorum: 2 }\n');
    const r = await cli(['policy', 'check', dir, '--home', join(dir, 'none')]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /staging\.yaml:13:3: gates\.tests: loosens inherited gate "tests": where rewritten/);
    assert.match(r.stdout, /extra\.yaml:8:\d+: gates\.b\.approvals\.quorum: unknown field "quorum"/);
    const fixed = (await readFile(join(dir, 'extra.yaml'), 'utf8')).replace(', quorum: 2', '');
    await writeFile(join(dir, 'extra.yaml'), fixed);
    const cel = await cli(['policy', 'check', dir, '--home', join(dir, 'none'), '--json']);
    assert.equal(cel.code, 2);
    const problems = cel.json<{ problems: { file: string; line: number; message: string }[] }>().problems;
    assert.ok(problems.some((p) => p.file === 'extra.yaml' && p.line === 6 && /CEL: syntax error/.test(p.message)), JSON.stringify(problems));
  });

  it('cross-checks against the workspace: unknown keys are warnings, a missing policy is a problem', async () => {
    const ws = await workspace();
    const path = join(ws.home, 'custody.yaml');
    await writeFile(path, (await readFile(path, 'utf8')).replace('prod: { from: [staging] }', 'prod: { from: [staging] }\n  qa: { from: [dev] }'));
    const r = await cli(['policy', 'check', '--home', ws.home]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /custody\.yaml:1:1: environments\.qa: uses policy "qa", which the policy set does not define/);
    assert.match(r.stdout, /no key named build-ci exists in this workspace yet/);
  });
});

describe('custody policy test', () => {
  it('runs the example fixtures: all pass, exit 0', async () => {
    const dir = await tempDir();
    const r = await cli(['policy', 'test', EXAMPLES, '--home', join(dir, 'none')]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /38 passed, 0 failed/);
  });

  it('reports a failing case with what differed, exit 1', async () => {
    const dir = await tempDir();
    await cp(EXAMPLES, dir, { recursive: true });
    const f = join(dir, 'tests', 'dev.test.yaml');
    await writeFile(f, (await readFile(f, 'utf8')).replace('outcome: fail\n      gates: { provenance: fail }', 'outcome: pass\n      gates: { provenance: pass }'));
    const r = await cli(['policy', 'test', dir, '--home', join(dir, 'none'), '--json']);
    assert.equal(r.code, 1);
    const j = r.json<{ passed: number; failed: number; files: { cases: { name: string; ok: boolean; failures: string[] }[] }[] }>();
    assert.equal(j.failed, 1);
    assert.equal(j.passed, 37);
    const failing = j.files.flatMap((x) => x.cases).find((c) => !c.ok);
    assert.match(failing?.failures.join('\n') ?? '', /gate provenance: expected pass, got fail/);
  });
});

describe('custody policy publish, show, explain, verify and exceptions', () => {
  it('publishes, shows the resolved policy, explains with exit 1/3, and refuses a tampered bundle', async () => {
    const ws = await workspace();
    const h = ['--home', ws.home];
    assert.equal((await cli(['key', 'create', 'policy-signer', '--purpose', 'policy', ...h])).code, 0);
    const unsigned = await cli(['policy', 'explain', 'pkg:npm/acme-app@1.4.2', '--env', 'prod', ...h]);
    assert.equal(unsigned.code, 2, 'no such artifact yet');
    assert.equal((await cli(['artifact', 'add', '--digest', `sha256:${'a'.repeat(64)}`, '--name', 'pkg:npm/acme-app', '--version', '1.4.2', '--label', 'tier=standard', ...h])).code, 0);
    const before = await cli(['policy', 'explain', 'pkg:npm/acme-app@1.4.2', '--env', 'prod', ...h]);
    assert.equal(before.code, 1);
    assert.match(before.stderr, /POLICY_UNSIGNED/);

    const out = join(ws.dir, 'set.json');
    const pub = await cli(['policy', 'publish', '--key', 'policy-signer', '--out', out, ...h, '--json']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.json<{ version: number }>().version, 1);
    const versions = await cli(['policy', 'versions', ...h]);
    assert.match(versions.stdout, /^1 +sha256:/m);

    const show = await cli(['policy', 'show', '--env', 'prod', '--resolved', ...h]);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /^# environment prod: policy prod, published v1, digest sha256:/);
    assert.match(show.stdout, /name: second-signature/);
    const asWritten = await cli(['policy', 'show', '--env', 'prod', ...h]);
    assert.match(asWritten.stdout, /extends:\n {2}template: standard-service/);

    const explain = await cli(['policy', 'explain', 'pkg:npm/acme-app@1.4.2', '--env', 'prod', ...h]);
    assert.equal(explain.code, 1, 'no evidence yet: denied');
    assert.match(explain.stdout, /FAIL +provenance \(require\)/);
    assert.match(explain.stdout, /PENDING approvals/);
    const dev = await cli(['policy', 'explain', 'pkg:npm/acme-app@1.4.2', '--env', 'dev', '--json', ...h]);
    assert.equal(dev.json<{ outcome: string; policy: { version: number } }>().policy.version, 1);

    assert.equal((await cli(['policy', 'verify', out, ...h])).code, 0);
    const bundle = JSON.parse(await readFile(out, 'utf8')) as { dsseEnvelope: { payload: string } };
    bundle.dsseEnvelope.payload = Buffer.from(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('"count":2', '"count":1')).toString('base64');
    await writeFile(out, JSON.stringify(bundle));
    const tampered = await cli(['policy', 'verify', out, ...h]);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /POLICY_SIGNATURE_INVALID/);
    const explainTampered = await cli(['policy', 'explain', 'pkg:npm/acme-app@1.4.2', '--env', 'prod', '--policy', out, ...h]);
    assert.equal(explainTampered.code, 1);
    assert.match(explainTampered.stderr, /POLICY_SIGNATURE_INVALID/);
  });

  it('runs the exception lifecycle from the command line', async () => {
    const ws = await workspace();
    const path = join(ws.home, 'custody.yaml');
    await writeFile(path, (await readFile(path, 'utf8')).replace('roles:\n', 'roles:\n  bob@acme.example: [approver]\n'));
    const h = ['--home', ws.home];
    const req = await cli(['exception', 'request', '--env', 'prod', '--gate', 'change-freeze', '--artifact', 'pkg:npm/acme-app@1.*', '--expires', '2d', '--justification', 'incident 4711 hotfix window', ...h, '--json']);
    assert.equal(req.code, 0, req.stderr);
    const id = req.json<{ id: string }>().id;
    const self = await cli(['exception', 'approve', id, ...h]);
    assert.equal(self.code, 2);
    assert.match(self.stderr, /EXCEPTION_REFUSED/);
    assert.equal((await cli(['exception', 'approve', id, '--as', 'bob@acme.example', ...h])).code, 0);
    const list = await cli(['exception', 'list', ...h]);
    assert.match(list.stdout, new RegExp(`${id} +prod +active +change-freeze +pkg:npm/acme-app@1\\.\\*`));
    assert.equal((await cli(['exception', 'revoke', id, '--reason', 'done', ...h])).code, 0);
    assert.match((await cli(['exception', 'list', '--all', ...h])).stdout, /revoked/);
  });
});
