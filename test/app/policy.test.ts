import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SqliteStore } from '../../src/adapters/store-sqlite.ts';
import { addArtifact } from '../../src/app/artifacts.ts';
import { approveException, listExceptions, requestException, revokeException } from '../../src/app/exceptions.ts';
import { createKey } from '../../src/app/keys.ts';
import { checkPolicies, explainArtifact, historyOf, publishPolicies, simulatePolicy, type PolicyDeps } from '../../src/app/policy.ts';
import type { Clock } from '../../src/core/ports.ts';
import type { EvidenceItem } from '../../src/core/evidence.ts';
import { loadSigner } from '../../src/app/keys.ts';
import { rejectsWithCode, ROOT, tempDir, tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';

before(async () => {
  await useFreshKek();
});

const ENVIRONMENTS = `environments:
  dev: {}
  staging: { from: [dev] }
  prod: { from: [staging] }
groups:
  release-managers: [carol@acme.example]
`;

async function workspace(extra = ''): Promise<Workspace> {
  const ws = await tempWorkspace('alice@acme.example');
  const path = join(ws.home, 'custody.yaml');
  const text = (await readFile(path, 'utf8'))
    .replace('environments: {}\n', ENVIRONMENTS + extra)
    .replace('roles:\n', 'roles:\n  bob@acme.example: [approver]\n  mallory@acme.example: [deployer]\n');
  await writeFile(path, text);
  await cp(join(ROOT, 'examples', 'policies'), join(ws.home, 'policies'), { recursive: true });
  return ws;
}

const fixed = (iso: string): Clock => ({ now: () => new Date(iso) });
const WEDNESDAY = '2026-03-11T10:00:00Z';
const SATURDAY = '2026-03-14T10:00:00Z';

async function published(ws: Workspace) {
  const ctx = await ws.open({ clock: fixed('2026-03-01T00:00:00Z') });
  await createKey(ctx, { name: 'policy-signer', purposes: ['policy'] });
  const res = await publishPolicies(ctx, { key: 'policy-signer' });
  return { ctx, res };
}

/** Evidence as the signatures work will deliver it, for the policy's three require gates. */
const evidenceDeps = (items: EvidenceItem[]): PolicyDeps => ({ evidenceFor: () => Promise.resolve(items), loadSigner });

describe('publishing policy sets', () => {
  it('signs the resolved set, records version 1 with its log entry, and does not republish an unchanged set', async () => {
    const ws = await workspace();
    const { ctx, res } = await published(ws);
    assert.equal(res.version, 1);
    assert.equal(res.created, true);
    assert.deepEqual(res.policies.sort(), ['dev', 'prod', 'staging']);
    assert.equal(res.loosened, 2);
    const entry = await ctx.store.read(async (tx) => (await tx.log.range(0, 100)).find((e) => e.type === 'policy.published'));
    assert.equal(entry?.payload['version'], 1);
    assert.equal(entry?.payload['setDigest'], res.setDigest);
    assert.equal(entry?.subject, res.setDigest);
    const again = await publishPolicies(ctx, { key: 'policy-signer' });
    assert.equal(again.created, false);
    assert.equal(again.version, 1);
    const prod = join(ws.home, 'policies', 'prod.yaml');
    await writeFile(prod, (await readFile(prod, 'utf8')).replace('maxDuration: 7d', 'maxDuration: 3d'));
    const v2 = await publishPolicies(ctx, { key: 'policy-signer' });
    assert.equal(v2.version, 2);
    assert.notEqual(v2.setDigest, res.setDigest);
  });

  it('requires the policy-admin role and a policy key, and changes nothing when refused', async () => {
    const ws = await workspace();
    const ctx = await ws.open();
    await createKey(ctx, { name: 'policy-signer', purposes: ['policy'] });
    await createKey(ctx, { name: 'ci', purposes: ['attest'] });
    const bob = await ws.open({ as: 'bob@acme.example' });
    await rejectsWithCode(() => publishPolicies(bob, { key: 'policy-signer' }), 'ROLE_REQUIRED');
    await rejectsWithCode(() => publishPolicies(ctx, { key: 'ci' }), 'KEY_NOT_USABLE');
    await writeFile(join(ws.home, 'policies', 'broken.yaml'), 'apiVersion: custody.dev/v1\nkind: Policy\nname: broken\ngates:\n  x:\n    rule: { expr: "nope(" }\n');
    await rejectsWithCode(() => publishPolicies(ctx, { key: 'policy-signer' }), 'POLICY_INVALID');
    assert.deepEqual(await ctx.store.read((tx) => tx.policies.list()), []);
    const refusals = await ctx.store.read(async (tx) => (await tx.log.range(0, 100)).filter((e) => e.type === 'request.refused').map((e) => e.payload['code']));
    assert.ok(refusals.includes('ROLE_REQUIRED'));
  });
});

describe('policy check against the workspace', () => {
  it('warns about a misspelt predicate type and a key the workspace lacks, and a from gate the graph cannot satisfy', async () => {
    const ws = await workspace();
    const ctx = await ws.open();
    await createKey(ctx, { name: 'build-ci', purposes: ['attest'] });
    await writeFile(
      join(ws.home, 'policies', 'dev.yaml'),
      'apiVersion: custody.dev/v1\nkind: Policy\nname: dev\ngates:\n  provenance:\n    require:\n      predicateType: https://slsa.dev/provenance/v01\n      signers: [{ key: build-ci }, { key: ghost }]\n  soak:\n    from: { soak: 1h }\n',
    );
    const r = await checkPolicies(join(ws.home, 'policies'), { maxBytes: 1 << 20, ctx });
    assert.equal(r.ok, true, 'warnings only');
    const text = r.warnings.map((w) => `${w.file}:${w.line}:${w.col}: ${w.message}`).join('\n');
    assert.match(text, /dev\.yaml:5:3: gates\.provenance: unknown predicate type https:\/\/slsa\.dev\/provenance\/v01; check the spelling/);
    assert.match(text, /no key named ghost exists in this workspace yet, so dev\.provenance cannot pass/);
    assert.doesNotMatch(text, /no key named build-ci/);
    assert.match(text, /dev\.yaml:9:3: gates\.soak: dev has no sources in custody\.yaml, so this gate can never pass there/);
    assert.equal((await checkPolicies(join(ws.home, 'policies'), { maxBytes: 1 << 20, ctx, strict: true })).ok, false);
  });
});

describe('the policy in force', () => {
  it('refuses to decide without a published policy, and with an unsigned folder', async () => {
    const ws = await workspace();
    const ctx = await ws.open();
    await addArtifact(ctx, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2' });
    await rejectsWithCode(() => explainArtifact(ctx, 'pkg:npm/acme-app@1.4.2', 'prod'), 'POLICY_UNSIGNED');
    await rejectsWithCode(() => explainArtifact(ctx, 'pkg:npm/acme-app@1.4.2', 'prod', { policy: join(ws.home, 'policies') }), 'POLICY_UNSIGNED');
  });

  it('refuses a published set whose stored bundle was tampered with, or replayed as a newer version', async () => {
    const ws = await workspace();
    const { ctx } = await published(ws);
    await addArtifact(ctx, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2' });
    await ctx.close();
    const db = await SqliteStore.open(join(ws.home, 'custody.db'));
    const row = db.raw.prepare('SELECT bundle FROM policy_versions WHERE version = 1').get() as { bundle: string };
    const bundle = JSON.parse(row.bundle) as { dsseEnvelope: { payload: string } };
    const body = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('"count":1', '"count":0');
    bundle.dsseEnvelope.payload = Buffer.from(body).toString('base64');
    db.raw.prepare('UPDATE policy_versions SET bundle = ? WHERE version = 1').run(JSON.stringify(bundle));
    await db.close();
    const tampered = await ws.open();
    const e = await rejectsWithCode(() => explainArtifact(tampered, 'pkg:npm/acme-app@1.4.2', 'prod'), 'POLICY_SIGNATURE_INVALID');
    assert.match(e.message, /published policy v1 is refused: the signature does not verify/);
    await tampered.close();
    const db2 = await SqliteStore.open(join(ws.home, 'custody.db'));
    db2.raw.prepare('UPDATE policy_versions SET bundle = ? WHERE version = 1').run(row.bundle);
    db2.raw.prepare('INSERT INTO policy_versions SELECT 2, set_digest, bundle, keyid, published_at, published_by FROM policy_versions WHERE version = 1').run();
    await db2.close();
    const replayed = await ws.open();
    const r = await rejectsWithCode(() => explainArtifact(replayed, 'pkg:npm/acme-app@1.4.2', 'prod'), 'POLICY_SIGNATURE_INVALID');
    assert.match(r.message, /an old set replayed as new/);
  });

  it('refuses when custody.yaml binds an environment differently from the signed set', async () => {
    const ws = await workspace();
    const { ctx } = await published(ws);
    await addArtifact(ctx, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2' });
    const path = join(ws.home, 'custody.yaml');
    await writeFile(path, (await readFile(path, 'utf8')).replace('prod: { from: [staging] }', 'prod: { from: [staging], policy: dev }'));
    const edited = await ws.open();
    const e = await rejectsWithCode(() => explainArtifact(edited, 'pkg:npm/acme-app@1.4.2', 'prod'), 'POLICY_SIGNATURE_INVALID');
    assert.match(e.message, /binds prod to policy dev .* but the signed set v1 binds it to prod/);
  });

  it('uses the policy files directly when requireSignedPolicies is off, and says so in the decision', async () => {
    const ws = await workspace('requireSignedPolicies: false\n');
    const ctx = await ws.open({ clock: fixed(WEDNESDAY) });
    await addArtifact(ctx, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2' });
    const d = await explainArtifact(ctx, 'pkg:npm/acme-app@1.4.2', 'dev');
    assert.equal(d.policy.source, 'files');
    assert.equal(d.policy.version, null);
  });
});

describe('explain and simulate', () => {
  it('explains an artifact against the live workspace with every gate, changing nothing', async () => {
    const ws = await workspace();
    const { ctx: admin } = await published(ws);
    await addArtifact(admin, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2', labels: ['tier=standard'] });
    const ctx = await ws.open({ clock: fixed(WEDNESDAY) });
    const size = await ctx.store.read((tx) => tx.log.size());
    const keys = await ctx.store.read((tx) => tx.keys.list());
    const signer = { keyid: keys[0]?.keyid ?? '', keyName: 'build-ci', keyVersion: 1 };
    const item = (predicateType: string, predicate: Record<string, unknown>): EvidenceItem => ({
      digest: `sha256:${randomBytes(32).toString('hex')}`,
      predicateType,
      statement: { _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: 'a'.repeat(64) } }], predicateType, predicate },
      signatures: [{ signer, ok: true, reasons: [], signedAt: WEDNESDAY }],
      verified: true,
      reasons: [],
      storedAt: WEDNESDAY,
    });
    const evidence = [
      item('https://slsa.dev/provenance/v1', { buildDefinition: { externalParameters: { workflow: { repository: 'https://github.com/acme/app' } } }, runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' } } }),
      item('https://in-toto.io/attestation/test-result/v0.1', { result: 'PASSED' }),
    ];
    const d = await explainArtifact(ctx, 'pkg:npm/acme-app@1.4.2', 'prod', {}, evidenceDeps(evidence));
    assert.equal(d.policy.source, 'published');
    assert.equal(d.policy.version, 1);
    const outcome = Object.fromEntries(d.gates.map((g) => [g.name, g.outcome]));
    assert.deepEqual(outcome, {
      provenance: 'pass',
      tests: 'pass',
      vulnerabilities: 'fail',
      'promoted-from': 'fail',
      versioning: 'pass',
      approvals: 'pending',
      'change-freeze': 'pass',
      'no-prerelease': 'pass',
    });
    assert.equal(await ctx.store.read((tx) => tx.log.size()), size, 'nothing written');
  });

  it('shows which registered artifacts flip under a proposed policy, before it is published', async () => {
    const ws = await workspace();
    const { ctx: admin } = await published(ws);
    await addArtifact(admin, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2' });
    await addArtifact(admin, { digest: `sha256:${'b'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '2.0.0-rc.1' });
    const provenance: EvidenceItem[] = [
      {
        digest: `sha256:${'e'.repeat(64)}`,
        predicateType: 'https://slsa.dev/provenance/v1',
        statement: { _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'https://slsa.dev/provenance/v1', predicate: {} },
        signatures: [{ signer: { keyid: 'k', keyName: 'build-ci', keyVersion: 1 }, ok: true, reasons: [], signedAt: WEDNESDAY }],
        verified: true,
        reasons: [],
        storedAt: WEDNESDAY,
      },
    ];
    const proposal = await tempDir();
    await cp(join(ws.home, 'policies'), proposal, { recursive: true });
    await writeFile(join(proposal, 'dev.yaml'), (await readFile(join(proposal, 'dev.yaml'), 'utf8')) + '  no-prerelease:\n    rule: { expr: \'!artifact.version.contains("-")\' }\n');
    const ctx = await ws.open({ clock: fixed(WEDNESDAY) });
    const s = await simulatePolicy(ctx, 'dev', { policy: proposal }, evidenceDeps(provenance));
    assert.equal(s.scope, 'registered-artifacts');
    assert.match(s.note, /no promotion state exists yet/);
    assert.equal(s.evaluated, 2);
    assert.equal(s.current?.version, 1);
    assert.deepEqual(s.flips.map((f) => [f.artifact.version, f.before, f.after, f.gates.map((g) => `${g.name}:${g.before}→${g.after}`)]), [['2.0.0-rc.1', 'pass', 'fail', ['no-prerelease:absent→fail']]]);
    assert.equal(s.unchanged, 1);
  });
});

describe('exceptions are data', () => {
  it('goes requested → approved by someone else → applied → revoked, each step logged', async () => {
    const ws = await workspace();
    const { ctx: admin } = await published(ws);
    await addArtifact(admin, { digest: `sha256:${'a'.repeat(64)}`, name: 'pkg:npm/acme-app', version: '1.4.2', labels: ['tier=standard'] });
    const alice = await ws.open({ clock: fixed('2026-03-14T09:00:00Z') });
    const e = await requestException(alice, { environment: 'prod', gates: ['change-freeze'], artifact: 'pkg:npm/acme-app@1.4.2', expires: '24h', justification: 'incident 4711: payment outage fix' });
    assert.equal(e.status, 'requested');
    assert.equal(e.artifact, `sha256:${'a'.repeat(64)}`, 'pinned to the digest');
    await rejectsWithCode(() => approveException(alice, e.id), 'EXCEPTION_REFUSED');
    const mallory = await ws.open({ as: 'mallory@acme.example', clock: fixed('2026-03-14T09:30:00Z') });
    await rejectsWithCode(() => approveException(mallory, e.id), 'ROLE_REQUIRED');
    const bob = await ws.open({ as: 'bob@acme.example', clock: fixed('2026-03-14T09:30:00Z') });
    const approved = await approveException(bob, e.id);
    assert.equal(approved.status, 'active');
    assert.equal(approved.approvedBy, 'bob@acme.example');
    await rejectsWithCode(() => approveException(bob, e.id), 'EXCEPTION_REFUSED');

    const saturday = await ws.open({ clock: fixed(SATURDAY) });
    const d = await explainArtifact(saturday, 'pkg:npm/acme-app@1.4.2', 'prod');
    assert.equal(d.gates.find((g) => g.name === 'change-freeze')?.outcome, 'waived');
    assert.deepEqual(d.exceptions.map((x) => [x.id, x.applied]), [[e.id, true]]);

    await revokeException(bob, e.id, 'fix is out');
    const after = await explainArtifact(saturday, 'pkg:npm/acme-app@1.4.2', 'prod');
    assert.equal(after.gates.find((g) => g.name === 'change-freeze')?.outcome, 'fail');
    const types = await saturday.store.read(async (tx) => (await tx.log.bySubject(e.id)).map((x) => x.type));
    assert.deepEqual(types, ['exception.requested', 'request.refused', 'request.refused', 'exception.approved', 'request.refused', 'exception.revoked'], 'refusals audited too');
    assert.deepEqual(await listExceptions(saturday, { environment: 'prod' }), []);
    assert.deepEqual((await listExceptions(saturday, { all: true })).map((x) => x.status), ['revoked']);
  });

  it('refuses an exception without gates, justification, a future expiry, a known environment, or for everything', async () => {
    const ws = await workspace();
    const ctx = await ws.open();
    const ok = { environment: 'prod', gates: ['change-freeze'], artifact: 'pkg:npm/app@1.*', expires: '24h', justification: 'a good reason, ACME-1' };
    await rejectsWithCode(() => requestException(ctx, { ...ok, gates: [] }), 'EXCEPTION_INVALID');
    await rejectsWithCode(() => requestException(ctx, { ...ok, justification: 'because' }), 'EXCEPTION_INVALID');
    await rejectsWithCode(() => requestException(ctx, { ...ok, expires: '2020-01-01T00:00:00Z' }), 'EXCEPTION_INVALID');
    await rejectsWithCode(() => requestException(ctx, { ...ok, environment: 'qa' }), 'ENVIRONMENT_NOT_FOUND');
    await rejectsWithCode(() => requestException(ctx, { ...ok, artifact: '*' }), 'EXCEPTION_INVALID');
    await rejectsWithCode(() => requestException(ctx, { ...ok, artifact: 'pkg:npm/missing@1.0.0' }), 'ARTIFACT_NOT_FOUND');
    assert.equal((await requestException(ctx, ok)).artifact, 'pkg:npm/app@1.*');
  });
});

describe('historyOf', () => {
  it('orders events by time as the log has them: a promotion\'s end after its start, equal times in creation order', () => {
    const t = (h: number) => `2026-03-10T${String(h).padStart(2, '0')}:00:00.000Z`;
    assert.deepEqual(
      historyOf([
        { environment: 'dev', version: '1.0.0', state: 'replaced', finishedAt: t(1), updatedAt: t(5) },
        { environment: 'staging', version: '1.0.0', state: 'rolled-back', finishedAt: t(2), updatedAt: t(3) },
        // Promoted again into dev in the very transaction that replaced the first one.
        { environment: 'dev', version: '1.0.0', state: 'promoted', finishedAt: t(5), updatedAt: t(5) },
      ]).map((h) => `${h.environment} ${h.event} ${h.time.slice(11, 13)}`),
      ['dev promoted 01', 'staging promoted 02', 'staging rolled-back 03', 'dev replaced 05', 'dev promoted 05'],
    );
    assert.deepEqual(historyOf([]), []);
  });
});
