import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  createKey,
  exportPublicKey,
  importPublicKey,
  listKeys,
  loadSigner,
  retireKeyVersion,
  revokeKeyVersion,
  rotateKey,
  showKey,
  trustedKeys,
} from '../../src/app/keys.ts';
import type { Context } from '../../src/app/workspace.ts';
import { keyidOf, parsePublicKeyPem, publicKeyPem, verifyBytes } from '../../src/core/crypto.ts';
import { keyValidAt, type KeyRecord } from '../../src/core/key.ts';
import type { Clock } from '../../src/core/ports.ts';
import { rejectsWithCode, tempDir, tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';

const DAY = 86_400_000;

before(async () => {
  await useFreshKek();
});

class TestClock implements Clock {
  t = Date.parse('2026-03-01T00:00:00.000Z');
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

async function workspace(): Promise<{ ws: Workspace; ctx: Context; clock: TestClock }> {
  const ws = await tempWorkspace();
  const clock = new TestClock();
  return { ws, ctx: await ws.open({ clock }), clock };
}

async function logTypes(ctx: Context): Promise<string[]> {
  return ctx.store.read(async (tx) => (await tx.log.range(0, 1000)).map((e) => e.type));
}

async function keyFiles(ws: Workspace): Promise<string[]> {
  return (await readdir(join(ws.home, 'keys'))).filter((n) => n.endsWith('.key')).sort();
}

/** The state of a workspace that a refused request must leave untouched (audit entries aside). */
async function snapshot(ws: Workspace, ctx: Context): Promise<unknown> {
  const keys = await ctx.store.read((tx) => tx.keys.list());
  const log = (await logTypes(ctx)).filter((t) => t !== 'request.refused');
  return { keys, log, files: await keyFiles(ws) };
}

async function pemFile(dir: string, key: KeyObject | string, suffix = ''): Promise<string> {
  const path = join(dir, `${randomBytes(4).toString('hex')}.pem`);
  await writeFile(path, (typeof key === 'string' ? key : publicKeyPem(key)) + suffix);
  return path;
}

describe('loadSigner', () => {
  it('signs with a created key of every algorithm, verifying against the recorded public key', async () => {
    const { ctx } = await workspace();
    for (const alg of ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as const) {
      const created = await createKey(ctx, { name: `k-${alg}`, algorithm: alg, purposes: ['attest'] });
      const { key, signer } = await loadSigner(ctx, `k-${alg}`, 'attest');
      assert.equal(key.keyid, created.keyid);
      assert.equal(signer.keyid, created.keyid);
      assert.equal(signer.algorithm, alg);
      const data = Buffer.from(`payload for ${alg}`);
      assert.ok(verifyBytes(key.algorithm, parsePublicKeyPem(key.publicKeyPem), data, await signer.sign(data)));
      const trusted = await ctx.store.read((tx) => trustedKeys(tx));
      assert.equal(trusted.byKeyid.get(created.keyid)?.name, `k-${alg}`);
    }
    assert.equal((await listKeys(ctx)).length, 3);
  });

  it('refuses an unknown name, an unknown version, a purpose the key lacks and an expired key', async () => {
    const { ctx, clock } = await workspace();
    await rejectsWithCode(() => loadSigner(ctx, 'nope', 'attest'), 'KEY_NOT_FOUND');
    await createKey(ctx, { name: 'ci', purposes: ['attest'], expires: '1d' });
    await rejectsWithCode(() => loadSigner(ctx, 'ci@2', 'attest'), 'KEY_NOT_FOUND');
    const e = await rejectsWithCode(() => loadSigner(ctx, 'ci', 'policy'), 'KEY_NOT_USABLE');
    assert.equal(e.details?.['validity'], 'KEY_PURPOSE');
    clock.advance(DAY);
    const expired = await rejectsWithCode(() => loadSigner(ctx, 'ci', 'attest'), 'KEY_NOT_USABLE');
    assert.equal(expired.details?.['validity'], 'KEY_EXPIRED');
  });
});

describe('key create', () => {
  it('records the key, its owner and a key.created entry, defaulting owner and purposes', async () => {
    const { ctx } = await workspace();
    const k = await createKey(ctx, { name: 'release', expires: '90d' });
    assert.equal(k.version, 1);
    assert.equal(k.owner, 'tester@example.com');
    assert.deepEqual(k.purposes, ['sign-artifact', 'attest']);
    assert.equal(Date.parse(k.notAfter!) - Date.parse(k.notBefore), 90 * DAY);
    const entries = await ctx.store.read((tx) => tx.log.bySubject(k.keyid));
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.type, 'key.created');
    assert.equal(entries[0]?.actor, 'tester@example.com');
    assert.equal(entries[0]?.payload['keyid'], k.keyid);
    const shown = await showKey(ctx, 'release');
    assert.deepEqual(shown.privateKey, { backend: 'file', path: `keys/${k.keyid}.key` });
    assert.equal(shown.key.state, 'active');
  });

  it('refuses bad input and an existing name, leaving nothing half-created', async () => {
    const { ws, ctx } = await workspace();
    await createKey(ctx, { name: 'release' });
    const before = await snapshot(ws, ctx);
    await rejectsWithCode(() => createKey(ctx, { name: 'release' }), 'KEY_EXISTS');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', algorithm: 'dsa' }), 'KEY_ALGORITHM_UNSUPPORTED');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', purposes: ['deploy'] }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', expires: 'soon' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', expires: '0d' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'external' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'tpm' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', module: '/lib/x.so' }), 'USAGE');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'pkcs11' }), 'USAGE');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'pkcs11', module: 'rel.so', slot: '1', pinEnv: 'P' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'pkcs11', module: '/x.so', slot: '-1', pinEnv: 'P' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', backend: 'pkcs11', module: '/x.so', slot: '1', pinEnv: '1234' }), 'INPUT_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'Bad Name' }), 'NAME_INVALID');
    await rejectsWithCode(() => createKey(ctx, { name: 'x', owner: 'not an identity' }), 'IDENTITY_INVALID');
    const kek = process.env['CUSTODY_KEK_FILE'];
    delete process.env['CUSTODY_KEK_FILE'];
    try {
      const e = await rejectsWithCode(() => createKey(ctx, { name: 'x' }), 'KEK_MISSING');
      assert.equal(e.exitCode, 2);
    } finally {
      process.env['CUSTODY_KEK_FILE'] = kek;
    }
    assert.deepEqual(await snapshot(ws, ctx), before);
    assert.deepEqual(await readdir(join(ws.home, 'keys', '.tmp')), []);
    const refused = await ctx.store.read(async (tx) => (await tx.log.range(0, 100)).filter((e) => e.type === 'request.refused'));
    assert.deepEqual(refused.map((e) => e.payload['code']), ['KEY_EXISTS'], 'conflicts are audited, input errors are not');
  });
});

describe('key rotate', () => {
  it('makes version 2, retires version 1 now, and version 1 still verifies what it signed before', async () => {
    const { ctx, clock } = await workspace();
    const v1 = await createKey(ctx, { name: 'release', expires: '30d' });
    const data = Buffer.from('artifact digest');
    const signedAt = clock.now();
    const sig = await (await loadSigner(ctx, 'release', 'sign-artifact')).signer.sign(data);
    clock.advance(DAY);
    const { key: v2, retired } = await rotateKey(ctx, { name: 'release' });
    assert.equal(v2.version, 2);
    assert.equal(v2.algorithm, v1.algorithm);
    assert.deepEqual(v2.purposes, v1.purposes);
    assert.equal(Date.parse(v2.notAfter!) - Date.parse(v2.notBefore), 30 * DAY, 'validity length carries over');
    assert.equal(retired.length, 1);
    assert.equal(retired[0]?.retiredAt, clock.now().toISOString());
    assert.equal((await loadSigner(ctx, 'release', 'sign-artifact')).key.version, 2);
    const e = await rejectsWithCode(() => loadSigner(ctx, 'release@1', 'sign-artifact'), 'KEY_NOT_USABLE');
    assert.equal(e.details?.['validity'], 'KEY_RETIRED');
    const trusted = await ctx.store.read((tx) => trustedKeys(tx));
    const old = trusted.byKeyid.get(v1.keyid)!;
    assert.equal(old.status, 'retired');
    assert.ok(keyValidAt(old, 'sign-artifact', signedAt).ok, 'verify-only: valid at its signing time');
    assert.ok(verifyBytes(old.algorithm, parsePublicKeyPem(old.publicKeyPem), data, sig));
    assert.equal(keyValidAt(old, 'sign-artifact', clock.now()).code, 'KEY_RETIRED');
    assert.deepEqual(await logTypes(ctx), ['key.created', 'key.rotated', 'key.retired']);
    const rotated = await ctx.store.read((tx) => tx.log.bySubject(v2.keyid));
    assert.deepEqual(rotated[0]?.payload['from'], { version: 1, keyid: v1.keyid });
  });

  it('lets the replaced version sign until the overlap ends, and only then', async () => {
    const { ctx, clock } = await workspace();
    await createKey(ctx, { name: 'release' });
    await rotateKey(ctx, { name: 'release', overlap: '7d' });
    assert.equal((await loadSigner(ctx, 'release', 'attest')).key.version, 2, 'the newest signs by default');
    assert.equal((await loadSigner(ctx, 'release@1', 'attest')).key.version, 1, 'v1 may still sign in the overlap');
    assert.equal((await showKey(ctx, 'release@1')).key.state, 'overlap');
    clock.advance(7 * DAY - 1);
    await loadSigner(ctx, 'release@1', 'attest');
    clock.advance(1);
    await rejectsWithCode(() => loadSigner(ctx, 'release@1', 'attest'), 'KEY_NOT_USABLE');
  });

  it('shortens an earlier overlap when rotating again, and can change the algorithm', async () => {
    const { ctx, clock } = await workspace();
    await createKey(ctx, { name: 'release' });
    await rotateKey(ctx, { name: 'release', overlap: '7d' });
    clock.advance(DAY);
    const { key: v3, retired } = await rotateKey(ctx, { name: 'release', algorithm: 'ecdsa-p256-sha256' });
    assert.equal(v3.algorithm, 'ecdsa-p256-sha256');
    assert.deepEqual(retired.map((k) => k.version).sort(), [1, 2]);
    for (const k of retired) assert.equal(k.retiredAt, clock.now().toISOString());
    await rejectsWithCode(() => rotateKey(ctx, { name: 'nope' }), 'KEY_NOT_FOUND');
    await rejectsWithCode(() => rotateKey(ctx, { name: 'release', overlap: 'a week' }), 'INPUT_INVALID');
  });

  it('rotates after a revocation: the new version signs, the revoked one never does', async () => {
    const { ctx } = await workspace();
    await createKey(ctx, { name: 'release' });
    await revokeKeyVersion(ctx, 'release@1', { reason: 'compromised' });
    await rejectsWithCode(() => loadSigner(ctx, 'release', 'attest'), 'KEY_NOT_USABLE');
    const { retired } = await rotateKey(ctx, { name: 'release', overlap: '7d' });
    assert.deepEqual(retired, [], 'a revoked version is not retired over');
    assert.equal((await loadSigner(ctx, 'release', 'attest')).key.version, 2);
    const e = await rejectsWithCode(() => loadSigner(ctx, 'release@1', 'attest'), 'KEY_NOT_USABLE');
    assert.equal(e.details?.['validity'], 'KEY_REVOKED');
  });
});

describe('key retire and revoke', () => {
  it('retires one named version, once', async () => {
    const { ctx } = await workspace();
    const k = await createKey(ctx, { name: 'release' });
    await rejectsWithCode(() => retireKeyVersion(ctx, 'release'), 'USAGE');
    await rejectsWithCode(() => retireKeyVersion(ctx, 'release@9'), 'KEY_NOT_FOUND');
    const r = await retireKeyVersion(ctx, 'release@1');
    assert.equal(r.status, 'retired');
    await rejectsWithCode(() => loadSigner(ctx, 'release', 'attest'), 'KEY_NOT_USABLE');
    await rejectsWithCode(() => retireKeyVersion(ctx, 'release@1'), 'KEY_STATE_INVALID');
    const entries = await ctx.store.read((tx) => tx.log.bySubject(k.keyid));
    assert.deepEqual(entries.map((e) => e.type), ['key.created', 'key.retired']);
    const all = await logTypes(ctx);
    assert.equal(all.at(-1), 'request.refused');
  });

  it('revokes permanently: signatures from compromisedSince on fail, earlier ones hold, and the key never signs again', async () => {
    const { ctx, clock } = await workspace();
    await createKey(ctx, { name: 'release' });
    const early = clock.now();
    clock.advance(2 * DAY);
    const since = new Date(clock.t - DAY);
    await rejectsWithCode(() => revokeKeyVersion(ctx, 'release@1', { reason: 'compromised', compromisedSince: new Date(clock.t + 1000).toISOString() }), 'INPUT_INVALID');
    await rejectsWithCode(() => revokeKeyVersion(ctx, 'release@1', { reason: 'compromised', compromisedSince: 'yesterday' }), 'INPUT_INVALID');
    await rejectsWithCode(() => revokeKeyVersion(ctx, 'release@1', { reason: 'lost' }), 'INPUT_INVALID');
    await rejectsWithCode(() => revokeKeyVersion(ctx, 'release', { reason: 'compromised' }), 'USAGE');
    const r = await revokeKeyVersion(ctx, 'release@1', { reason: 'compromised', compromisedSince: since.toISOString() });
    assert.equal(r.status, 'revoked');
    assert.equal(r.compromisedSince, since.toISOString());
    assert.equal(r.revokedAt, clock.now().toISOString());
    assert.ok(keyValidAt(r, 'attest', early).ok);
    assert.ok(keyValidAt(r, 'attest', new Date(since.getTime() - 1)).ok);
    assert.equal(keyValidAt(r, 'attest', since).code, 'KEY_COMPROMISED');
    await rejectsWithCode(() => loadSigner(ctx, 'release@1', 'attest'), 'KEY_NOT_USABLE');
    await rejectsWithCode(() => retireKeyVersion(ctx, 'release@1'), 'KEY_STATE_INVALID');
    await rejectsWithCode(() => revokeKeyVersion(ctx, 'release@1', { reason: 'superseded' }), 'KEY_STATE_INVALID');
    clock.advance(DAY * 30);
    await rejectsWithCode(() => loadSigner(ctx, 'release@1', 'attest'), 'KEY_NOT_USABLE');
    const widened = await revokeKeyVersion(ctx, 'release@1', { reason: 'compromised', compromisedSince: early.toISOString() });
    assert.equal(widened.compromisedSince, early.toISOString());
    assert.equal(widened.revokedAt, r.revokedAt);
    const types = (await logTypes(ctx)).filter((t) => t !== 'request.refused');
    assert.deepEqual(types, ['key.created', 'key.revoked', 'key.revoked']);
  });

  it('defaults compromisedSince to now', async () => {
    const { ctx, clock } = await workspace();
    await createKey(ctx, { name: 'release' });
    const r = await revokeKeyVersion(ctx, 'release@1', { reason: 'superseded' });
    assert.equal(r.compromisedSince, clock.now().toISOString());
    assert.equal(r.revocationReason, 'superseded');
  });
});

describe('roles', () => {
  it('requires key-admin to create, rotate, retire or revoke promotion-receipt and policy keys, and audits the refusal', async () => {
    const { ws, ctx } = await workspace();
    await createKey(ctx, { name: 'receipts', purposes: ['promotion-receipt'] });
    await createKey(ctx, { name: 'policies', purposes: ['policy'] });
    const mallory = await ws.open({ as: 'mallory@example.com' });
    const before = await snapshot(ws, ctx);
    const dir = await tempDir();
    const pem = await pemFile(dir, generateKeyPairSync('ed25519').publicKey);
    const refused = [
      () => createKey(mallory, { name: 'sneaky', purposes: ['attest', 'policy'] }),
      () => rotateKey(mallory, { name: 'receipts' }),
      () => retireKeyVersion(mallory, 'policies@1'),
      () => revokeKeyVersion(mallory, 'receipts@1', { reason: 'compromised' }),
      () => importPublicKey(mallory, { name: 'imported', pemFile: pem, purposes: ['policy'] }),
    ];
    for (const f of refused) {
      const e = await rejectsWithCode(f, 'ROLE_REQUIRED');
      assert.equal(e.exitCode, 2);
    }
    assert.deepEqual(await snapshot(ws, ctx), before);
    const audit = await ctx.store.read(async (tx) => (await tx.log.range(0, 100)).filter((e) => e.type === 'request.refused'));
    assert.deepEqual(
      audit.map((e) => [e.actor, e.payload['action'], e.payload['code']]),
      [
        ['mallory@example.com', 'key.create', 'ROLE_REQUIRED'],
        ['mallory@example.com', 'key.rotate', 'ROLE_REQUIRED'],
        ['mallory@example.com', 'key.retire', 'ROLE_REQUIRED'],
        ['mallory@example.com', 'key.revoke', 'ROLE_REQUIRED'],
        ['mallory@example.com', 'key.import-public', 'ROLE_REQUIRED'],
      ],
    );
    // Everyday keys need no role; the owner is whoever acts.
    const own = await createKey(mallory, { name: 'mallory-ci', purposes: ['attest'] });
    assert.equal(own.owner, 'mallory@example.com');
    assert.equal(own.createdBy, 'mallory@example.com');
    const entry = await ctx.store.read((tx) => tx.log.bySubject(own.keyid));
    assert.equal(entry[0]?.actor, 'mallory@example.com');
  });
});

describe('external keys', () => {
  it('imports a public key that verifies but never signs, and exports it as PEM and JWK', async () => {
    const { ctx } = await workspace();
    const dir = await tempDir();
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyid = keyidOf(publicKey);
    const k = await importPublicKey(ctx, { name: 'ci-release', pemFile: await pemFile(dir, publicKey), purposes: ['attest'], owner: 'github:acme/app', keyid: keyid.toUpperCase() });
    assert.equal(k.backend, 'external');
    assert.equal(k.keyid, keyid);
    assert.equal(k.owner, 'github:acme/app');
    assert.equal(k.algorithm, 'ecdsa-p256-sha256');
    await rejectsWithCode(() => loadSigner(ctx, 'ci-release', 'attest'), 'KEY_NOT_USABLE');
    assert.ok((await ctx.store.read((tx) => trustedKeys(tx))).byKeyid.has(keyid));
    assert.equal((await showKey(ctx, 'ci-release')).privateKey.backend, 'external');
    const pem = await exportPublicKey(ctx, 'ci-release@1', 'pem');
    assert.equal(pem.pem, publicKeyPem(publicKey));
    const { jwk } = await exportPublicKey(ctx, 'ci-release', 'jwk');
    assert.equal(jwk?.['kid'], keyid);
    assert.equal(jwk?.['alg'], 'ES256');
    assert.equal(jwk?.['d'], undefined);
    const { createPublicKey } = await import('node:crypto');
    assert.equal(keyidOf(createPublicKey({ key: jwk, format: 'jwk' })), keyid);
    await rejectsWithCode(() => exportPublicKey(ctx, 'ci-release', 'der'), 'INPUT_INVALID');
    await rejectsWithCode(() => exportPublicKey(ctx, 'nope', 'pem'), 'KEY_NOT_FOUND');
  });

  it('rotates an external key only from a new public key', async () => {
    const { ctx } = await workspace();
    const dir = await tempDir();
    await importPublicKey(ctx, { name: 'ci', pemFile: await pemFile(dir, generateKeyPairSync('ed25519').publicKey) });
    await rejectsWithCode(() => rotateKey(ctx, { name: 'ci' }), 'USAGE');
    const next = generateKeyPairSync('ed25519').publicKey;
    const { key, retired } = await rotateKey(ctx, { name: 'ci', publicKeyFile: await pemFile(dir, next) });
    assert.equal(key.version, 2);
    assert.equal(key.backend, 'external');
    assert.equal(key.keyid, keyidOf(next));
    assert.equal(retired.length, 1);
    assert.equal((await showKey(ctx, 'ci@2')).privateKey.backend, 'external');
    await createKey(ctx, { name: 'filekey' });
    const nextPem = await pemFile(dir, next);
    await rejectsWithCode(() => rotateKey(ctx, { name: 'filekey', publicKeyFile: nextPem }), 'USAGE');
  });

  it('refuses hostile public keys with exact codes, creating nothing', async () => {
    const { ws, ctx } = await workspace();
    const dir = await tempDir();
    await importPublicKey(ctx, { name: 'existing', pemFile: await pemFile(dir, generateKeyPairSync('ed25519').publicKey) });
    const before = await snapshot(ws, ctx);
    const good = generateKeyPairSync('ed25519');
    const cases: [string, Parameters<typeof importPublicKey>[1], string][] = [
      ['RSA 2048', { name: 'x', pemFile: await pemFile(dir, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey) }, 'KEY_WEAK'],
      ['P-384', { name: 'x', pemFile: await pemFile(dir, generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey) }, 'KEY_WEAK'],
      ['secp256k1', { name: 'x', pemFile: await pemFile(dir, generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey) }, 'KEY_WEAK'],
      ['X25519', { name: 'x', pemFile: await pemFile(dir, generateKeyPairSync('x25519').publicKey) }, 'KEY_ALGORITHM_UNSUPPORTED'],
      ['Ed448', { name: 'x', pemFile: await pemFile(dir, generateKeyPairSync('ed448').publicKey) }, 'KEY_ALGORITHM_UNSUPPORTED'],
      ['trailing garbage', { name: 'x', pemFile: await pemFile(dir, good.publicKey, 'garbage\n') }, 'KEY_INVALID'],
      ['two blocks', { name: 'x', pemFile: await pemFile(dir, good.publicKey, publicKeyPem(good.publicKey)) }, 'KEY_INVALID'],
      ['a private key', { name: 'x', pemFile: await pemFile(dir, good.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) }, 'KEY_INVALID'],
      ['mangled base64', { name: 'x', pemFile: await pemFile(dir, publicKeyPem(good.publicKey).replace(/A/g, 'B')) }, 'KEY_INVALID'],
      ['not a file', { name: 'x', pemFile: dir }, 'INPUT_INVALID'],
      ['missing', { name: 'x', pemFile: join(dir, 'missing.pem') }, 'INPUT_NOT_FOUND'],
      ['too large', { name: 'x', pemFile: await pemFile(dir, good.publicKey, ' '.repeat(20_000)) }, 'INPUT_TOO_LARGE'],
      ['keyid mismatch', { name: 'x', pemFile: await pemFile(dir, good.publicKey), keyid: 'ab'.repeat(32) }, 'KEY_ID_MISMATCH'],
      ['keyid malformed', { name: 'x', pemFile: await pemFile(dir, good.publicKey), keyid: 'abc' }, 'INPUT_INVALID'],
      ['name taken', { name: 'existing', pemFile: await pemFile(dir, good.publicKey) }, 'KEY_EXISTS'],
    ];
    for (const [what, input, code] of cases) {
      const e = await rejectsWithCode(() => importPublicKey(ctx, input), code as never);
      assert.equal(e.exitCode, code === 'KEY_EXISTS' ? 4 : 2, what);
    }
    assert.deepEqual(await snapshot(ws, ctx), before);
    // The same public key under a second name is one key, not two.
    const existing = await exportPublicKey(ctx, 'existing', 'pem');
    await rejectsWithCode(() => importPublicKey(ctx, { name: 'twin', pemFile: join(dir, 'twin.pem') }), 'INPUT_NOT_FOUND');
    await writeFile(join(dir, 'twin.pem'), existing.pem!);
    await rejectsWithCode(() => importPublicKey(ctx, { name: 'twin', pemFile: join(dir, 'twin.pem') }), 'KEY_EXISTS');
    assert.deepEqual((await listKeys(ctx)).map((k) => k.name), ['existing']);
  });
});

describe('trust material', () => {
  it('hands every version to verifiers, whatever its state', async () => {
    const { ctx } = await workspace();
    await createKey(ctx, { name: 'a' });
    await rotateKey(ctx, { name: 'a' });
    await revokeKeyVersion(ctx, 'a@1', { reason: 'compromised' });
    const trusted = await ctx.store.read((tx) => trustedKeys(tx));
    assert.deepEqual([...trusted.byKeyid.values()].map((k: KeyRecord) => `${k.name}@${k.version}:${k.status}`).sort(), ['a@1:revoked', 'a@2:active']);
  });
});
