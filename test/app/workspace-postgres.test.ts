/**
 * `store.driver: postgres` in custody.yaml: workspaces on several machines (here:
 * several homes and processes) share one PostgreSQL database; the URL comes only
 * from the environment variable the config names, and no message repeats it.
 */
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../src/adapters/store-sqlite.ts';
import { addArtifact, showArtifact } from '../../src/app/artifacts.ts';
import { DB_FILE, openWorkspace } from '../../src/app/workspace.ts';
import { rejectsWithCode, spawnCli, tempWorkspace } from '../helpers.ts';
import { hex } from '../contract/samples.ts';
import { postgresHarness } from '../contract/stores.ts';

async function postgresWorkspace(urlEnv?: string): Promise<{ home: string; dir: string }> {
  const ws = await tempWorkspace();
  await appendFile(join(ws.home, 'custody.yaml'), `\nstore:\n  driver: postgres\n${urlEnv === undefined ? '' : `  urlEnv: ${urlEnv}\n`}`);
  return ws;
}

async function databaseUrl(): Promise<string> {
  const where = await postgresHarness.location();
  if (where.driver !== 'postgres') throw new TypeError('expected postgres');
  return where.url;
}

describe('workspace on PostgreSQL', () => {
  it('refuses with CONFIG_INVALID naming the variable when it is not set', async () => {
    const ws = await postgresWorkspace('ACME_CUSTODY_DB');
    const e = await rejectsWithCode(() => openWorkspace(ws.home, { env: {} }), 'CONFIG_INVALID');
    assert.match(e.message, /ACME_CUSTODY_DB/);
    await rejectsWithCode(() => openWorkspace(ws.home, { env: { ACME_CUSTODY_DB: '  ' } }), 'CONFIG_INVALID');
    const other = await postgresWorkspace();
    assert.match((await rejectsWithCode(() => openWorkspace(other.home, { env: {} }), 'CONFIG_INVALID')).message, /CUSTODY_DATABASE_URL/);
  });

  it('reports an unreachable server as STORE_ERROR naming the variable, never the URL or password, with exit 5 from the CLI', async () => {
    const ws = await postgresWorkspace();
    const secret = 'hunter2-topsecret';
    const url = `postgresql://custody:${secret}@127.0.0.1:1/custody`;
    const e = await rejectsWithCode(() => openWorkspace(ws.home, { env: { CUSTODY_DATABASE_URL: url } }), 'STORE_ERROR');
    assert.match(e.message, /\$CUSTODY_DATABASE_URL/);
    assert.ok(!e.message.includes(secret) && !e.message.includes(url));
    const r = await spawnCli(['artifact', 'list', '--home', ws.home, '--json'], { env: { CUSTODY_DATABASE_URL: url } });
    assert.equal(r.code, 5);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'STORE_ERROR');
    for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes(secret), out);
    const missing = await spawnCli(['artifact', 'list', '--home', ws.home, '--json']);
    assert.equal(missing.code, 2);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'CONFIG_INVALID');
  });

  it('shares one database between workspaces: what one server records, another sees', async () => {
    const url = await databaseUrl();
    const env = { CUSTODY_TEST_DB: url };
    const a = await openWorkspace((await postgresWorkspace('CUSTODY_TEST_DB')).home, { env });
    const b = await openWorkspace((await postgresWorkspace('CUSTODY_TEST_DB')).home, { env });
    try {
      assert.equal(a.store.dialect, 'postgres');
      const digest = `sha256:${hex('shared')}`;
      await addArtifact(a, { digest, name: 'pkg:oci/app', version: '1.0.0' });
      const seen = await showArtifact(b, 'pkg:oci/app@1.0.0');
      assert.equal(seen.artifact.digest, digest);
      assert.deepEqual(seen.history.map((h) => h.type), ['artifact.added']);
      // A conflicting add through the other server is refused and audited in the shared log.
      await rejectsWithCode(() => addArtifact(b, { digest: `sha256:${hex('other')}`, name: 'pkg:oci/app', version: '1.0.0' }), 'ARTIFACT_CONFLICT');
      const entries = await a.store.read((tx) => tx.log.range(0, 10));
      assert.deepEqual(entries.map((e) => [e.index, e.type]), [[0, 'artifact.added'], [1, 'request.refused']]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('runs the CLI from several processes and homes against one database', async () => {
    const url = await databaseUrl();
    const homes = [(await postgresWorkspace()).home, (await postgresWorkspace()).home];
    const env = { CUSTODY_DATABASE_URL: url };
    const adds = await Promise.all(
      [0, 1, 2, 3].map((i) => spawnCli(['artifact', 'add', '--digest', `sha256:${hex(`cli-${i}`)}`, '--name', 'pkg:oci/app', '--version', `2.0.${i}`, '--home', homes[i % 2]!, '--json'], { env })),
    );
    for (const r of adds) assert.equal(r.code, 0, r.stderr);
    const list = await spawnCli(['artifact', 'list', '--home', homes[0]!, '--json'], { env });
    assert.deepEqual(list.json<{ artifacts: { version: string }[] }>().artifacts.map((a) => a.version).sort(), ['2.0.0', '2.0.1', '2.0.2', '2.0.3']);
    // The workspace's own SQLite file was never written: the state lives in PostgreSQL.
    const local = await SqliteStore.open(join(homes[0]!, DB_FILE));
    try {
      assert.deepEqual(await local.read((tx) => tx.artifacts.list()), []);
    } finally {
      await local.close();
    }
  });
});
