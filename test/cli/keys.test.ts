import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { decryptKeyFile } from '../../src/adapters/keys-file.ts';
import { keyidOf, publicKeyPem } from '../../src/core/crypto.ts';
import type { KeyRecord } from '../../src/core/key.ts';
import { BIN, cli, type CliResult, spawnCli, tempDir, tempWorkspace, useFreshKek } from '../helpers.ts';

let kekPath: string;

before(async () => {
  // In-process runs read the KEK from this process's environment, as the CLI does.
  kekPath = await useFreshKek();
});

type Json = Record<string, unknown>;
const errorCode = (r: CliResult) => r.json<{ error: { code: string } }>().error.code;

async function listJson(home: string): Promise<KeyRecord[]> {
  return (await cli(['key', 'list', '--home', home, '--json'])).json<{ keys: KeyRecord[] }>().keys;
}

/** The needles: every encoding of every private key the workspace holds, and the passphrase. */
async function privateNeedles(home: string, passphrase: string, passphraseKeys: readonly string[]): Promise<{ what: string; bytes: Buffer }[]> {
  const needles: { what: string; bytes: Buffer }[] = [];
  for (const k of await listJson(home)) {
    if (k.backend !== 'file') continue;
    const text = await readFile(join(home, 'keys', `${k.keyid}.key`), 'utf8');
    const priv = await decryptKeyFile(text, k.keyid, passphraseKeys.includes(k.name) ? { passphrase } : { kekFile: kekPath });
    const der = priv.export({ type: 'pkcs8', format: 'der' });
    const pemText = priv.export({ type: 'pkcs8', format: 'pem' }).toString();
    const d = Buffer.from((priv.export({ format: 'jwk' }) as { d: string }).d, 'base64url');
    const label = `${k.name}@${k.version}`;
    needles.push(
      { what: `${label} PKCS#8 DER`, bytes: der },
      { what: `${label} PKCS#8 base64`, bytes: Buffer.from(der.toString('base64')) },
      { what: `${label} PKCS#8 hex`, bytes: Buffer.from(der.toString('hex')) },
      { what: `${label} private scalar`, bytes: d },
      { what: `${label} private scalar hex`, bytes: Buffer.from(d.toString('hex')) },
      { what: `${label} private scalar base64`, bytes: Buffer.from(d.toString('base64').replace(/=+$/, '')) },
      { what: `${label} private scalar base64url`, bytes: Buffer.from(d.toString('base64url')) },
      { what: `${label} PEM header`, bytes: Buffer.from('PRIVATE KEY-----') },
    );
    for (const line of pemText.split('\n').filter((l) => l.length === 64)) needles.push({ what: `${label} PEM line`, bytes: Buffer.from(line) });
  }
  needles.push({ what: 'passphrase', bytes: Buffer.from(passphrase) });
  return needles;
}

/** `custody server` as its own process, with its own environment (its KEK); its request log is everything it writes. */
async function serverProcess(home: string, env: Record<string, string>): Promise<{ url: string; stop(): Promise<string> }> {
  const child = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', home], { env: { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = /"msg":"listening","url":"([^"]+)"/.exec(out);
      if (m) {
        clearInterval(poll);
        resolve(m[1]!);
      }
    }, 20);
    void exited.then(() => {
      clearInterval(poll);
      reject(new Error(`the server exited early: ${out}`));
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return out;
    },
  };
}

async function keyFiles(home: string): Promise<string[]> {
  return (await readdir(join(home, 'keys'))).filter((n) => n.endsWith('.key')).sort();
}

async function pem(dir: string, key: KeyObject | string, suffix = ''): Promise<string> {
  const path = join(dir, `${randomBytes(4).toString('hex')}.pem`);
  await writeFile(path, (typeof key === 'string' ? key : publicKeyPem(key)) + suffix);
  return path;
}

describe('custody key', () => {
  it('runs the whole lifecycle with the documented JSON and exit codes', async () => {
    const ws = await tempWorkspace();
    const h = ['--home', ws.home, '--json'];
    const created = await cli(['key', 'create', 'release', '--alg', 'ecdsa-p256-sha256', '--purpose', 'attest', '--purpose', 'sign-artifact', '--expires', '90d', ...h]);
    assert.equal(created.code, 0, created.stderr);
    const k1 = created.json<{ key: KeyRecord }>().key;
    assert.equal(k1.name, 'release');
    assert.equal(k1.version, 1);
    assert.deepEqual(k1.purposes, ['attest', 'sign-artifact']);
    assert.equal(k1.owner, 'tester@example.com');
    assert.equal((await cli(['key', 'create', 'release', ...h])).code, 4);

    const check = await cli(['key', 'check', 'release', ...h]);
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual(check.json(), { keyid: k1.keyid, name: 'release', version: 1, purpose: 'attest', backend: 'file', verified: true });

    const rotated = await cli(['key', 'rotate', 'release', '--overlap', '7d', ...h]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const r = rotated.json<{ key: KeyRecord; retired: KeyRecord[] }>();
    assert.equal(r.key.version, 2);
    assert.equal(r.retired[0]?.version, 1);
    assert.equal((await cli(['key', 'check', 'release@1', ...h])).code, 0, 'v1 signs during the overlap');

    const list = await listJson(ws.home);
    assert.deepEqual(list.map((k) => `${k.name}@${k.version}:${(k as KeyRecord & { state: string }).state}`), ['release@1:overlap', 'release@2:active']);

    const show = await cli(['key', 'show', 'release@1', ...h]);
    const shown = show.json<{ key: KeyRecord; versions: unknown[]; history: { type: string }[]; privateKey: Json }>();
    assert.equal(shown.key.keyid, k1.keyid);
    assert.equal(shown.versions.length, 2);
    assert.deepEqual(shown.history.map((e) => e.type), ['key.created', 'key.retired']);
    assert.deepEqual(shown.privateKey, { backend: 'file', path: `keys/${k1.keyid}.key` });
    const human = await cli(['key', 'show', 'release', '--home', ws.home]);
    assert.match(human.stdout, /^release@2\n {2}keyid: +[0-9a-f]{64}\n/);

    const exported = await cli(['key', 'export-public', 'release@1', ...h]);
    assert.equal(exported.json<{ pem: string }>().pem, k1.publicKeyPem);
    const plain = await cli(['key', 'export-public', 'release@1', '--home', ws.home]);
    assert.equal(plain.stdout, k1.publicKeyPem);
    const jwk = (await cli(['key', 'export-public', 'release', '--format', 'jwk', ...h])).json<{ jwk: Json }>().jwk;
    assert.equal(jwk['kid'], r.key.keyid);
    assert.equal(jwk['alg'], 'ES256');

    assert.equal(errorCode(await cli(['key', 'retire', 'release', ...h])), 'USAGE');
    const retired = await cli(['key', 'retire', 'release@1', ...h]);
    assert.equal(retired.code, 0, retired.stderr);
    const again = await cli(['key', 'retire', 'release@1', ...h]);
    assert.equal(again.code, 4);
    assert.equal(errorCode(again), 'KEY_STATE_INVALID');
    const checkRetired = await cli(['key', 'check', 'release@1', ...h]);
    assert.equal(checkRetired.code, 1);
    assert.equal(errorCode(checkRetired), 'KEY_NOT_USABLE');

    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal(errorCode(await cli(['key', 'revoke', 'release@2', '--reason', 'compromised', '--compromised-since', future, ...h])), 'INPUT_INVALID');
    assert.equal(errorCode(await cli(['key', 'revoke', 'release@2', ...h])), 'USAGE', '--reason is required');
    const revoked = await cli(['key', 'revoke', 'release@2', '--reason', 'compromised', '--compromised-since', '2020-01-01T00:00:00Z', ...h]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.json<{ key: KeyRecord }>().key.compromisedSince, '2020-01-01T00:00:00.000Z');
    assert.equal(errorCode(await cli(['key', 'check', 'release', ...h])), 'KEY_NOT_USABLE');
    assert.equal((await cli(['key', 'revoke', 'release@2', '--reason', 'compromised', ...h])).code, 4, 'revocation is permanent');

    const dir = await tempDir();
    const ext = generateKeyPairSync('ed25519').publicKey;
    const imported = await cli(['key', 'import-public', 'ci', await pem(dir, ext), '--purpose', 'attest', '--owner', 'github:acme/app', '--keyid', keyidOf(ext), ...h]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.json<{ key: KeyRecord }>().key.backend, 'external');
    assert.equal(errorCode(await cli(['key', 'check', 'ci', ...h])), 'KEY_NOT_USABLE');

    const log = await ws.open().then((ctx) => ctx.store.read((tx) => tx.log.range(0, 100)));
    assert.deepEqual(
      log.map((e) => e.type),
      ['key.created', 'request.refused', 'key.rotated', 'key.retired', 'key.retired', 'request.refused', 'key.revoked', 'request.refused', 'key.created'],
    );
    assert.ok(log.every((e) => e.actor === 'tester@example.com'));
  });

  it('gives every hostile input its exact code and exit 2, and creates nothing', async () => {
    const ws = await tempWorkspace();
    const dir = await tempDir();
    await cli(['key', 'create', 'existing', '--home', ws.home]);
    const beforeKeys = await listJson(ws.home);
    const beforeFiles = await keyFiles(ws.home);
    const good = generateKeyPairSync('ed25519');
    const cases: [string, string[], string][] = [
      ['unknown algorithm', ['key', 'create', 'x', '--alg', 'dsa-1024'], 'KEY_ALGORITHM_UNSUPPORTED'],
      ['unknown purpose', ['key', 'create', 'x', '--purpose', 'deploy'], 'INPUT_INVALID'],
      ['bad duration', ['key', 'create', 'x', '--expires', '3 months'], 'INPUT_INVALID'],
      ['bad name', ['key', 'create', 'X Y'], 'NAME_INVALID'],
      ['RSA 2048', ['key', 'import-public', 'x', await pem(dir, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)], 'KEY_WEAK'],
      ['P-384', ['key', 'import-public', 'x', await pem(dir, generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)], 'KEY_WEAK'],
      ['brainpool', ['key', 'import-public', 'x', await pem(dir, generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }).publicKey)], 'KEY_WEAK'],
      ['X25519', ['key', 'import-public', 'x', await pem(dir, generateKeyPairSync('x25519').publicKey)], 'KEY_ALGORITHM_UNSUPPORTED'],
      ['trailing garbage', ['key', 'import-public', 'x', await pem(dir, good.publicKey, '#!/bin/sh\n')], 'KEY_INVALID'],
      ['leading garbage', ['key', 'import-public', 'x', await pem(dir, `junk\n${publicKeyPem(good.publicKey)}`)], 'KEY_INVALID'],
      ['mismatched keyid', ['key', 'import-public', 'x', await pem(dir, good.publicKey), '--keyid', keyidOf(generateKeyPairSync('ed25519').publicKey)], 'KEY_ID_MISMATCH'],
      ['empty file', ['key', 'import-public', 'x', await pem(dir, '')], 'KEY_INVALID'],
      ['unknown key', ['key', 'show', 'nope'], 'KEY_NOT_FOUND'],
      ['unknown version', ['key', 'export-public', 'existing@7'], 'KEY_NOT_FOUND'],
      ['bad version', ['key', 'show', 'existing@latest'], 'INPUT_INVALID'],
    ];
    for (const [what, args, code] of cases) {
      const r = await cli([...args, '--home', ws.home, '--json']);
      assert.equal(errorCode(r), code, what);
      assert.equal(r.code, 2, what);
      assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: `), what);
      assert.doesNotMatch(r.stderr, /\n\s+at /, what);
    }
    assert.deepEqual(await listJson(ws.home), beforeKeys);
    assert.deepEqual(await keyFiles(ws.home), beforeFiles);
  });

  it('exits 2 with KEK_MISSING, KEY_DECRYPT_FAILED for a wrong passphrase or a corrupted file, and never falls back to plaintext', async () => {
    const ws = await tempWorkspace();
    const h = ['--home', ws.home, '--json'];
    const missing = await spawnCli(['key', 'create', 'release', ...h]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(errorCode(missing), 'KEK_MISSING');
    assert.deepEqual(await keyFiles(ws.home), []);
    assert.deepEqual(await listJson(ws.home), []);

    const env = { CUSTODY_KEY_PASSPHRASE: 'correct horse battery staple' };
    const created = await spawnCli(['key', 'create', 'release', ...h], { env });
    assert.equal(created.code, 0, created.stderr);
    const keyid = created.json<{ key: KeyRecord }>().key.keyid;
    assert.equal((await spawnCli(['key', 'check', 'release', ...h], { env })).code, 0);
    const noKek = await spawnCli(['key', 'check', 'release', ...h]);
    assert.equal(errorCode(noKek), 'KEK_MISSING');
    assert.equal(noKek.code, 2);
    const wrong = await spawnCli(['key', 'check', 'release', ...h], { env: { CUSTODY_KEY_PASSPHRASE: 'Correct horse battery staple' } });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.equal(errorCode(wrong), 'KEY_DECRYPT_FAILED');

    const file = join(ws.home, 'keys', `${keyid}.key`);
    const text = await readFile(file, 'utf8');
    const parsed = JSON.parse(text) as { ciphertext: string };
    const ct = Buffer.from(parsed.ciphertext, 'base64');
    ct[ct.length - 1] = ct[ct.length - 1]! ^ 0x80;
    await writeFile(file, JSON.stringify({ ...parsed, ciphertext: ct.toString('base64') }));
    const corrupted = await spawnCli(['key', 'check', 'release', ...h], { env });
    assert.equal(corrupted.code, 2);
    assert.equal(errorCode(corrupted), 'KEY_DECRYPT_FAILED');
    await writeFile(file, text.slice(0, 100));
    assert.equal(errorCode(await spawnCli(['key', 'check', 'release', ...h], { env })), 'KEY_DECRYPT_FAILED');
    await writeFile(file, text);
    assert.equal((await spawnCli(['key', 'check', 'release', ...h], { env })).code, 0, 'the restored file works again');
  });

  it('leaves nothing behind when killed before the commit', async () => {
    const ws = await tempWorkspace();
    const env = { CUSTODY_KEK_FILE: kekPath };
    const killed = await spawnCli(['key', 'create', 'release', '--home', ws.home], { env: { ...env, CUSTODY_FAILPOINT: 'key.create.before-commit' } });
    assert.equal(killed.signal, 'SIGKILL');
    assert.deepEqual(await listJson(ws.home), []);
    // The next create (any process) removes what the dead one published.
    const next = await spawnCli(['key', 'create', 'other', '--home', ws.home, '--json'], { env });
    assert.equal(next.code, 0, next.stderr);
    const keyid = next.json<{ key: KeyRecord }>().key.keyid;
    assert.deepEqual(await keyFiles(ws.home), [`${keyid}.key`]);
    assert.deepEqual(await readdir(join(ws.home, 'keys', '.pending')), []);

    const rot = await spawnCli(['key', 'rotate', 'other', '--home', ws.home], { env: { ...env, CUSTODY_FAILPOINT: 'key.rotate.before-commit' } });
    assert.equal(rot.signal, 'SIGKILL');
    const after = await listJson(ws.home);
    assert.deepEqual(after.map((k) => `${k.name}@${k.version}:${k.status}`), ['other@1:active'], 'the rotation never happened');
    assert.equal((await spawnCli(['key', 'create', 'third', '--home', ws.home], { env })).code, 0);
    assert.equal((await keyFiles(ws.home)).length, 2);
  });

  it('never lets private key material reach the database, the workspace, the log or any output', async () => {
    const ws = await tempWorkspace();
    const passphrase = 'a passphrase for the leak test';
    const envs = { file: { CUSTODY_KEK_FILE: kekPath }, pass: { CUSTODY_KEY_PASSPHRASE: passphrase } };
    const outputs: string[] = [];
    const run = async (args: string[], env: Record<string, string>) => {
      for (const json of [true, false]) {
        const r = await spawnCli([...args, '--home', ws.home, ...(json ? ['--json'] : ['--debug'])], { env });
        outputs.push(r.stdout, r.stderr);
      }
    };
    await spawnCli(['key', 'create', 'ed', '--alg', 'ed25519', '--home', ws.home], { env: envs.file });
    await spawnCli(['key', 'create', 'ec', '--alg', 'ecdsa-p256-sha256', '--purpose', 'policy', '--home', ws.home], { env: envs.pass });
    await spawnCli(['key', 'create', 'rsa', '--alg', 'rsa-pss-3072-sha256', '--home', ws.home, '--json'], { env: envs.file }).then((r) => outputs.push(r.stdout, r.stderr));
    await spawnCli(['key', 'rotate', 'ed', '--overlap', '1d', '--home', ws.home, '--json'], { env: envs.file }).then((r) => outputs.push(r.stdout, r.stderr));
    for (const name of ['ed', 'ed@1', 'ec', 'rsa']) {
      await run(['key', 'show', name], {});
      await run(['key', 'check', name], name === 'ec' ? envs.pass : envs.file);
      await run(['key', 'export-public', name], {});
      await run(['key', 'export-public', name, '--format', 'jwk'], {});
    }
    await run(['key', 'list'], {});
    // Failures too: a wrong KEK, and a revoked key, with --debug stack traces and causes.
    await run(['key', 'check', 'ec'], { CUSTODY_KEY_PASSPHRASE: 'wrong' });
    await run(['key', 'revoke', 'rsa@1', '--reason', 'compromised'], {});
    await run(['key', 'check', 'rsa'], envs.file);
    const verbose = await cli(['key', 'list', '--home', ws.home, '--json']);
    outputs.push(verbose.stdout, verbose.stderr);

    // The needles: every encoding of every private key the workspace holds.
    const records = await listJson(ws.home);
    assert.equal(records.length, 4);
    assert.ok(records.every((k) => k.backend === 'file'), 'every key has a key file to take needles from');
    const needles = await privateNeedles(ws.home, passphrase, ['ec']);

    const haystacks: { where: string; bytes: Buffer }[] = outputs.map((o, i) => ({ where: `output #${i}`, bytes: Buffer.from(o) }));
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile()) haystacks.push({ where: path, bytes: await readFile(path) });
      }
    };
    await walk(ws.dir);
    assert.ok(haystacks.some((h) => h.where.endsWith('custody.db')));
    assert.ok((await stat(join(ws.home, 'custody.db'))).size > 0);
    assert.ok(outputs.join('').includes('KEY_DECRYPT_FAILED'), 'the failure paths ran');
    for (const n of needles) {
      for (const h of haystacks) assert.equal(h.bytes.indexOf(n.bytes), -1, `${n.what} found in ${h.where}`);
    }
  });

  it('never lets private key material reach a response or the request log of a server doing the signing', async () => {
    const ws = await tempWorkspace();
    const passphrase = 'a passphrase for the remote leak test';
    const token = (await cli(['token', 'create', '--identity', 'admin@example.com', '--role', 'key-admin', '--role', 'signer', '--role', 'builder', '--home', ws.home, '--json'])).json<{ token: string }>().token;
    const outputs: { where: string; text: string }[] = [];
    // The client holds a token and nothing else: no KEK, no passphrase, no workspace.
    const cwd = await tempDir();
    const remote = async (url: string, args: string[], expect?: number) => {
      for (const json of [true, false]) {
        const r = await spawnCli([...args, ...(json ? ['--json'] : ['--debug'])], { cwd, env: { CUSTODY_SERVER: url, CUSTODY_TOKEN: token } });
        outputs.push({ where: `${args.join(' ')} (${json ? 'json' : 'human'})`, text: r.stdout + r.stderr });
        if (expect !== undefined) assert.equal(r.code, expect, `${args.join(' ')}: ${r.stderr}`);
      }
    };
    const raw = async (url: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      outputs.push({ where: `${method} ${path} (raw, ${res.status})`, text: `${JSON.stringify([...res.headers])}${await res.text()}` });
    };
    const logs: string[] = [];

    // The server signs with its own KEK: a passphrase-only one first, then the KEK file as well.
    let server = await serverProcess(ws.home, { CUSTODY_KEY_PASSPHRASE: passphrase });
    await remote(server.url, ['key', 'create', 'ec', '--alg', 'ecdsa-p256-sha256', '--purpose', 'policy']);
    logs.push(await server.stop());
    server = await serverProcess(ws.home, { CUSTODY_KEK_FILE: kekPath, CUSTODY_KEY_PASSPHRASE: passphrase });
    const one = async (args: string[]) => {
      const r = await spawnCli([...args, '--json'], { cwd, env: { CUSTODY_SERVER: server.url, CUSTODY_TOKEN: token } });
      outputs.push({ where: args.join(' '), text: r.stdout + r.stderr });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    await one(['key', 'create', 'ed', '--alg', 'ed25519']);
    await one(['key', 'create', 'rsa', '--alg', 'rsa-pss-3072-sha256']);
    await one(['key', 'rotate', 'ed', '--overlap', '1d']);
    await one(['artifact', 'add', '--digest', `sha256:${'a'.repeat(64)}`, '--name', 'pkg:npm/app', '--version', '1.0.0']);
    const predicate = join(cwd, 'tests.json');
    await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://example.com/ci.yml' }] }));
    await remote(server.url, ['sign', 'pkg:npm/app@1.0.0', '--key', 'ed', '--out', join(cwd, 'app.sigstore.json')], 0);
    await remote(server.url, ['attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate', predicate, '--key', 'rsa', '--out', join(cwd, 'att.sigstore.json')], 0);
    for (const name of ['ed', 'ed@1', 'ec', 'rsa']) {
      await remote(server.url, ['key', 'show', name], 0);
      await remote(server.url, ['key', 'check', name], 0);
      await remote(server.url, ['key', 'export-public', name], 0);
      await remote(server.url, ['key', 'export-public', name, '--format', 'jwk'], 0);
      await raw(server.url, 'GET', `/v1/keys/${encodeURIComponent(name)}`);
      await raw(server.url, 'POST', `/v1/keys/${encodeURIComponent(name)}/check`, {});
      await raw(server.url, 'GET', `/v1/keys/${encodeURIComponent(name)}/public?format=jwk`);
    }
    await remote(server.url, ['key', 'list'], 0);
    await raw(server.url, 'GET', '/v1/keys');
    await raw(server.url, 'GET', '/v1/openapi.json');
    await remote(server.url, ['key', 'revoke', 'rsa@1', '--reason', 'compromised']);
    await remote(server.url, ['key', 'check', 'rsa'], 1);
    await raw(server.url, 'POST', '/v1/keys/rsa/check', {});
    logs.push(await server.stop());
    // Failures with causes: a wrong passphrase on the server.
    server = await serverProcess(ws.home, { CUSTODY_KEK_FILE: kekPath, CUSTODY_KEY_PASSPHRASE: 'wrong' });
    await remote(server.url, ['key', 'check', 'ec'], 2);
    await raw(server.url, 'POST', '/v1/keys/ec/check', {});
    logs.push(await server.stop());

    assert.ok(outputs.some((o) => o.text.includes('KEY_DECRYPT_FAILED')), 'the failure paths ran');
    assert.ok(logs.join('').includes('"op":"key.check"'), 'the request log recorded the calls');
    const needles = await privateNeedles(ws.home, passphrase, ['ec']);
    assert.equal(needles.filter((n) => n.what.endsWith('PKCS#8 DER')).length, 4);
    const haystacks = [
      ...outputs.map((o) => ({ where: o.where, bytes: Buffer.from(o.text) })),
      ...logs.map((l, i) => ({ where: `server log #${i}`, bytes: Buffer.from(l) })),
      { where: 'the signed bundle written by --out', bytes: await readFile(join(cwd, 'app.sigstore.json')) },
      { where: 'the attestation written by --out', bytes: await readFile(join(cwd, 'att.sigstore.json')) },
    ];
    for (const n of needles) {
      for (const h of haystacks) assert.equal(h.bytes.indexOf(n.bytes), -1, `${n.what} found in ${h.where}`);
    }
  });
});
