import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { attachCosignature, exportEvidence, latestCheckpoint, verifyEvidence } from '../../src/app/log.ts';
import { witnessCheckpoint, type WitnessOptions } from '../../src/app/witness.ts';
import { keyidOf } from '../../src/core/crypto.ts';
import { cosignatureVerifier, encodeBase64, parseNote, signCheckpoint, verifyCosignatures } from '../../src/core/tlog/index.ts';
import type { Context } from '../../src/app/workspace.ts';
import { rejectsWithCode } from '../helpers.ts';
import { testKey } from '../fixtures/keys.ts';
import { logWorkspace, tamper, type LogWorkspace } from '../fixtures/tlog.ts';

interface WitnessSetup {
  w: LogWorkspace;
  keyFile: string;
  stateFile: string;
  logKey: string;
  verifier: ReturnType<typeof cosignatureVerifier>;
  /** Writes the log's latest checkpoint to a file, as it would be sent to the witness. */
  checkpointFile(): Promise<string>;
  run(extra?: Partial<WitnessOptions>): ReturnType<typeof witnessCheckpoint>;
}

function proofSource(ctx: Context) {
  return (a: number, b: number) => ctx.store.read((tx) => tx.log.consistencyProof(a, b));
}

async function setup(): Promise<WitnessSetup> {
  const w = await logWorkspace();
  await w.append(4);
  await w.sign();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = join(w.ws.dir, 'witness.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const logKey = await w.publicKeyFile();
  let n = 0;
  const s: WitnessSetup = {
    w,
    keyFile,
    stateFile: `${keyFile}.state.json`,
    logKey,
    verifier: cosignatureVerifier('witness.test/w1', publicKey, keyidOf(publicKey)),
    async checkpointFile() {
      const f = join(w.ws.dir, `checkpoint-${n++}.txt`);
      await writeFile(f, (await latestCheckpoint(w.ctx)).note);
      return f;
    },
    async run(extra = {}) {
      return witnessCheckpoint({ checkpointFile: await s.checkpointFile(), keyFile, name: 'witness.test/w1', proofSource: proofSource(w.ctx), now: new Date('2026-03-01T12:00:00Z'), ...extra });
    },
  };
  return s;
}

describe('witness (C2SP tlog-cosignature/v1)', () => {
  it('needs the log key the first time, then cosigns and remembers what it cosigned', async () => {
    const s = await setup();
    await rejectsWithCode(() => s.run(), 'USAGE');
    const r = await s.run({ logKeyFile: s.logKey });
    assert.equal(r.size, 4);
    assert.equal(r.previousSize, null);
    assert.equal(r.timestamp, Date.parse('2026-03-01T12:00:00Z') / 1000);
    const note = parseNote(r.checkpoint);
    assert.deepEqual(verifyCosignatures(note, [s.verifier]).valid.map((v) => v.timestamp), [r.timestamp]);
    const state = JSON.parse(await readFile(s.stateFile, 'utf8')) as { name: string; logs: Record<string, { size: number; logKey: string }> };
    assert.equal(state.name, 'witness.test/w1');
    assert.equal(state.logs[s.w.ctx.config.log.origin]?.size, 4);
    assert.match(state.logs[s.w.ctx.config.log.origin]!.logKey, /^custody\.local\/[0-9a-f]+\+[0-9a-f]{8}\+/);
  });

  it('cosigns a grown log after checking consistency, from the workspace or from a proof file', async () => {
    const s = await setup();
    await s.run({ logKeyFile: s.logKey });
    await s.w.append(9);
    await s.w.sign();
    const r = await s.run();
    assert.deepEqual([r.previousSize, r.size], [4, 13]);
    // offline: the proof comes in a file
    await s.w.append(20);
    await s.w.sign();
    const proof = await s.w.ctx.store.read((tx) => tx.log.consistencyProof(13, 33));
    const proofFile = join(s.w.ws.dir, 'proof.json');
    await writeFile(proofFile, JSON.stringify({ size1: 13, size2: 33, proof: proof.map(encodeBase64) }));
    const offline = await witnessCheckpoint({ checkpointFile: await s.checkpointFile(), keyFile: s.keyFile, proofFile, now: new Date() });
    assert.equal(offline.size, 33);
    // the same checkpoint again: consistent with itself
    assert.equal((await s.run()).size, 33);
  });

  it('refuses a rolled-back checkpoint, a fork and a checkpoint the log did not sign, changing nothing', async () => {
    const s = await setup();
    const old = await s.checkpointFile();
    await s.w.append(6);
    await s.w.sign();
    await s.run({ logKeyFile: s.logKey });
    const stateBefore = await readFile(s.stateFile, 'utf8');
    // older
    await rejectsWithCode(() => witnessCheckpoint({ checkpointFile: old, keyFile: s.keyFile, name: 'witness.test/w1', now: new Date() }), 'WITNESS_REFUSED');
    // another root at the same size, signed with the real log key (a log that forked)
    const origin = s.w.ctx.config.log.origin;
    const forkFile = join(s.w.ws.dir, 'fork.txt');
    await writeFile(forkFile, await signCheckpoint({ origin, size: 10, root: new Uint8Array(32).fill(1) }, s.w.log.signer, s.w.log.record));
    await rejectsWithCode(() => witnessCheckpoint({ checkpointFile: forkFile, keyFile: s.keyFile, name: 'witness.test/w1', now: new Date() }), 'WITNESS_REFUSED');
    // a larger tree that does not extend the one cosigned
    await writeFile(forkFile, await signCheckpoint({ origin, size: 12, root: new Uint8Array(32).fill(2) }, s.w.log.signer, s.w.log.record));
    await s.w.append(2);
    await rejectsWithCode(() => witnessCheckpoint({ checkpointFile: forkFile, keyFile: s.keyFile, name: 'witness.test/w1', proofSource: proofSource(s.w.ctx), now: new Date() }), 'WITNESS_REFUSED');
    // not the log's key
    const other = testKey({ purposes: ['log-checkpoint'] });
    const cp = await latestCheckpoint(s.w.ctx);
    await writeFile(forkFile, await signCheckpoint({ origin, size: cp.size, root: cp.root }, other.signer, other.record));
    await rejectsWithCode(() => witnessCheckpoint({ checkpointFile: forkFile, keyFile: s.keyFile, name: 'witness.test/w1', now: new Date() }), 'WITNESS_REFUSED');
    assert.equal(await readFile(s.stateFile, 'utf8'), stateBefore, 'a refusal changes nothing');
  });

  it('catches a database rolled back and rolled forward on a different history', async () => {
    const s = await setup();
    await s.w.append(10);
    await s.w.sign();
    await s.run({ logKeyFile: s.logKey }); // the witness has seen 14 entries
    tamper(s.w.db, (db) => {
      db.exec('DELETE FROM log_entries WHERE idx >= 4');
      db.exec('DELETE FROM log_checkpoints WHERE size > 4');
    });
    // The log (key and all) now signs a different history: smaller, then larger than what the witness saw.
    await s.w.append(3);
    await s.w.sign();
    await rejectsWithCode(() => s.run(), 'WITNESS_REFUSED');
    await s.w.append(30);
    await s.w.sign();
    const e = await rejectsWithCode(() => s.run(), 'WITNESS_REFUSED');
    assert.match(e.message, /not consistent/);
  });

  it('attaches the cosignature to the stored checkpoint, and the evidence export carries it', async () => {
    const s = await setup();
    const r = await s.run({ logKeyFile: s.logKey });
    assert.equal(await attachCosignature(s.w.ctx, r.checkpoint), true);
    const stored = await latestCheckpoint(s.w.ctx);
    assert.equal(stored.note, r.checkpoint);
    const out = join(s.w.ws.dir, 'e.tar');
    await exportEvidence(s.w.ctx, { out });
    assert.equal((await verifyEvidence(out, [s.logKey])).ok, true);
  });

  it('refuses a corrupt state file, a second concurrent run and a key that is not Ed25519', async () => {
    const s = await setup();
    await writeFile(s.stateFile, '{"version":1,"name":"x","logs":{"a":{"size":-1}}}');
    await rejectsWithCode(() => s.run({ logKeyFile: s.logKey }), 'INPUT_INVALID');
    await writeFile(s.stateFile, 'not json');
    await rejectsWithCode(() => s.run({ logKeyFile: s.logKey }), 'INPUT_INVALID');
    await writeFile(`${s.stateFile}.lock`, '');
    await rejectsWithCode(() => s.run({ logKeyFile: s.logKey, stateFile: s.stateFile }), 'STORE_BUSY');
    const ec = join(s.w.ws.dir, 'ec.pem');
    await writeFile(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await rejectsWithCode(() => s.run({ logKeyFile: s.logKey, keyFile: ec, stateFile: join(s.w.ws.dir, 'other.json') }), 'KEY_ALGORITHM_UNSUPPORTED');
    await rejectsWithCode(() => s.run({ logKeyFile: s.logKey, stateFile: join(s.w.ws.dir, 'n.json'), name: 'has space' }), 'INPUT_INVALID');
  });
});
