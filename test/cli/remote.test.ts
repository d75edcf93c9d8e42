/**
 * The same CLI scenarios in local mode (--home) and remote mode (--server with
 * CUSTODY_TOKEN), asserting identical stdout, stderr and exit codes, in human
 * and --json output. Two workspaces live the same history side by side, so
 * what differs between them is only what is random or wall-clock: timestamps,
 * key material and what it signs, exception and token ids, and (in the log
 * scenarios) hashes. Those are replaced by stable labels before comparing.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createToken } from '../../src/app/tokens.ts';
import type { Context } from '../../src/app/workspace.ts';
import { keyidOf, publicKeyPem, signBytes } from '../../src/core/crypto.ts';
import { ROLES } from '../../src/core/identity.ts';
import type { Signer } from '../../src/core/ports.ts';
import { startServer, type RunningServer } from '../../src/server/listen.ts';
import { attestationBundle, statementAbout } from '../fixtures/evidence.ts';
import { BIN, cli, type CliResult, ROOT, spawnCli, tempDir, tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';

const TESTER = 'tester@example.com';
const NOBODY = 'nobody@example.com';
const APPROVER = 'approver@example.com';

const TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g;

// Closed at the end of the file, even when a name filter skips every test of their suite.
const servers: RunningServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

before(async () => {
  // Both sides sign in this process: the CLI in local mode, the in-process server in remote mode.
  await useFreshKek();
});

const DEV_POLICY = `apiVersion: custody.dev/v1
kind: Policy
name: dev
gates:
  npm-only:
    rule:
      expr: artifact.name.startsWith("pkg:npm/")
      message: only npm packages run in dev
`;
const PROD_POLICY = `apiVersion: custody.dev/v1
kind: Policy
name: prod
gates:
  tested:
    require:
      predicateType: https://in-toto.io/attestation/test-result/v0.1
      signers:
        - key: release
      where: predicate.result == "PASSED"
  approvals:
    approvals:
      count: 1
      approvers:
        - role: approver
`;

interface Mode {
  name: 'local' | 'remote';
  ws: Workspace;
  ctx: Context;
  /** Files this mode's scenarios write (its --out targets, its witness state). */
  dir: string;
  run(args: string[], as: string | undefined): Promise<CliResult>;
}

interface Scenario {
  name: string;
  args: string[] | ((m: Mode) => Promise<string[]>);
  as?: string;
  code: number;
  /** Only human (false) or only --json (true) output: for commands that change state, run once per mode. */
  json?: boolean;
  /** Log scenarios: hashes, roots and signatures differ between the two logs; compare their shape. */
  volatile?: boolean;
  /** Checks on what the command left behind, per mode. */
  then?: (m: Mode, r: CliResult) => Promise<void>;
}

/** What is random in a workspace, with a label that is the same on both sides when their histories match. */
async function labels(m: Mode): Promise<[string, string][]> {
  const pairs: [string, string][] = [];
  await m.ctx.store.read(async (tx) => {
    for (const k of await tx.keys.list()) {
      const label = `${k.name}@${k.version}`;
      pairs.push([k.keyid, `<keyid:${label}>`], [k.keyid.slice(0, 16), `<keyid16:${label}>`], [k.keyid.slice(0, 12), `<keyid12:${label}>`]);
      pairs.push([k.publicKeyPem, `<pem:${label}>`], [JSON.stringify(k.publicKeyPem).slice(1, -1), `<pem:${label}>`]);
      const jwk = createPublicKey(k.publicKeyPem).export({ format: 'jwk' }) as Record<string, string>;
      for (const c of ['x', 'y', 'n']) if (jwk[c]) pairs.push([jwk[c], `<jwk-${c}:${label}>`]);
    }
    let n = 0;
    for (const e of await tx.log.range(0, await tx.log.size())) {
      if (e.type !== 'evidence.stored') continue;
      const hex = String(e.payload['evidence']).slice('sha256:'.length);
      n++;
      pairs.push([hex, `<evidence:${n}>`], [hex.slice(0, 12), `<evidence12:${n}>`]);
    }
    (await tx.exceptions.list()).reverse().forEach((e, i) => pairs.push([e.id, `<exception:${i + 1}>`]));
    for (const t of await tx.tokens.list()) pairs.push([t.id, `<token:${t.identity}>`]);
  });
  // Longest first, so a prefix never replaces part of a longer match.
  return pairs.sort((a, b) => b[0].length - a[0].length);
}

async function normalise(m: Mode, text: string, volatile: boolean): Promise<string> {
  let s = text.replaceAll(m.ws.home, '<home>').replaceAll(m.dir, '<mode-dir>');
  for (const [from, to] of await labels(m)) s = s.replaceAll(from, to);
  s = s.replace(TIME, '<time>');
  if (volatile) {
    s = s
      .replace(/[A-Za-z0-9+/]{40,}={0,2}/g, '<base64>')
      .replace(/[0-9a-f]{32,}/g, '<hex>')
      .replace(/\(\d+ bytes\)/g, '(<n> bytes)')
      .replace(/"bytes":\d+/g, '"bytes":<n>');
  }
  return s;
}

describe('local and remote mode give the same output and exit codes', async () => {
  const local = await tempWorkspace(TESTER);
  const remote = await tempWorkspace(TESTER);
  const dir = await tempDir();
  for (const ws of [local, remote]) {
    const path = join(ws.home, 'custody.yaml');
    const yaml = (await readFile(path, 'utf8'))
      // One origin, and a checkpoint after every command or request, so both logs have the same shape.
      .replace(/origin: .*\n/, 'origin: custody.test/parity\n  checkpointInterval: 0s\n')
      .replace('environments: {}\n', 'environments:\n  dev: {}\n  prod: { from: [dev] }\n')
      .replace('roles:\n', `roles:\n  ${APPROVER}: [approver]\n`);
    await writeFile(path, yaml);
    await mkdir(join(ws.home, 'policies'));
    await writeFile(join(ws.home, 'policies', 'dev.yaml'), DEV_POLICY);
    await writeFile(join(ws.home, 'policies', 'prod.yaml'), PROD_POLICY);
  }
  // The same history in both workspaces, so log indexes line up.
  const tokens: Record<string, string> = {};
  for (const ws of [local, remote]) {
    const ctx = await ws.open();
    for (const [identity, roles] of [[TESTER, [...ROLES]], [NOBODY, []], [APPROVER, ['approver']]] as const) {
      const t = await createToken(ctx, { identity, roles: [...roles] });
      if (ws === remote) tokens[identity] = t.token;
      // Token lists sort by creation time: keep the times apart so both sides list them alike.
      await new Promise((r) => setTimeout(r, 5));
    }
    await ctx.close();
  }
  const server: RunningServer = await startServer({ home: remote.home, listen: '127.0.0.1:0', log: () => undefined });
  servers.push(server);

  // Files the user has on their machine, shared by both modes.
  const a = join(dir, 'app-1.0.0.tgz');
  const b = join(dir, 'other.tgz');
  const c = join(dir, 'app-1.1.0.tgz');
  await writeFile(a, 'console.log("app 1.0.0")\n');
  await writeFile(b, 'something else\n');
  await writeFile(c, 'console.log("app 1.1.0")\n');
  await mkdir(join(dir, 'adir'));
  await writeFile(join(dir, 'empty'), '');
  const digestA = 'sha256:1f8a0c4f0e4c2b6bfa6a9c2a8f6c5e0d5a8c7a3f2b1e0d9c8b7a6f5e4d3c2b1a';
  const policies = join(dir, 'policies');
  await mkdir(policies);
  await writeFile(join(policies, 'dev.yaml'), DEV_POLICY);
  await writeFile(join(policies, 'prod.yaml'), PROD_POLICY);
  const proposal = join(dir, 'proposal');
  await mkdir(proposal);
  await writeFile(join(proposal, 'dev.yaml'), DEV_POLICY.replace('pkg:npm/', 'pkg:'));
  await writeFile(join(proposal, 'prod.yaml'), PROD_POLICY);
  const predicate = join(dir, 'tests.json');
  await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://example.com/ci.yml' }] }));
  const notJson = join(dir, 'not.json');
  await writeFile(notJson, '{"result": PASSED}');
  const badProvenance = join(dir, 'provenance.json');
  await writeFile(badProvenance, JSON.stringify({ runDetails: {} }));
  // A CI's own key, outside Custody: its public half is imported, its evidence too.
  const ci = generateKeyPairSync('ed25519');
  const ciPem = join(dir, 'ci.pub.pem');
  await writeFile(ciPem, publicKeyPem(ci.publicKey));
  const ciSigner: Signer = { keyid: keyidOf(ci.publicKey), algorithm: 'ed25519', sign: (d) => Promise.resolve(signBytes('ed25519', ci.privateKey, d)) };
  const appSha256 = '0f0a0c4f0e4c2b6bfa6a9c2a8f6c5e0d5a8c7a3f2b1e0d9c8b7a6f5e4d3c2b1a';
  const imported = join(dir, 'ci.sigstore.json');
  const aboutNothing = join(dir, 'nothing.sigstore.json');
  await writeFile(aboutNothing, JSON.stringify(await attestationBundle(statementAbout({ sha256: appSha256 }), ciSigner)));
  const witnessKey = join(dir, 'witness.pem');
  await writeFile(witnessKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

  const modes: Mode[] = [];
  for (const [name, ws] of [['local', local], ['remote', remote]] as const) {
    const mdir = join(dir, name);
    await mkdir(mdir);
    modes.push({
      name,
      ws,
      ctx: name === 'remote' ? server.ctx : await ws.open(),
      dir: mdir,
      run: name === 'local' ? (args, as) => cli([...args, '--home', ws.home, ...(as ? ['--as', as] : [])]) : (args, as) => runRemote(args, as),
    });
  }

  async function runRemote(args: string[], as: string | undefined): Promise<CliResult> {
    const saved = process.env['CUSTODY_TOKEN'];
    process.env['CUSTODY_TOKEN'] = tokens[as ?? TESTER];
    try {
      return await cli([...args, '--server', server.url]);
    } finally {
      if (saved === undefined) delete process.env['CUSTODY_TOKEN'];
      else process.env['CUSTODY_TOKEN'] = saved;
    }
  }

  /** The newest stored checkpoint of a mode's log, written where a scenario reads it. */
  async function checkpointFile(m: Mode, file: string, pick: (notes: string[]) => string | undefined = (n) => n.at(-1)): Promise<string> {
    const notes = await m.ctx.store.read(async (tx) => (await tx.log.checkpoints(undefined, 10_000)).map((x) => x.note));
    const path = join(m.dir, file);
    await writeFile(path, pick(notes) ?? '');
    return path;
  }

  async function logKeyFile(m: Mode): Promise<string> {
    const path = join(m.dir, 'log.pub');
    const pem = await m.ctx.store.read(async (tx) => (await tx.keys.versionsOf('log'))[0]!.publicKeyPem);
    await writeFile(path, pem);
    return path;
  }

  const exceptionId = async (m: Mode, n: number) => (await m.ctx.store.read((tx) => tx.exceptions.list())).reverse()[n - 1]!.id;

  const scenarios: Scenario[] = [
    // ---------------------------------------------------------------- artifacts, tokens
    { name: 'add a file', args: ['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0', '--label', 'tier=critical', '--source', 'https://github.com/acme/app@abcdef1'], code: 0 },
    { name: 'add it again (idempotent)', args: ['artifact', 'add', a, '--name', 'pkg:npm/app', '--version', '1.0.0'], code: 0 },
    { name: 'other bytes under the same version', args: ['artifact', 'add', b, '--name', 'pkg:npm/app', '--version', '1.0.0'], code: 4 },
    { name: 'add by digest', args: ['artifact', 'add', '--digest', `sha256:${'c'.repeat(64)}`, '--name', 'pkg:oci/app', '--version', '2.0.0'], code: 0 },
    { name: 'malformed digest', args: ['artifact', 'add', '--digest', 'sha256:nothex', '--name', 'x', '--version', '1.0.0'], code: 2 },
    { name: 'empty name', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', '', '--version', '1.0.0'], code: 2 },
    { name: 'bad version', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', 'a', '--version', 'v1'], code: 2 },
    { name: 'bad label', args: ['artifact', 'add', '--digest', `sha256:${'d'.repeat(64)}`, '--name', 'a', '--version', '1.0.0', '--label', 'BAD KEY=x'], code: 2 },
    { name: 'missing file', args: ['artifact', 'add', join(dir, 'missing'), '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'a directory', args: ['artifact', 'add', join(dir, 'adir'), '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'file and digest', args: ['artifact', 'add', a, '--digest', digestA, '--name', 'a', '--version', '1.0.0'], code: 2 },
    { name: 'an empty file', args: ['artifact', 'add', join(dir, 'empty'), '--name', 'pkg:generic/empty', '--version', '0.0.1'], code: 0 },
    { name: 'list', args: ['artifact', 'list'], code: 0 },
    { name: 'list by label', args: ['artifact', 'list', '--label', 'tier=critical'], code: 0 },
    { name: 'list by name', args: ['artifact', 'list', '--name', 'pkg:oci/app', '--limit', '5'], code: 0 },
    { name: 'show by name@version', args: ['artifact', 'show', 'pkg:npm/app@1.0.0'], code: 0 },
    { name: 'show by name alone', args: ['artifact', 'show', 'pkg:npm/app'], code: 0 },
    { name: 'show by digest', args: ['artifact', 'show', `sha256:${'c'.repeat(64)}`], code: 0 },
    { name: 'show a missing artifact', args: ['artifact', 'show', 'pkg:npm/nothing@1.0.0'], code: 2 },
    { name: 'add without the builder role', args: ['artifact', 'add', c, '--name', 'pkg:npm/app', '--version', '1.1.0'], as: NOBODY, code: 2 },
    { name: 'list without any role', args: ['artifact', 'list', '--name', 'pkg:npm/app'], as: NOBODY, code: 0 },
    { name: 'whoami', args: ['whoami'], code: 0 },
    { name: 'whoami without roles', args: ['whoami'], as: NOBODY, code: 0 },
    { name: 'token create without key-admin', args: ['token', 'create', '--identity', 'x@example.com'], as: NOBODY, code: 2 },
    { name: 'revoke an unknown token', args: ['token', 'revoke', 'ffffffffffffffff'], code: 2 },
    { name: 'token list', args: ['token', 'list'], code: 0 },

    // ---------------------------------------------------------------- keys
    { name: 'key create', args: ['key', 'create', 'release', '--purpose', 'sign-artifact', '--purpose', 'attest', '--expires', '90d'], code: 0, json: false },
    { name: 'key create (a policy key)', args: ['key', 'create', 'policy-signer', '--alg', 'ecdsa-p256-sha256', '--purpose', 'policy'], code: 0, json: true },
    { name: 'key create (the log key)', args: ['key', 'create', 'log', '--purpose', 'log-checkpoint'], code: 0, json: false },
    { name: 'key create: the name is taken', args: ['key', 'create', 'release'], code: 4 },
    { name: 'key create: a bad name', args: ['key', 'create', 'X Y'], code: 2 },
    { name: 'key create: an unknown algorithm', args: ['key', 'create', 'x', '--alg', 'dsa-1024'], code: 2 },
    { name: 'key create without key-admin', args: ['key', 'create', 'mine'], as: NOBODY, code: 2 },
    { name: 'key list', args: ['key', 'list'], code: 0 },
    { name: 'key list without any role', args: ['key', 'list'], as: NOBODY, code: 0 },
    { name: 'key show', args: ['key', 'show', 'release'], code: 0 },
    { name: 'key show a missing key', args: ['key', 'show', 'nope'], code: 2 },
    { name: 'key show a bad version', args: ['key', 'show', 'release@latest'], code: 2 },
    { name: 'key check', args: ['key', 'check', 'release', '--purpose', 'attest'], code: 0 },
    { name: 'key check (ECDSA)', args: ['key', 'check', 'policy-signer'], code: 0 },
    { name: 'key check without key-admin', args: ['key', 'check', 'release'], as: NOBODY, code: 2 },
    { name: 'key export-public', args: ['key', 'export-public', 'release'], code: 0 },
    { name: 'key export-public as JWK', args: ['key', 'export-public', 'policy-signer', '--format', 'jwk'], code: 0 },
    { name: 'key export-public in an unknown format', args: ['key', 'export-public', 'release', '--format', 'der'], code: 2 },
    { name: 'key import-public', args: ['key', 'import-public', 'ci', ciPem, '--purpose', 'attest', '--owner', 'github:acme/app', '--keyid', keyidOf(ci.publicKey)], code: 0, json: false },
    { name: 'key import-public: the key id does not match', args: ['key', 'import-public', 'ci2', ciPem, '--keyid', 'ab'.repeat(32)], code: 2 },
    { name: 'key import-public: no such file', args: ['key', 'import-public', 'ci2', join(dir, 'missing.pem')], code: 2 },
    { name: 'key import-public: not a PEM', args: ['key', 'import-public', 'ci2', predicate], code: 2 },
    { name: 'key check an external key', args: ['key', 'check', 'ci'], code: 1 },
    { name: 'key rotate', args: ['key', 'rotate', 'release', '--overlap', '7d'], code: 0, json: true },
    { name: 'key rotate an external key without its successor', args: ['key', 'rotate', 'ci'], code: 2 },
    { name: 'key rotate a missing key', args: ['key', 'rotate', 'nope'], code: 2 },
    { name: 'key retire needs a version', args: ['key', 'retire', 'release'], code: 2 },
    { name: 'key create (to retire and revoke)', args: ['key', 'create', 'spare'], code: 0, json: true },
    { name: 'key retire', args: ['key', 'retire', 'spare@1'], code: 0, json: false },
    { name: 'key retire again', args: ['key', 'retire', 'spare@1'], code: 4 },
    { name: 'key revoke with a future compromise', args: ['key', 'revoke', 'spare@1', '--reason', 'compromised', '--compromised-since', '2999-01-01T00:00:00Z'], code: 2 },
    { name: 'key revoke with an unknown reason', args: ['key', 'revoke', 'spare@1', '--reason', 'bored'], code: 2 },
    { name: 'key revoke', args: ['key', 'revoke', 'spare@1', '--reason', 'superseded'], code: 0, json: true },
    { name: 'key revoke without key-admin', args: ['key', 'revoke', 'release@1', '--reason', 'compromised'], as: NOBODY, code: 2 },
    { name: 'key show a revoked version', args: ['key', 'show', 'spare@1'], code: 0 },

    // ---------------------------------------------------------------- sign, attest, import, verify
    {
      name: 'sign, writing the bundle here with --out',
      args: (m) => Promise.resolve(['sign', 'pkg:npm/app@1.0.0', '--key', 'release', '--out', join(m.dir, 'app.sigstore.json')]),
      code: 0,
      then: async (m, r) => {
        // The bytes --out wrote are the stored bundle's, signed wherever the workspace is.
        const stored = r.stdout.startsWith('{') ? r.json<{ path: string }>().path : r.stdout.split('\n')[0]!;
        assert.equal(await readFile(join(m.dir, 'app.sigstore.json'), 'utf8'), await readFile(stored, 'utf8'));
      },
    },
    { name: 'sign with a missing key', args: ['sign', 'pkg:npm/app@1.0.0', '--key', 'nope'], code: 2 },
    { name: 'sign a missing artifact', args: ['sign', 'pkg:npm/nothing@1.0.0', '--key', 'release'], code: 2 },
    { name: 'sign without the signer role', args: ['sign', 'pkg:npm/app@1.0.0', '--key', 'release'], as: NOBODY, code: 2 },
    { name: 'sign with a revoked key', args: ['sign', 'pkg:npm/app@1.0.0', '--key', 'spare@1'], code: 1 },
    { name: 'attest', args: ['attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate', predicate, '--key', 'release'], code: 0, json: false },
    { name: 'attest: the predicate is not JSON', args: ['attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate', notJson, '--key', 'release'], code: 2 },
    { name: 'attest: the predicate misses a field its type requires', args: ['attest', 'pkg:npm/app@1.0.0', '--type', 'provenance', '--predicate', badProvenance, '--key', 'release'], code: 2 },
    { name: 'attest: no such predicate file', args: ['attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate', join(dir, 'missing.json'), '--key', 'release'], code: 2 },
    { name: 'attest: both a type and a type URI', args: ['attest', 'pkg:npm/app@1.0.0', '--type', 'test-result', '--predicate-type', 'https://example.com/x', '--predicate', predicate, '--key', 'release'], code: 2 },
    {
      name: 'attest import',
      args: async (m) => {
        // The CI's evidence about the artifact as each workspace registered it (the same digests on both sides).
        const digests = await m.ctx.store.read(async (tx) => (await tx.artifacts.byNameVersion('pkg:npm/app', '1.0.0'))!.digests);
        await writeFile(imported, JSON.stringify(await attestationBundle(statementAbout({ sha256: digests.sha256!, sha512: digests.sha512! }), ciSigner)));
        return ['attest', 'import', imported];
      },
      code: 0,
      json: false,
    },
    { name: 'attest import again (idempotent)', args: ['attest', 'import', imported], code: 0, json: true },
    { name: 'attest import: about no registered artifact', args: ['attest', 'import', aboutNothing], code: 2 },
    { name: 'attest import: not evidence', args: ['attest', 'import', predicate], code: 2 },
    { name: 'attest import without the builder role', args: ['attest', 'import', imported], as: NOBODY, code: 2 },
    { name: 'verify', args: ['verify', 'pkg:npm/app@1.0.0'], code: 0 },
    { name: 'verify one predicate type', args: ['verify', 'pkg:npm/app@1.0.0', '--predicate-type', 'https://in-toto.io/attestation/test-result/v0.1'], code: 0 },
    { name: 'verify: nothing of that type', args: ['verify', 'pkg:npm/app@1.0.0', '--predicate-type', 'https://slsa.dev/provenance/v1'], code: 1 },
    { name: 'verify a missing artifact', args: ['verify', 'pkg:npm/nothing@1.0.0'], code: 2 },
    { name: 'verify without any role', args: ['verify', 'pkg:npm/app@1.0.0'], as: NOBODY, code: 0 },

    // ---------------------------------------------------------------- policies and exceptions
    { name: 'policy explain before anything is published', args: ['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'dev'], code: 1 },
    {
      name: 'policy publish a folder, writing the bundle here with --out',
      args: (m) => Promise.resolve(['policy', 'publish', policies, '--key', 'policy-signer', '--out', join(m.dir, 'set.json')]),
      code: 0,
      json: true,
      then: async (m) => assert.match(await readFile(join(m.dir, 'set.json'), 'utf8'), /"dsseEnvelope"/),
    },
    { name: 'policy publish the same set again', args: ['policy', 'publish', policies, '--key', 'policy-signer'], code: 0 },
    { name: "policy publish the workspace's own folder", args: ['policy', 'publish', '--key', 'policy-signer'], code: 0 },
    { name: 'policy publish with a key that may not sign policies', args: ['policy', 'publish', policies, '--key', 'release'], code: 1 },
    { name: 'policy publish without policy-admin', args: ['policy', 'publish', policies, '--key', 'policy-signer'], as: NOBODY, code: 2 },
    { name: 'policy publish a missing folder', args: ['policy', 'publish', join(dir, 'missing'), '--key', 'policy-signer'], code: 2 },
    { name: 'policy versions', args: ['policy', 'versions'], code: 0 },
    { name: 'policy show', args: ['policy', 'show', '--env', 'prod'], code: 0 },
    { name: 'policy show, resolved', args: ['policy', 'show', '--env', 'prod', '--resolved'], code: 0 },
    { name: 'policy show proposed files', args: ['policy', 'show', '--env', 'dev', '--policy', proposal], code: 0 },
    { name: 'policy show a missing environment', args: ['policy', 'show', '--env', 'qa'], code: 2 },
    { name: 'policy explain: pass', args: ['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'dev'], code: 0 },
    { name: 'policy explain: fail', args: ['policy', 'explain', 'pkg:oci/app@2.0.0', '--env', 'dev'], code: 1 },
    { name: 'policy explain: pending an approval', args: ['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'prod'], code: 3 },
    { name: 'policy explain against a signed bundle', args: (m) => Promise.resolve(['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'dev', '--policy', join(m.dir, 'set.json')]), code: 0 },
    { name: 'policy explain against unsigned files', args: ['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'dev', '--policy', proposal], code: 1 },
    { name: 'policy explain a missing artifact', args: ['policy', 'explain', 'pkg:npm/nothing@1.0.0', '--env', 'dev'], code: 2 },
    { name: 'policy verify', args: (m) => Promise.resolve(['policy', 'verify', join(m.dir, 'set.json')]), code: 0 },
    {
      name: 'policy verify a tampered bundle',
      args: async (m) => {
        const bundle = JSON.parse(await readFile(join(m.dir, 'set.json'), 'utf8')) as { dsseEnvelope: { payload: string } };
        bundle.dsseEnvelope.payload = Buffer.from(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('"count":1', '"count":0')).toString('base64');
        await writeFile(join(m.dir, 'tampered.json'), JSON.stringify(bundle));
        return ['policy', 'verify', join(m.dir, 'tampered.json')];
      },
      code: 1,
    },
    { name: 'policy simulate proposed files', args: ['policy', 'simulate', '--env', 'dev', '--policy', proposal], code: 0 },
    { name: "policy simulate the workspace's folder", args: ['policy', 'simulate', '--env', 'dev', '--limit', '10'], code: 0 },
    { name: 'exception request', args: ['exception', 'request', '--env', 'prod', '--gate', 'approvals', '--artifact', 'pkg:npm/app@1.0.0', '--expires', '2d', '--justification', 'INC-4711: the approver is on leave'], code: 0, json: false },
    { name: 'exception request for a missing environment', args: ['exception', 'request', '--env', 'qa', '--gate', 'approvals', '--artifact', 'pkg:npm/app@1.0.0', '--expires', '2d', '--justification', 'INC-4711: the approver is on leave'], code: 2 },
    { name: 'exception request without a justification', args: ['exception', 'request', '--env', 'prod', '--gate', 'approvals', '--artifact', 'pkg:npm/app@1.0.0', '--expires', '2d', '--justification', 'because'], code: 2 },
    { name: 'exception approve my own request', args: async (m) => ['exception', 'approve', await exceptionId(m, 1)], code: 2 },
    { name: 'exception approve without the approver role', args: async (m) => ['exception', 'approve', await exceptionId(m, 1)], as: NOBODY, code: 2 },
    { name: 'exception approve a missing exception', args: ['exception', 'approve', 'ex-000000000000'], code: 2 },
    { name: 'exception approve', args: async (m) => ['exception', 'approve', await exceptionId(m, 1)], as: APPROVER, code: 0, json: true },
    { name: 'exception list', args: ['exception', 'list'], code: 0 },
    { name: 'policy explain: waived by the exception', args: ['policy', 'explain', 'pkg:npm/app@1.0.0', '--env', 'prod'], code: 0 },
    { name: 'exception revoke, by its requester', args: async (m) => ['exception', 'revoke', await exceptionId(m, 1), '--reason', 'the approver is back'], code: 0, json: false },
    { name: 'exception revoke again', args: async (m) => ['exception', 'revoke', await exceptionId(m, 1)], code: 2 },
    { name: 'exception list, all', args: ['exception', 'list', '--all', '--env', 'prod'], code: 0 },

    // ---------------------------------------------------------------- the log
    { name: 'audit checkpoint --sign', args: ['audit', 'checkpoint', '--sign'], code: 0, volatile: true, json: true },
    { name: 'audit checkpoint', args: ['audit', 'checkpoint'], code: 0, volatile: true },
    { name: 'audit checkpoint without the auditor role', args: ['audit', 'checkpoint'], as: NOBODY, code: 2 },
    { name: 'audit proof', args: ['audit', 'proof', '3'], code: 0, volatile: true },
    { name: 'audit proof of a missing entry', args: ['audit', 'proof', '99999'], code: 2 },
    { name: 'audit proof of something else', args: ['audit', 'proof', 'latest'], code: 2 },
    { name: 'audit verify', args: ['audit', 'verify'], code: 0, volatile: true },
    {
      name: 'audit verify against a checkpoint kept elsewhere, with the log key pinned',
      args: async (m) => ['audit', 'verify', '--checkpoint', await checkpointFile(m, 'trusted.txt'), '--log-key', await logKeyFile(m)],
      code: 0,
      volatile: true,
    },
    { name: 'audit verify with a key that is not the log\'s', args: ['audit', 'verify', '--log-key', ciPem], code: 1, volatile: true },
    {
      name: 'audit export',
      args: (m) => Promise.resolve(['audit', 'export', '--out', join(m.dir, 'evidence.tar'), '--from', '2', '--to', '12']),
      code: 0,
      volatile: true,
      json: false,
    },
    { name: 'audit export: a range beyond the checkpoint', args: (m) => Promise.resolve(['audit', 'export', '--out', join(m.dir, 'x.tar'), '--to', '99999']), code: 2 },
    { name: 'audit export without the auditor role', args: (m) => Promise.resolve(['audit', 'export', '--out', join(m.dir, 'x.tar')]), as: NOBODY, code: 2 },
    { name: 'audit verify the export offline', args: async (m) => ['audit', 'verify', '--evidence', join(m.dir, 'evidence.tar'), '--log-key', await logKeyFile(m)], code: 0 },
    {
      name: 'audit witness an older checkpoint first',
      args: async (m) => ['audit', 'witness', '--checkpoint', await checkpointFile(m, 'older.txt', (n) => n[4]), '--key', witnessKey, '--state', join(m.dir, 'witness.json'), '--name', 'witness.test/w1', '--log-key', await logKeyFile(m)],
      code: 0,
      volatile: true,
      json: true,
    },
    {
      name: 'audit witness the newest: consistent with the older one, so cosigned and kept',
      args: async (m) => ['audit', 'witness', '--checkpoint', await checkpointFile(m, 'newest.txt'), '--key', witnessKey, '--state', join(m.dir, 'witness.json'), '--out', join(m.dir, 'cosigned.txt')],
      code: 0,
      json: false,
      then: async (m) => {
        const cosigned = await readFile(join(m.dir, 'cosigned.txt'), 'utf8');
        const stored = await m.ctx.store.read(async (tx) => (await tx.log.checkpoints(undefined, 10_000)).map((x) => x.note));
        assert.ok(stored.includes(cosigned), 'the log keeps the cosignature with its checkpoint');
      },
    },
    {
      name: 'audit witness refuses to go back',
      args: (m) => Promise.resolve(['audit', 'witness', '--checkpoint', join(m.dir, 'older.txt'), '--key', witnessKey, '--state', join(m.dir, 'witness.json')]),
      code: 1,
      json: false,
      then: async (m) => {
        const last = await m.ctx.store.read(async (tx) => tx.log.byIndex((await tx.log.size()) - 1));
        assert.deepEqual([last?.type, last?.payload['action'], last?.payload['code']], ['request.refused', 'audit.witness', 'WITNESS_REFUSED']);
      },
    },

    // ---------------------------------------------------------------- a key revoked since: what it signed stops verifying
    { name: 'key revoke the CI key, compromised long ago', args: ['key', 'revoke', 'ci@1', '--reason', 'compromised', '--compromised-since', '2020-01-01T00:00:00Z'], code: 0, json: false },
    { name: 'verify: the imported attestation no longer verifies', args: ['verify', 'pkg:npm/app@1.0.0'], code: 1 },
  ];

  for (const s of scenarios) {
    it(s.name, async () => {
      for (const json of s.json === undefined ? [false, true] : [s.json]) {
        const out: { m: Mode; r: CliResult; args: string[] }[] = [];
        for (const m of modes) {
          const base = typeof s.args === 'function' ? await s.args(m) : s.args;
          const args = json ? [...base, '--json'] : base;
          const r = await m.run(args, s.as);
          out.push({ m, r, args });
          await s.then?.(m, r);
        }
        const [l, r] = out as [(typeof out)[0], (typeof out)[0]];
        assert.equal(l.r.code, s.code, `local ${l.args.join(' ')}: ${l.r.stdout}${l.r.stderr}`);
        assert.equal(r.r.code, l.r.code, `remote exit code (${r.r.stderr})`);
        const v = s.volatile === true;
        assert.equal(await normalise(r.m, r.r.stdout, v), await normalise(l.m, l.r.stdout, v), 'stdout');
        assert.equal(await normalise(r.m, r.r.stderr, v), await normalise(l.m, l.r.stderr, v), 'stderr');
      }
    });
  }

  it('ran the remote half through the server (not the local workspace)', async () => {
    const r = await runRemote(['whoami', '--json'], undefined);
    assert.equal(r.json<{ identity: string }>().identity, TESTER);
    const l = await cli(['artifact', 'list', '--home', remote.home, '--json']);
    assert.ok(l.json<{ artifacts: unknown[] }>().artifacts.length >= 2);
    // Both logs recorded the same story, entry for entry.
    const types = (m: Mode) => m.ctx.store.read(async (tx) => (await tx.log.range(0, await tx.log.size())).map((e) => `${e.type}:${JSON.stringify(e.payload['action'] ?? null)}`));
    assert.deepEqual(await types(modes[1]!), await types(modes[0]!));
  });
});

describe('remote mode refuses what it must', () => {
  it('never sends a token over plain HTTP beyond loopback, nor with --as', async () => {
    const r = await cli(['whoami', '--server', 'http://custody.example.com']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /USAGE.*plain HTTP/);
    const as = await cli(['whoami', '--server', 'http://127.0.0.1:9', '--as', 'someone@example.com']);
    assert.equal(as.code, 2);
    assert.match(as.stderr, /--as works in local mode only/);
    const creds = await cli(['whoami', '--server', 'https://user:pw@custody.example.com']);
    assert.match(creds.stderr, /must not carry credentials/);
  });

  it('reports an unreachable server with exit 5, for every converted command', async () => {
    const dir = await tempDir();
    const file = join(dir, 'f.json');
    await writeFile(file, '{}');
    for (const args of [
      ['artifact', 'list'],
      ['key', 'list'],
      ['key', 'import-public', 'x', file],
      ['sign', 'pkg:npm/app@1.0.0', '--key', 'release'],
      ['attest', 'import', file],
      ['verify', 'pkg:npm/app@1.0.0'],
      ['policy', 'versions'],
      ['policy', 'verify', file],
      ['exception', 'list'],
      ['audit', 'checkpoint'],
      ['audit', 'verify'],
    ]) {
      const r = await cli([...args, '--server', 'http://127.0.0.1:9']);
      assert.equal(r.code, 5, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error\[SERVER_UNREACHABLE\]/);
    }
  });

});

describe('commands that touch no workspace behave the same with or without a server', () => {
  // Nothing listens on this port: a command that tried to reach it would fail with exit 5.
  const NOWHERE = 'http://127.0.0.1:9';

  async function same(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
    const plain = await spawnCli(args, options);
    const flag = await spawnCli([...args, '--server', NOWHERE], options);
    const env = await spawnCli(args, { ...options, env: { ...options.env, CUSTODY_SERVER: NOWHERE, CUSTODY_TOKEN: 'cst_unused' } });
    for (const other of [flag, env]) assert.deepEqual([other.code, other.stdout, other.stderr], [plain.code, plain.stdout, plain.stderr], args.join(' '));
    return plain;
  }

  it('verify-bundle, audit verify --evidence, audit witness --proof, policy check, policy test', async () => {
    const ws = await tempWorkspace();
    const env = { CUSTODY_KEK_FILE: process.env['CUSTODY_KEK_FILE'] ?? '' };
    const h = ['--home', ws.home];
    const file = join(ws.dir, 'app.tgz');
    await writeFile(file, 'the build\n');
    assert.equal((await cli(['key', 'create', 'release', ...h])).code, 0);
    assert.equal((await cli(['key', 'create', 'log', '--purpose', 'log-checkpoint', ...h])).code, 0);
    assert.equal((await cli(['artifact', 'add', file, '--name', 'pkg:npm/app', '--version', '1.0.0', ...h])).code, 0);
    const bundle = join(ws.dir, 'app.sigstore.json');
    assert.equal((await cli(['sign', 'pkg:npm/app@1.0.0', '--key', 'release', '--out', bundle, ...h])).code, 0);
    const pub = join(ws.dir, 'release.pub');
    await writeFile(pub, (await cli(['key', 'export-public', 'release', ...h])).stdout);
    const logPub = join(ws.dir, 'log.pub');
    await writeFile(logPub, (await cli(['key', 'export-public', 'log', ...h])).stdout);
    const tar = join(ws.dir, 'evidence.tar');
    assert.equal((await cli(['audit', 'export', '--out', tar, ...h])).code, 0);
    const cpFile = join(ws.dir, 'checkpoint.txt');
    await writeFile(cpFile, (await cli(['audit', 'checkpoint', ...h])).stdout);
    const proofFile = join(ws.dir, 'proof.json');
    await writeFile(proofFile, JSON.stringify({ size1: 0, size2: 0, proof: [] }));
    const witnessKey = join(ws.dir, 'witness.pem');
    await writeFile(witnessKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const examples = join(ws.dir, 'policies');
    await cp(join(ROOT, 'examples', 'policies'), examples, { recursive: true });

    // From a directory with no workspace in it, as a deploy job or an auditor would run them.
    const cwd = await tempDir();
    assert.equal((await same(['verify-bundle', '--bundle', bundle, '--key', pub, file], { cwd, env })).code, 0);
    assert.equal((await same(['verify-bundle', '--bundle', bundle, '--key', logPub, file], { cwd, env })).code, 1);
    assert.equal((await same(['audit', 'verify', '--evidence', tar, '--log-key', logPub], { cwd, env })).code, 0);
    assert.equal((await same(['audit', 'verify', '--evidence', tar, '--log-key', pub, '--json'], { cwd, env })).code, 1);
    // A fresh state per run: the witness's first sight of the log, with the proof given.
    for (const [i, extra] of [[], ['--server', NOWHERE]].entries()) {
      const w = await spawnCli(['audit', 'witness', '--checkpoint', cpFile, '--key', witnessKey, '--log-key', logPub, '--proof', proofFile, '--state', join(ws.dir, `state-${i}.json`), '--name', 'witness.test/w', ...extra], { cwd, env });
      assert.equal(w.code, 0, w.stderr);
      assert.match(w.stdout, /^custody\.local\/[0-9a-f]+\n/);
    }
    assert.equal((await same(['policy', 'check', examples], { cwd, env })).code, 0);
    assert.equal((await same(['policy', 'test', examples, '--json'], { cwd, env })).code, 0);
    // With a local workspace, check cross-checks against it, --server or not.
    assert.equal((await same(['policy', 'check', examples, ...h], { cwd, env })).code, 0);
  });

  it('init, demo and server make, tour and serve a workspace on this machine, server or not', async () => {
    const dir = await tempDir();
    const init = async (name: string, extra: string[], env: Record<string, string> = {}) => {
      const r = await spawnCli(['init', '--dir', join(dir, name), '--identity', 'me@example.com', ...extra], { cwd: dir, env });
      return { code: r.code, stdout: r.stdout.replaceAll(join(dir, name), '<dir>'), stderr: r.stderr };
    };
    const plain = await init('plain', []);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(await init('flag', ['--server', NOWHERE]), plain);
    assert.deepEqual(await init('env', [], { CUSTODY_SERVER: NOWHERE }), plain);
    for (const [extra, env] of [[[], {}], [['--server', NOWHERE], {}], [[], { CUSTODY_SERVER: NOWHERE }]] as const) {
      const d = await spawnCli(['demo', '--json', ...extra], { cwd: dir, env });
      assert.equal(d.code, 0, d.stderr);
      assert.equal(d.json<{ ok: boolean }>().ok, true);
    }
    // `custody server --server …` still serves its own workspace, and stops on SIGTERM as ever.
    const child = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', join(dir, 'plain'), '--server', NOWHERE], { env: { PATH: '/usr/bin:/bin', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const poll = setInterval(() => {
        const m = /"msg":"listening","url":"([^"]+)"/.exec(err);
        if (m) {
          clearInterval(poll);
          resolve(m[1]!);
        }
      }, 20);
      void closed.then(() => reject(new Error(err)));
    });
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    child.kill('SIGTERM');
    assert.equal(await closed, 0);
    assert.match(out, /^stopped on SIGTERM/);
  });
});
