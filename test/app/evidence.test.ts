import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { addArtifact } from '../../src/app/artifacts.ts';
import { evidenceFor, importEvidence, storedEvidenceFor, verifyArtifact } from '../../src/app/evidence.ts';
import { createKey, importPublicKey, revokeKeyVersion, trustedKeys } from '../../src/app/keys.ts';
import { attestArtifact, signArtifact } from '../../src/app/sign.ts';
import type { Context } from '../../src/app/workspace.ts';
import type { Artifact } from '../../src/core/artifact.ts';
import { PREDICATE_TYPES } from '../../src/core/intoto.ts';
import type { Clock } from '../../src/core/ports.ts';
import { verifyEvidence } from '../../src/core/verify/index.ts';
import { rejectsWithCode, tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';
import { dsseFor, statementAbout } from '../fixtures/evidence.ts';
import { testKey } from '../fixtures/keys.ts';
import { TestSigstore } from '../fixtures/pki.ts';

const DAY = 86_400_000;
const TEST_RESULT = { result: 'PASSED', configuration: [{ uri: 'https://github.com/acme/app/blob/main/.github/workflows/ci.yml' }], passedTests: ['unit', 'e2e'] };

before(async () => {
  await useFreshKek();
});

class TestClock implements Clock {
  t = Date.parse('2026-03-01T00:00:00.000Z');
  now(): Date {
    return new Date(this.t);
  }
}

interface Setup {
  ws: Workspace;
  ctx: Context;
  clock: TestClock;
  artifact: Artifact;
  predicate: string;
}

async function setup(): Promise<Setup> {
  const ws = await tempWorkspace();
  const clock = new TestClock();
  const ctx = await ws.open({ clock });
  await createKey(ctx, { name: 'release' });
  await createKey(ctx, { name: 'ci', algorithm: 'ecdsa-p256-sha256' });
  const file = join(ws.dir, 'app.tgz');
  await writeFile(file, 'the build\n');
  const { artifact } = await addArtifact(ctx, { file, name: 'pkg:npm/app', version: '1.0.0' });
  const predicate = join(ws.dir, 'tests.json');
  await writeFile(predicate, JSON.stringify(TEST_RESULT));
  return { ws, ctx, clock, artifact, predicate };
}

async function log(ctx: Context): Promise<{ type: string; subject?: string; payload: Record<string, unknown> }[]> {
  return ctx.store.read((tx) => tx.log.range(0, 10_000));
}

async function state(ctx: Context): Promise<unknown> {
  return ctx.store.read(async (tx) => ({ evidence: await tx.evidence.forSubjects([`sha256:${'0'.repeat(64)}`]), log: (await tx.log.range(0, 10_000)).filter((e) => e.type !== 'request.refused').length }));
}

describe('signing and attesting', () => {
  it('signs an artifact: a bundle v0.3 stored with its evidence.stored entry, its path printed, idempotent', async () => {
    const { ctx, artifact, ws } = await setup();
    const out = join(ws.dir, 'app.sigstore.json');
    const res = await signArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'release', out });
    assert.equal(res.created, true);
    assert.equal(res.evidence.kind, 'signature');
    assert.equal(res.evidence.signedAt, '2026-03-01T00:00:00.000Z', 'signing time is the recording time');
    assert.deepEqual(res.evidence.subjects, [artifact.digest]);
    const onDisk = JSON.parse(await readFile(res.path, 'utf8')) as { mediaType: string; verificationMaterial: { publicKey: { hint: string } } };
    assert.equal(onDisk.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.equal(onDisk.verificationMaterial.publicKey.hint, res.evidence.signers[0]);
    assert.equal(await readFile(out, 'utf8'), await readFile(res.path, 'utf8'));
    const entries = (await log(ctx)).filter((e) => e.type === 'evidence.stored');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.subject, artifact.digest);
    assert.equal(entries[0]!.payload['evidence'], res.evidence.digest);
    // Ed25519 is deterministic: the same signature again is the same evidence, stored once.
    const again = await signArtifact(ctx, { artifact: artifact.digest, key: 'release' });
    assert.equal(again.created, false);
    assert.equal((await log(ctx)).filter((e) => e.type === 'evidence.stored').length, 1);
  });

  it('attests with a shorthand type; the statement names the artifact and every digest Custody knows', async () => {
    const { ctx, artifact, predicate } = await setup();
    const res = await attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', type: 'test-result', predicate });
    assert.equal(res.evidence.predicateType, PREDICATE_TYPES['test-result']);
    assert.deepEqual(res.evidence.subjects.sort(), [`sha256:${artifact.digests.sha256}`, `sha512:${artifact.digests.sha512}`].sort());
    const items = await ctx.store.read(async (tx) => evidenceFor(tx, await trustedKeys(tx), artifact, new Date('2026-03-02T00:00:00Z')));
    assert.equal(items.length, 1);
    assert.equal(items[0]!.verified, true);
    assert.deepEqual(items[0]!.statement?.subject, [{ name: 'pkg:npm/app@1.0.0', digest: { sha256: artifact.digests.sha256, sha512: artifact.digests.sha512 } }]);
    assert.deepEqual(items[0]!.statement?.predicate, TEST_RESULT);
    assert.equal(items[0]!.signatures[0]?.signer.keyName, 'ci');
  });

  it('refuses a predicate that does not fit its type, naming the field, and changes nothing', async () => {
    const { ctx, ws } = await setup();
    const before = await state(ctx);
    const bad = join(ws.dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ result: 'MAYBE', configuration: [] }));
    const e = await rejectsWithCode(() => attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', type: 'test-result', predicate: bad }), 'PREDICATE_INVALID');
    assert.equal(e.details?.['field'], 'result');
    assert.equal(e.exitCode, 2);
    await writeFile(bad, '{not json');
    await rejectsWithCode(() => attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', type: 'provenance', predicate: bad }), 'PREDICATE_INVALID');
    await rejectsWithCode(() => attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', predicate: bad }), 'USAGE');
    await rejectsWithCode(() => attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', predicateType: 'not a uri', predicate: bad }), 'USAGE');
    await rejectsWithCode(() => signArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'nope' }), 'KEY_NOT_FOUND');
    assert.deepEqual(await state(ctx), before);
  });

  it('needs the signer role, and the refusal is audited', async () => {
    const { ws } = await setup();
    const outsider = await ws.open({ as: 'mallory@example.com' });
    await rejectsWithCode(() => signArtifact(outsider, { artifact: 'pkg:npm/app@1.0.0', key: 'release' }), 'ROLE_REQUIRED');
    assert.equal((await log(outsider)).at(-1)?.type, 'request.refused');
  });
});

describe('verifying stored evidence at its signing time', () => {
  it('keeps verifying what was recorded before a compromise, and stops for what was recorded after', async () => {
    const { ctx, clock, predicate } = await setup();
    await attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci', type: 'test-result', predicate });
    clock.t += 2 * DAY;
    await signArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'ci' });
    let v = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.deepEqual(v.items.map((i) => i.verified), [true, true]);
    assert.equal(v.ok, true);
    // Compromised one day after the attestation was recorded: the attestation stands, the later signature falls.
    clock.t += DAY;
    await revokeKeyVersion(ctx, 'ci@1', { reason: 'compromised', compromisedSince: '2026-03-02T00:00:00Z' });
    v = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.deepEqual(v.items.map((i) => [i.kind, i.verified, i.reasons[0]?.code]), [['attestation', true, undefined], ['signature', false, 'KEY_COMPROMISED']]);
    assert.equal(v.ok, false);
    const only = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', predicateType: PREDICATE_TYPES['test-result'] });
    assert.equal(only.items.length, 1);
    assert.equal(only.ok, true);
  });

  it('judges an expiring key at the recording time, not at the time of verification', async () => {
    const { ctx, clock, predicate } = await setup();
    await createKey(ctx, { name: 'short', expires: '1d' });
    await attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'short', type: 'test-result', predicate });
    clock.t += 10 * DAY;
    const v = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.equal(v.ok, true);
    await rejectsWithCode(() => attestArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0', key: 'short', type: 'test-result', predicate }), 'KEY_NOT_USABLE');
  });

  it('reports an artifact with no evidence as not verified', async () => {
    const { ctx } = await setup();
    const v = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.deepEqual(v.items, []);
    assert.equal(v.ok, false);
  });
});

describe('importing evidence made elsewhere', () => {
  async function withCiKey(s: Setup) {
    const ci = testKey({ algorithm: 'ecdsa-p256-sha256' });
    const pem = join(s.ws.dir, 'ci.pub');
    await writeFile(pem, ci.record.publicKeyPem);
    await importPublicKey(s.ctx, { name: 'github-ci', pemFile: pem });
    return ci;
  }

  it('imports a DSSE envelope signed by a registered external key, and JSON Lines of them', async () => {
    const s = await setup();
    const ci = await withCiKey(s);
    const a = s.artifact;
    const env = await dsseFor(statementAbout({ sha256: a.digests.sha256! }, PREDICATE_TYPES['test-result']), ci.signer);
    const file = join(s.ws.dir, 'att.dsse.json');
    await writeFile(file, JSON.stringify(env, null, 2));
    const res = await importEvidence(s.ctx, { file });
    assert.equal(res.stored.length, 1);
    assert.equal(res.stored[0]!.evidence.format, 'dsse');
    assert.equal(res.stored[0]!.evidence.source, 'imported');
    assert.match(res.stored[0]!.path, /\.intoto\.json$/);
    const jsonl = join(s.ws.dir, 'provenance.intoto.jsonl');
    const lines = await Promise.all([PREDICATE_TYPES.provenance, PREDICATE_TYPES.vulns].map(async (t) => JSON.stringify(await dsseFor(statementAbout({ sha512: a.digests.sha512! }, t), ci.signer))));
    await writeFile(jsonl, `${lines.join('\n')}\n`);
    const many = await importEvidence(s.ctx, { file: jsonl });
    assert.deepEqual(many.stored.map((x) => x.created), [true, true]);
    const v = await verifyArtifact(s.ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.equal(v.items.length, 3);
    assert.equal(v.ok, true);
  });

  it('refuses, storing nothing, evidence that does not verify, is malformed, or is about an unknown artifact', async () => {
    const s = await setup();
    await withCiKey(s);
    const stranger = testKey();
    const before = await state(s.ctx);
    const file = join(s.ws.dir, 'x.json');
    await writeFile(file, JSON.stringify(await dsseFor(statementAbout({ sha256: s.artifact.digests.sha256! }), stranger.signer)));
    const denied = await rejectsWithCode(() => importEvidence(s.ctx, { file }), 'VERIFY_FAILED');
    assert.equal(denied.exitCode, 1);
    assert.deepEqual((denied.details?.['reasons'] as { code: string }[]).map((r) => r.code), ['KEY_UNKNOWN']);
    assert.equal((await log(s.ctx)).at(-1)?.type, 'request.refused');
    await writeFile(file, '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}');
    assert.equal((await rejectsWithCode(() => importEvidence(s.ctx, { file }), 'EVIDENCE_INVALID')).exitCode, 2);
    await writeFile(file, 'not json\nat all\n');
    await rejectsWithCode(() => importEvidence(s.ctx, { file }), 'EVIDENCE_INVALID');
    await writeFile(file, JSON.stringify(await dsseFor(statementAbout({ sha256: 'c'.repeat(64) }), stranger.signer)));
    await rejectsWithCode(() => importEvidence(s.ctx, { file }), 'ARTIFACT_NOT_FOUND');
    await writeFile(file, Buffer.alloc(s.ctx.config.limits.evidenceBytes + 1, 0x20));
    await rejectsWithCode(() => importEvidence(s.ctx, { file }), 'INPUT_TOO_LARGE');
    assert.deepEqual(await state(s.ctx), before);
  });

  it('imports a keyless bundle against the workspace trusted root with the identity given, and re-verifies it on use', async () => {
    const s = await setup();
    const sigstore = new TestSigstore();
    await writeFile(join(s.ws.home, 'trusted_root.json'), JSON.stringify(sigstore.trustedRoot));
    const config = await readFile(join(s.ws.home, 'custody.yaml'), 'utf8');
    await writeFile(join(s.ws.home, 'custody.yaml'), `${config}\ntrustedRoot: trusted_root.json\n`);
    const ctx = await s.ws.open({ clock: s.clock });
    const identity = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
    const issuer = 'https://token.actions.githubusercontent.com';
    const signedAt = new Date('2026-02-28T12:00:00Z');
    const file = join(s.ws.dir, 'gh.sigstore.json');
    await writeFile(file, JSON.stringify(sigstore.dsseBundle(statementAbout({ sha256: s.artifact.digests.sha256! }, PREDICATE_TYPES.provenance), { san: identity, issuer, signedAt })));
    await rejectsWithCode(() => importEvidence(ctx, { file }), 'USAGE');
    const wrong = await rejectsWithCode(() => importEvidence(ctx, { file, certificateIdentity: `${identity}x`, certificateOidcIssuer: issuer }), 'VERIFY_FAILED');
    assert.equal((wrong.details?.['reasons'] as { code: string }[])[0]?.code, 'CERTIFICATE_IDENTITY_MISMATCH');
    const res = await importEvidence(ctx, { file, certificateIdentity: identity, certificateOidcIssuer: issuer });
    assert.equal(res.stored[0]!.evidence.signedAt, signedAt.toISOString(), 'keyless: the transparency log time');
    assert.deepEqual(res.stored[0]!.evidence.expect, { identity, issuer });
    const v = await verifyArtifact(ctx, { artifact: 'pkg:npm/app@1.0.0' });
    assert.equal(v.ok, true);
    assert.equal(v.items[0]!.signatures[0]?.signer.certificateIdentity, identity);
    // evidenceFor without the workspace root falls back to the public-good root, which does not trust the test CA
    const pg = await ctx.store.read(async (tx) => evidenceFor(tx, await trustedKeys(tx), s.artifact, s.clock.now()));
    assert.equal(pg[0]!.verified, false);
  });
});

describe('batch verification', () => {
  it('spreads many bundles over the worker pool, with the same outcomes as the main thread', async () => {
    const s = await setup();
    const key = testKey();
    const pem = join(s.ws.dir, 'bulk.pub');
    await writeFile(pem, key.record.publicKeyPem);
    await importPublicKey(s.ctx, { name: 'bulk', pemFile: pem });
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      const st = statementAbout({ sha256: s.artifact.digests.sha256! }, `https://example.com/check/${i}`, 200);
      lines.push(JSON.stringify(await dsseFor(st, key.signer)));
    }
    const file = join(s.ws.dir, 'bulk.intoto.jsonl');
    await writeFile(file, `${lines.join('\n')}\n`);
    await importEvidence(s.ctx, { file });
    const fine = await s.ctx.store.read(async (tx) => storedEvidenceFor(tx, await trustedKeys(tx), s.artifact, s.clock.now()));
    assert.equal(fine.length, 300);
    assert.ok(fine.every((i) => i.verified));
    await revokeKeyVersion(s.ctx, 'bulk@1', { reason: 'compromised', compromisedSince: '2026-02-01T00:00:00Z' });
    const items = await s.ctx.store.read(async (tx) => storedEvidenceFor(tx, await trustedKeys(tx), s.artifact, s.clock.now()));
    assert.ok(items.every((i) => !i.verified && i.reasons[0]?.code === 'KEY_COMPROMISED'));
    assert.ok(items.every((i) => i.statement !== null), 'statements cross back from the workers');
    const direct = verifyEvidence({ input: lines[0]!, maxBytes: 1 << 20, artifact: { sha256: s.artifact.digests.sha256! }, keys: await s.ctx.store.read((tx) => trustedKeys(tx)), signedAt: s.clock.now() });
    assert.deepEqual(direct.reasons.map((r) => r.code), ['KEY_COMPROMISED']);
  });
});
