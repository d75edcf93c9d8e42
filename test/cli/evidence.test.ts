import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { cli, spawnCli, tempDir, tempWorkspace, useFreshKek } from '../helpers.ts';
import { messageSignatureBundle } from '../../src/core/bundle.ts';
import { statementAbout } from '../fixtures/evidence.ts';
import { TestSigstore } from '../fixtures/pki.ts';

before(async () => {
  await useFreshKek();
});

async function ready() {
  const ws = await tempWorkspace();
  const run = (...args: string[]) => cli([...args, '--home', ws.home]);
  assert.equal((await run('key', 'create', 'release')).code, 0);
  const file = join(ws.dir, 'app.tgz');
  await writeFile(file, 'the build\n');
  const added = await run('artifact', 'add', file, '--name', 'pkg:npm/app', '--version', '1.0.0', '--json');
  const digest = added.json<{ digest: string }>().digest;
  const pub = join(ws.dir, 'release.pub');
  await writeFile(pub, (await run('key', 'export-public', 'release')).stdout);
  return { ws, run, file, digest, pub };
}

describe('custody sign / attest / verify', () => {
  it('signs and attests, prints the stored path, and verifies each piece', async () => {
    const { ws, run } = await ready();
    const sign = await run('sign', 'pkg:npm/app@1.0.0', '--key', 'release');
    assert.equal(sign.code, 0, sign.stderr);
    const path = sign.stdout.split('\n')[0]!;
    assert.match(path, /evidence\/[0-9a-f]{64}\.sigstore\.json$/);
    assert.equal((JSON.parse(await readFile(path, 'utf8')) as { mediaType: string }).mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    const predicate = join(ws.dir, 'tests.json');
    await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://example.com/ci.yml' }] }));
    const att = await run('attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate', predicate, '--key', 'release', '--json');
    assert.equal(att.code, 0, att.stderr);
    assert.equal(att.json<{ evidence: { predicateType: string } }>().evidence.predicateType, 'https://in-toto.io/attestation/test-result/v0.1');
    const v = await run('verify', 'pkg:npm/app@1.0.0', '--json');
    assert.equal(v.code, 0, v.stdout);
    const j = v.json<{ ok: boolean; items: { kind: string; verified: boolean }[] }>();
    assert.deepEqual(j.items.map((i) => [i.kind, i.verified]), [['signature', true], ['attestation', true]]);
    const human = await run('verify', 'pkg:npm/app@1.0.0');
    assert.match(human.stdout, /verified\s+signature/);
    assert.equal((await run('verify', 'pkg:npm/app@1.0.0', '--predicate-type', 'https://slsa.dev/provenance/v1')).code, 1, 'none of that type: nothing verified');
  });

  it('exits 2 naming the field for a bad predicate, and 1 when stored evidence no longer verifies', async () => {
    const { ws, run } = await ready();
    const predicate = join(ws.dir, 'bad.json');
    await writeFile(predicate, JSON.stringify({ runDetails: {} }));
    const bad = await run('attest', 'pkg:npm/app@1.0.0', '--type', 'provenance', '--predicate', predicate, '--key', 'release', '--json');
    assert.equal(bad.code, 2);
    const err = bad.json<{ error: { code: string; details: { field: string } } }>().error;
    assert.equal(err.code, 'PREDICATE_INVALID');
    assert.equal(err.details.field, 'buildDefinition');
    assert.equal((await run('attest', 'pkg:npm/app@1.0.0', '--type', 'sbom', '--predicate', predicate, '--key', 'release')).code, 2);
    assert.equal((await run('sign', 'pkg:npm/app@1.0.0', '--key', 'release')).code, 0);
    assert.equal((await run('key', 'revoke', 'release@1', '--reason', 'compromised', '--compromised-since', '2000-01-01T00:00:00Z')).code, 0);
    const v = await run('verify', 'pkg:npm/app@1.0.0');
    assert.equal(v.code, 1);
    assert.match(v.stdout, /KEY_COMPROMISED/);
  });
});

describe('custody verify-bundle (cosign verify-blob habits)', () => {
  it('verifies a blob signature made over the whole file, as cosign makes it, from the file or from its digest alone', async () => {
    const dir = await tempDir();
    const file = join(dir, 'app.tgz');
    const bytes = randomBytes(5000);
    await writeFile(file, bytes);
    const digest = createHash('sha256').update(bytes).digest();
    for (const [alg, keys, options] of [
      ['ecdsa', generateKeyPairSync('ec', { namedCurve: 'P-256' }), { dsaEncoding: 'der' as const }],
      ['rsa', generateKeyPairSync('rsa', { modulusLength: 3072 }), { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }],
    ] as const) {
      // A signer over the file's bytes (what `cosign sign-blob` does), in a Sigstore bundle v0.3.
      const signature = sign('sha256', bytes, { key: keys.privateKey, ...options });
      const bundle = join(dir, `${alg}.sigstore.json`);
      await writeFile(bundle, JSON.stringify(messageSignatureBundle({ sha256: digest, signature, keyid: '' })));
      const pub = join(dir, `${alg}.pub`);
      await writeFile(pub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
      for (const target of [file, `sha256:${digest.toString('hex')}`]) {
        const r = await cli(['verify-bundle', '--bundle', bundle, '--key', pub, target]);
        assert.equal(r.code, 0, `${alg} ${target}: ${r.stdout}${r.stderr}`);
      }
      const other = join(dir, 'other');
      await writeFile(other, 'another file\n');
      assert.equal((await cli(['verify-bundle', '--bundle', bundle, '--key', pub, other])).code, 1);
    }
  });

  it('verifies with a PEM key against a file or a digest, exit 0/1/2', async () => {
    const { ws, run, file, digest, pub } = await ready();
    const bundle = (await run('sign', 'pkg:npm/app@1.0.0', '--key', 'release')).stdout.split('\n')[0]!;
    // no workspace needed: run from an empty directory without --home
    const ok = await cli(['verify-bundle', '--bundle', bundle, '--key', pub, file]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^Verified OK/);
    assert.equal((await cli(['verify-bundle', '--bundle', bundle, '--key', pub, digest])).code, 0);
    const other = join(ws.dir, 'other.tgz');
    await writeFile(other, 'not the build\n');
    const wrong = await cli(['verify-bundle', '--bundle', bundle, '--key', pub, other, '--json']);
    assert.equal(wrong.code, 1);
    assert.deepEqual(wrong.json<{ reasons: { code: string }[] }>().reasons.map((r) => r.code), ['SUBJECT_MISMATCH']);
    const otherKey = join(ws.dir, 'other.pub');
    assert.equal((await run('key', 'create', 'other')).code, 0);
    await writeFile(otherKey, (await run('key', 'export-public', 'other')).stdout);
    assert.equal((await cli(['verify-bundle', '--bundle', bundle, '--key', otherKey, file])).code, 1);
    // usage errors exit 2
    const usage: string[][] = [
      ['verify-bundle', '--bundle', bundle, file],
      ['verify-bundle', '--bundle', bundle, '--key', pub, '--certificate-identity', 'x', '--certificate-oidc-issuer', 'y', file],
      ['verify-bundle', '--bundle', bundle, '--certificate-identity', 'x', file],
      ['verify-bundle', '--bundle', bundle, '--key', pub, '--trusted-root', pub, file],
      ['verify-bundle', '--bundle', bundle, '--key', pub, 'sha256:nothex'],
      ['verify-bundle', '--bundle', join(ws.dir, 'missing.json'), '--key', pub, file],
      ['verify-bundle', '--key', pub, file],
    ];
    for (const args of usage) assert.equal((await cli(args)).code, 2, args.join(' '));
    // a malformed bundle is a failed verification, as in cosign
    const junk = join(ws.dir, 'junk.json');
    await writeFile(junk, '{"mediaType":');
    const j = await cli(['verify-bundle', '--bundle', junk, '--key', pub, file, '--json']);
    assert.equal(j.code, 1);
    assert.equal(j.json<{ reasons: { code: string }[] }>().reasons[0]?.code, 'JSON_MALFORMED');
    // over 16 MiB: refused before it is read
    await writeFile(junk, Buffer.alloc(16 * 1024 * 1024 + 1, 0x20));
    const big = await cli(['verify-bundle', '--bundle', junk, '--key', pub, file, '--json']);
    assert.equal(big.code, 2);
    assert.equal(big.json<{ error: { code: string } }>().error.code, 'INPUT_TOO_LARGE');
  });

  it('verifies a keyless bundle against --trusted-root with exact identity and issuer', async () => {
    const dir = await tempDir();
    const sigstore = new TestSigstore();
    const root = join(dir, 'trusted_root.json');
    await writeFile(root, JSON.stringify(sigstore.trustedRoot));
    const artifact = join(dir, 'app.tgz');
    await writeFile(artifact, 'keyless build\n');
    const bytes = await readFile(artifact);
    const identity = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
    const issuer = 'https://token.actions.githubusercontent.com';
    const signedAt = new Date(Date.now() - 60_000);
    const bundle = join(dir, 'app.sigstore.json');
    await writeFile(bundle, JSON.stringify(sigstore.messageBundle(bytes, { san: identity, issuer, signedAt })));
    const args = (id: string, iss: string, ...more: string[]) => ['verify-bundle', '--bundle', bundle, '--certificate-identity', id, '--certificate-oidc-issuer', iss, ...more];
    const ok = await cli([...args(identity, issuer, '--trusted-root', root, artifact)]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, new RegExp(`signed by ${identity.replaceAll('.', '\\.')}`));
    const codeOf = async (a: string[]) => {
      const r = await cli([...a, '--json']);
      return [r.code, r.json<{ reasons: { code: string }[] }>().reasons[0]?.code];
    };
    assert.deepEqual(await codeOf(args('https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main', issuer, '--trusted-root', root, artifact)), [1, 'CERTIFICATE_IDENTITY_MISMATCH']);
    assert.deepEqual(await codeOf(args(identity, 'https://accounts.google.com', '--trusted-root', root, artifact)), [1, 'CERTIFICATE_ISSUER_MISMATCH']);
    // the message signature is over the bytes: a digest alone is not enough
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
    assert.deepEqual(await codeOf(args(identity, issuer, '--trusted-root', root, digest)), [1, 'ARTIFACT_REQUIRED']);
    // without --trusted-root: the public-good root, which does not know the test CA
    assert.equal((await cli(args(identity, issuer, artifact))).code, 1);
    // an attestation needs only the digest
    const att = join(dir, 'att.sigstore.json');
    const sha256 = digest.slice(7);
    await writeFile(att, JSON.stringify(sigstore.dsseBundle(statementAbout({ sha256 }), { san: identity, issuer, signedAt })));
    assert.equal((await cli(['verify-bundle', '--bundle', att, '--certificate-identity', identity, '--certificate-oidc-issuer', issuer, '--trusted-root', root, digest])).code, 0);
  });

  it('runs as a real process from bin/custody', async () => {
    const { file, pub, run } = await ready();
    const bundle = (await run('sign', 'pkg:npm/app@1.0.0', '--key', 'release')).stdout.split('\n')[0]!;
    const r = await spawnCli(['verify-bundle', '--bundle', bundle, '--key', pub, file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Verified OK/);
  });
});

describe('custody attest import', () => {
  it('imports a bundle and refuses a keyless one without identity flags (exit 2)', async () => {
    const { ws, run } = await ready();
    const bundle = (await run('sign', 'pkg:npm/app@1.0.0', '--key', 'release')).stdout.split('\n')[0]!;
    const copy = join(ws.dir, 'copy.json');
    await writeFile(copy, await readFile(bundle));
    const again = await run('attest', 'import', copy, '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.json<{ stored: { created: boolean }[] }>().stored.map((s) => s.created), [false]);
    const sigstore = new TestSigstore();
    const keyless = join(ws.dir, 'keyless.json');
    const sha256 = (await run('artifact', 'show', 'pkg:npm/app@1.0.0', '--json')).json<{ artifact: { digests: { sha256: string } } }>().artifact.digests.sha256;
    await writeFile(keyless, JSON.stringify(sigstore.dsseBundle(statementAbout({ sha256 }), { san: 'https://x', issuer: 'https://y', signedAt: new Date() })));
    const r = await run('attest', 'import', keyless, '--json');
    assert.equal(r.code, 2);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'USAGE');
  });
});
