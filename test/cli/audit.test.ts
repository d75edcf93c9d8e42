import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { latestCheckpoint } from '../../src/app/log.ts';
import { parseCheckpointText, parseNote, verifyInclusion } from '../../src/core/tlog/index.ts';
import { cli, spawnCli, tempDir } from '../helpers.ts';
import { flipOneByte, logWorkspace, tamper } from '../fixtures/tlog.ts';

describe('custody audit', () => {
  it('says on stderr (human mode only) that new entries wait when no log key can sign', async () => {
    const w = await logWorkspace();
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const human = await cli(['artifact', 'add', '--digest', digest('a'), '--name', 'app', '--version', '1.0.0', '--home', w.ws.home]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /^note: new log entries wait for a signed checkpoint: /);
    const json = await cli(['artifact', 'add', '--digest', digest('b'), '--name', 'app', '--version', '2.0.0', '--home', w.ws.home, '--json']);
    assert.equal(json.code, 0);
    assert.equal(json.stderr, '');
    assert.equal(json.json<{ created: boolean }>().created, true);
    // a refusal is an entry too, and its command still reports the error first
    const refused = await cli(['artifact', 'add', '--digest', digest('c'), '--name', 'app', '--version', '1.0.0', '--home', w.ws.home]);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /^error\[ARTIFACT_CONFLICT\][^\n]*\n {2}hint: [^\n]*\nnote: new log entries wait for a signed checkpoint/);
    // read-only commands sign nothing and say nothing
    const list = await cli(['artifact', 'list', '--home', w.ws.home]);
    assert.equal(list.stderr, '');
  });

  it('checkpoint: none yet, no key to sign, then the latest one', async () => {
    const w = await logWorkspace();
    const none = await cli(['audit', 'checkpoint', '--home', w.ws.home]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error\[CHECKPOINT_NOT_FOUND\]/);
    const sign = await cli(['audit', 'checkpoint', '--sign', '--home', w.ws.home]);
    assert.equal(sign.code, 2);
    assert.match(sign.stderr, /^error\[KEY_NOT_FOUND\]/);
    await w.append(3);
    await w.sign();
    const human = await cli(['audit', 'checkpoint', '--home', w.ws.home]);
    assert.equal(human.code, 0);
    assert.equal(human.stdout, (await latestCheckpoint(w.ctx)).note);
    const json = (await cli(['audit', 'checkpoint', '--home', w.ws.home, '--json'])).json<{ size: number; root: string; note: string; keyid: string }>();
    assert.equal(json.size, 3);
    assert.equal(json.keyid, w.log.record.keyid);
    assert.equal(Buffer.from(json.root, 'base64').length, 32);
  });

  it('proof: by index and by id, as JSON that verifies', async () => {
    const w = await logWorkspace();
    await w.append(9);
    await w.sign();
    const r = await cli(['audit', 'proof', '4', '--home', w.ws.home, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const p = r.json<{ entry: { index: number; id: string; leafHash: string }; proof: { treeSize: number; hashes: string[] }; checkpoint: string }>();
    const cp = parseCheckpointText(parseNote(p.checkpoint).text);
    assert.deepEqual(verifyInclusion(4, p.proof.treeSize, Buffer.from(p.entry.leafHash, 'hex'), p.proof.hashes.map((h) => Buffer.from(h, 'base64')), cp.root), { ok: true });
    const byId = await cli(['audit', 'proof', p.entry.id, '--home', w.ws.home]);
    assert.equal(byId.code, 0);
    assert.match(byId.stdout, /^entry 4 {2}4-[0-9a-f]{32}\n/);
    assert.match(byId.stdout, /inclusion proof in the tree of 9 entries/);
    assert.equal((await cli(['audit', 'proof', '99', '--home', w.ws.home])).code, 2);
    assert.equal((await cli(['audit', 'proof', 'nope', '--home', w.ws.home])).code, 2);
  });

  it('verify: exit 0 when intact, exit 1 with the first index and what differs when tampered', async () => {
    const w = await logWorkspace();
    await w.sign();
    await w.append(6);
    await w.sign();
    const ok = await cli(['audit', 'verify', '--home', w.ws.home, '--json']);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.json<{ ok: boolean; entries: number }>().entries, 6);
    const body = (await w.ctx.store.read((tx) => tx.log.byIndex(2)))!.body;
    tamper(w.db, (db) => db.prepare('UPDATE log_entries SET body = ? WHERE idx = 2').run(flipOneByte(body)));
    const bad = await cli(['audit', 'verify', '--home', w.ws.home, '--json']);
    assert.equal(bad.code, 1);
    assert.deepEqual(bad.json<{ ok: boolean; finding: { index: number; kind: string } }>().finding.index, 2);
    const human = await cli(['audit', 'verify', '--home', w.ws.home]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^log TAMPERED: first difference at entry 2: entry-edited: /);
  });

  it('export, then verify the bundle in another process with no workspace and no database', async () => {
    const w = await logWorkspace();
    await w.append(40);
    await w.sign();
    const out = join(w.ws.dir, 'evidence.tar');
    const exp = await cli(['audit', 'export', '--out', out, '--from', '10', '--to', '30', '--home', w.ws.home, '--json']);
    assert.equal(exp.code, 0, exp.stderr);
    assert.deepEqual(exp.json<{ from: number; to: number; treeSize: number }>(), { ...exp.json(), from: 10, to: 30, treeSize: 40 });
    const key = await w.publicKeyFile();
    const elsewhere = await tempDir();
    const env = { HOME: elsewhere };
    const r = await spawnCli(['audit', 'verify', '--evidence', out, '--log-key', key], { cwd: elsewhere, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^evidence intact: entries \[10, 30\) of custody\.local\/[0-9a-f]+ prove into its signed tree of 40/);
    const other = join(elsewhere, 'other.pub');
    await writeFile(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const wrongKey = await spawnCli(['audit', 'verify', '--evidence', out, '--log-key', other, '--json'], { cwd: elsewhere, env });
    assert.equal(wrongKey.code, 1);
    assert.equal(wrongKey.json<{ finding: { kind: string } }>().finding.kind, 'checkpoint-signature');
    const noKey = await cli(['audit', 'verify', '--evidence', out]);
    assert.equal(noKey.code, 2);
    assert.equal((await cli(['audit', 'export', '--out', out, '--from', 'x', '--home', w.ws.home])).code, 2);
    // Offline verification asks no server: the same answer with --server (here one that is not even there).
    const offline = await spawnCli(['audit', 'verify', '--evidence', out, '--log-key', key, '--server', 'http://127.0.0.1:9'], { cwd: elsewhere, env });
    assert.deepEqual([offline.code, offline.stdout, offline.stderr], [r.code, r.stdout, r.stderr]);
    // Without --evidence it audits the server's log.
    const remote = await cli(['audit', 'verify', '--server', 'http://127.0.0.1:9']);
    assert.equal(remote.code, 5);
    assert.match(remote.stderr, /^error\[SERVER_UNREACHABLE\]/);
  });

  it('witness: cosigns, stores the cosignature with the checkpoint, and the cosigned checkpoint pins audit verify', async () => {
    const w = await logWorkspace();
    await w.append(5);
    await w.sign();
    const cp = join(w.ws.dir, 'checkpoint.txt');
    await writeFile(cp, (await cli(['audit', 'checkpoint', '--home', w.ws.home])).stdout);
    const witnessKey = join(w.ws.dir, 'witness.pem');
    await writeFile(witnessKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const cosigned = join(w.ws.dir, 'cosigned.txt');
    const r = await cli(['audit', 'witness', '--checkpoint', cp, '--key', witnessKey, '--log-key', await w.publicKeyFile(), '--name', 'witness.test/w1', '--out', cosigned, '--home', w.ws.home]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^cosigned custody\.local\/[0-9a-f]+ at size 5 as witness\.test\/w1; wrote /);
    const text = await readFile(cosigned, 'utf8');
    assert.equal(parseNote(text).signatures.length, 2);
    assert.equal((await latestCheckpoint(w.ctx)).note, text);
    assert.equal((await cli(['audit', 'verify', '--checkpoint', cosigned, '--home', w.ws.home])).code, 0);
    // the log grows; the witness checks consistency against the workspace's log and cosigns again
    await w.append(2);
    await w.sign();
    await writeFile(cp, (await cli(['audit', 'checkpoint', '--home', w.ws.home])).stdout);
    const grown = await cli(['audit', 'witness', '--checkpoint', cp, '--key', witnessKey, '--home', w.ws.home, '--json']);
    assert.equal(grown.code, 0, grown.stderr);
    assert.deepEqual([grown.json<{ previousSize: number }>().previousSize, grown.json<{ size: number }>().size], [5, 7]);
    // and refuses to go back
    const older = join(w.ws.dir, 'older.txt');
    await writeFile(older, text);
    const back = await cli(['audit', 'witness', '--checkpoint', older, '--key', witnessKey, '--home', w.ws.home]);
    assert.equal(back.code, 1);
    assert.match(back.stderr, /^error\[WITNESS_REFUSED\]/);
    // the refusal is on the record
    const size = await w.ctx.store.read((tx) => tx.log.size());
    const last = await w.ctx.store.read((tx) => tx.log.byIndex(size - 1));
    assert.equal(last?.type, 'request.refused');
    assert.deepEqual([last?.payload['action'], last?.payload['code']], ['audit.witness', 'WITNESS_REFUSED']);
  });
});
