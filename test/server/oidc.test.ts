/**
 * OIDC workload identity against self-issued tokens and a local JWKS: the
 * mapping of GitHub and GitLab claims, and the classic JWT attacks. No network:
 * the one JWKS-by-URL test serves the set from loopback.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { urlJwks } from '../../src/adapters/jwks.ts';
import { parseConfig } from '../../src/core/config.ts';
import { rejectsWithCode, throwsWithCode } from '../helpers.ts';
import { api, type Api } from './fixture.ts';

const GH = 'https://token.actions.githubusercontent.com';
const GL = 'https://gitlab.example.com';
const AUD = 'https://custody.test';
const RELEASE = 'github:acme/app//.github/workflows/release.yml@refs/heads/main';

const rsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const stranger = await generateKeyPair('RS256', { extractable: true });
const jwk = async (key: CryptoKey, kid: string, alg: string): Promise<JWK> => ({ ...(await exportJWK(key)), kid, alg, use: 'sig' });
const JWKS = { keys: [await jwk(rsa.publicKey, 'gh-1', 'RS256'), await jwk(ec.publicKey, 'gl-1', 'ES256')] };

const now = () => Math.floor(Date.now() / 1000);

function githubClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: GH,
    aud: AUD,
    sub: 'repo:acme/app:ref:refs/heads/main',
    repository: 'acme/app',
    repository_owner: 'acme',
    ref: 'refs/heads/main',
    job_workflow_ref: 'acme/app/.github/workflows/release.yml@refs/heads/main',
    iat: now() - 10,
    exp: now() + 300,
    ...overrides,
  };
}

async function sign(claims: Record<string, unknown>, key: CryptoKey = rsa.privateKey, header: { alg: string; kid?: string } = { alg: 'RS256', kid: 'gh-1' }): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function setup(): Promise<Api> {
  const server = `rateLimit: { perSecond: 100000, burst: 100000 }
tokenCacheSeconds: 0
oidc:
  issuers:
    - issuer: ${GH}
      audience: ${AUD}
      algorithm: RS256
      jwksFile: jwks.json
      identity: github
      rules:
        - claims: { repository: acme/app, job_workflow_ref: "acme/app/.github/workflows/release.yml@refs/heads/main" }
          roles: [builder, signer]
        - claims: { repository_owner: acme, ref: refs/heads/main }
          roles: [deployer]
          environments: [dev]
    - issuer: ${GL}
      audience: ${AUD}
      algorithm: ES256
      jwksFile: jwks.json
      identity: gitlab
      rules:
        - claims: { project_path: "acme/*" }
          roles: [builder]`;
  const t = await api({ server, authDeps: {} });
  return t;
}

async function whoami(t: Api, bearer: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await t.request('GET', '/v1/whoami', { token: bearer });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('OIDC workload identity', async () => {
  // The fixture writes custody.yaml before opening; the JWKS file only has to exist before the first token.
  const t = await setup();
  await writeFile(join(t.ws.home, 'jwks.json'), JSON.stringify(JWKS));

  it('maps GitHub Actions claims to repository//workflow@ref and the first matching rule', async () => {
    const r = await whoami(t, await sign(githubClaims()));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { identity: RELEASE, roles: ['builder', 'signer'], environments: null });
    const added = await t.request('POST', '/v1/artifacts', { token: await sign(githubClaims()), json: { digest: `sha256:${'b'.repeat(64)}`, name: 'app', version: '2.0.0' } });
    assert.equal(added.status, 200);
    const shown = (await (await t.request('GET', '/v1/artifacts/app@2.0.0', { token: await sign(githubClaims()) })).json()) as { artifact: { createdBy: string } };
    assert.equal(shown.artifact.createdBy, RELEASE);
  });

  it('gives another workflow of the same owner only what its rule grants, within its environments', async () => {
    const r = await whoami(t, await sign(githubClaims({ job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main' })));
    assert.deepEqual(r.body, { identity: 'github:acme/app//.github/workflows/deploy.yml@refs/heads/main', roles: ['deployer'], environments: ['dev'] });
  });

  it('refuses a workload that no rule maps, even with a valid signature', async () => {
    const r = await whoami(t, await sign(githubClaims({ repository: 'evil/app', repository_owner: 'evil', job_workflow_ref: 'evil/app/.github/workflows/x.yml@refs/heads/main' })));
    assert.equal(r.status, 401);
    assert.match(JSON.stringify(r.body), /no rule/);
  });

  it('maps GitLab CI claims (ES256 pinned for that issuer)', async () => {
    const claims = { iss: GL, aud: AUD, project_path: 'acme/app', ref: 'main', ref_type: 'branch', iat: now(), exp: now() + 300 };
    const r = await whoami(t, await sign(claims, ec.privateKey, { alg: 'ES256', kid: 'gl-1' }));
    assert.deepEqual(r.body, { identity: 'gitlab:acme/app@refs/heads/main', roles: ['builder'], environments: null });
  });

  describe('refuses the classic JWT attacks with 401 AUTH_INVALID', () => {
    const attacks: [string, () => Promise<string>][] = [
      ['alg: none', () => Promise.resolve(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(githubClaims())}.`)],
      [
        'HS256 signed with the public key as the HMAC secret',
        async () => {
          const secret = await exportSPKI(rsa.publicKey);
          const head = `${b64({ alg: 'HS256', kid: 'gh-1' })}.${b64(githubClaims())}`;
          return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
        },
      ],
      ['ES256 where the issuer is pinned to RS256 (with a kid that is in the JWKS)', () => sign(githubClaims(), ec.privateKey, { alg: 'ES256', kid: 'gl-1' })],
      ['a wrong audience', () => sign(githubClaims({ aud: 'https://someone-else.example' }))],
      ['an expired token (beyond the clock skew)', () => sign(githubClaims({ iat: now() - 600, exp: now() - 120 }))],
      ['nbf in the future', () => sign(githubClaims({ nbf: now() + 600 }))],
      ['iat in the future', () => sign(githubClaims({ iat: now() + 600, exp: now() + 900 }))],
      ['iat older than maxTokenAge', () => sign(githubClaims({ iat: now() - 7200 }))],
      ['no exp', () => sign({ ...githubClaims(), exp: undefined })],
      ['a kid that is not in the JWKS', () => sign(githubClaims(), stranger.privateKey, { alg: 'RS256', kid: 'rotated-away' })],
      ['a known kid signed by another key', () => sign(githubClaims(), stranger.privateKey, { alg: 'RS256', kid: 'gh-1' })],
      ['an untrusted issuer', () => sign(githubClaims({ iss: 'https://evil.example' }))],
      [
        'a payload changed after signing',
        async () => {
          const [h, , s] = (await sign(githubClaims({ repository: 'acme/other' }))).split('.');
          return `${h}.${b64(githubClaims())}.${s}`;
        },
      ],
      ['an oversized token', () => sign(githubClaims({ padding: 'x'.repeat(20_000) }))],
      ['three dots of garbage', () => Promise.resolve('a.b.c')],
    ];
    for (const [name, make] of attacks) {
      it(name, async () => {
        const r = await whoami(t, await make());
        assert.equal(r.status, 401, JSON.stringify(r.body));
        assert.equal((r.body['error'] as { code: string }).code, 'AUTH_INVALID');
      });
    }

    it('accepts a token expired by less than the configured skew', async () => {
      const r = await whoami(t, await sign(githubClaims({ iat: now() - 300, exp: now() - 20 })));
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });
  });
});

describe('issuer configuration', () => {
  const base = (issuer: string) => `version: 1\nlog: { origin: x }\nserver:\n  oidc:\n    issuers:\n${issuer.replace(/^/gm, '      ')}\n`;
  const good = `- issuer: ${GH}\n  audience: a\n  algorithm: RS256\n  jwksUri: ${GH}/.well-known/jwks\n  identity: github`;

  it('accepts a pinned RS256 or ES256 issuer, and nothing else', () => {
    assert.equal(parseConfig(base(good), 'custody.yaml').server.oidc.issuers[0]?.algorithm, 'RS256');
    throwsWithCode(() => parseConfig(base(good.replace('RS256', 'HS256')), 'custody.yaml'), 'CONFIG_INVALID');
    throwsWithCode(() => parseConfig(base(good.replace('RS256', 'none')), 'custody.yaml'), 'CONFIG_INVALID');
  });

  it('refuses JWKS over plain HTTP beyond loopback, both sources at once, and a skew over 300 s', () => {
    throwsWithCode(() => parseConfig(base(good.replaceAll('https://token', 'http://token')), 'custody.yaml'), 'CONFIG_INVALID');
    throwsWithCode(() => parseConfig(base(`${good}\n  jwksFile: jwks.json`), 'custody.yaml'), 'CONFIG_INVALID');
    throwsWithCode(() => parseConfig(base(`${good}\n  clockSkewSeconds: 3600`), 'custody.yaml'), 'CONFIG_INVALID');
    assert.ok(parseConfig(base(good.replace(`${GH}/.well-known/jwks`, 'http://127.0.0.1:9/jwks')), 'custody.yaml'));
  });
});

describe('JWKS fetched from a URL', () => {
  async function serve(body: () => string): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.setHeader('content-type', 'application/json');
      res.end(body());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/jwks`, hits: () => hits, close: () => new Promise((r) => server.close(() => r())) };
  }

  it('caches the set, fetches again after the cache time, and refreshes at most once per cool-down', async () => {
    const s = await serve(() => JSON.stringify(JWKS));
    let clock = 1_000_000;
    const source = urlJwks(s.url, { maxBytes: 64 * 1024, cacheSeconds: 600, now: () => clock });
    try {
      assert.equal((await source.get()).keys.length, 2);
      await source.get();
      assert.equal(s.hits(), 1, 'cached');
      clock += 601_000;
      await source.get();
      assert.equal(s.hits(), 2, 'fetched again once stale');
      assert.equal(await source.refresh(), false, 'no refresh within the cool-down');
      clock += 31_000;
      assert.equal(await source.refresh(), true);
      assert.equal(s.hits(), 3);
    } finally {
      await s.close();
    }
  });

  it('refuses a set over the size limit, and one that is not a JWKS', async () => {
    const big = await serve(() => JSON.stringify({ keys: [{ kty: 'oct', k: 'x'.repeat(5000) }] }));
    const junk = await serve(() => '{"not":"keys"}');
    try {
      await rejectsWithCode(() => urlJwks(big.url, { maxBytes: 1024, cacheSeconds: 60 }).get(), 'JWKS_UNAVAILABLE');
      await rejectsWithCode(() => urlJwks(junk.url, { maxBytes: 1024, cacheSeconds: 60 }).get(), 'JWKS_UNAVAILABLE');
    } finally {
      await big.close();
      await junk.close();
    }
  });

  it('verifies tokens against a served set and picks up a rotated key', async () => {
    const rotated = await generateKeyPair('RS256', { extractable: true });
    let keys = [JWKS.keys[0]];
    const s = await serve(() => JSON.stringify({ keys }));
    let clock = Date.now();
    try {
      const t = await api({
        authDeps: { jwks: (issuer) => urlJwks(issuer.jwksUri ?? '', { maxBytes: issuer.jwksMaxBytes, cacheSeconds: issuer.jwksCacheSeconds, now: () => clock }) },
        server: `tokenCacheSeconds: 0\noidc:\n  issuers:\n    - issuer: ${GH}\n      audience: ${AUD}\n      algorithm: RS256\n      jwksUri: ${s.url}\n      identity: github\n      rules:\n        - claims: { repository: acme/app }\n          roles: [builder]`,
      });
      assert.equal((await whoami(t, await sign(githubClaims()))).status, 200);
      keys = [JWKS.keys[0], await jwk(rotated.publicKey, 'gh-2', 'RS256')];
      // An unknown kid triggers one fetch, at most once per 30 s cool-down.
      clock += 31_000;
      const r = await whoami(t, await sign(githubClaims(), rotated.privateKey, { alg: 'RS256', kid: 'gh-2' }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(s.hits(), 2);
    } finally {
      await s.close();
    }
  });
});
