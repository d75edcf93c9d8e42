import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { readTar, writeTar, DEFAULT_TAR_LIMITS, type TarMember } from '../../src/adapters/evidence-tar.ts';
import {
  auditVerify,
  CheckpointScheduler,
  exportEvidence,
  latestCheckpoint,
  logVkey,
  proveEntry,
  signCheckpointWith,
  signWorkspaceCheckpoint,
  STORED_CHECKPOINT_FILE,
  verifyEvidence,
  type CheckpointOutcome,
} from '../../src/app/log.ts';
import { addArtifact, showArtifact } from '../../src/app/artifacts.ts';
import {
  CompactRange,
  entryBody,
  entryLeaf,
  logNoteVerifierFor,
  parseCheckpointText,
  parseNote,
  signCheckpoint,
  verifyCheckpoint,
  verifyInclusion,
} from '../../src/core/tlog/index.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';
import { testKey } from '../fixtures/keys.ts';
import { entryInput, flipOneByte, forgeAppend, logWorkspace, tamper } from '../fixtures/tlog.ts';

describe('checkpoints', () => {
  it('signs a C2SP checkpoint of the whole log with the log key, keeps every one, and a copy outside the database', async () => {
    const w = await logWorkspace();
    assert.equal((await w.sign()).status, 'signed', 'the empty log gets a checkpoint of size 0');
    await w.append(5);
    const first = await w.sign();
    assert.equal(first.status, 'signed');
    assert.equal((await w.sign()).status, 'current', 'nothing new: no new checkpoint');
    await w.append(3);
    const second = await w.sign();
    const latest = await latestCheckpoint(w.ctx);
    assert.equal(latest.size, 8);
    assert.equal(second.status === 'signed' && second.checkpoint.seq, latest.seq);
    const checked = verifyCheckpoint(latest.note, [logNoteVerifierFor(w.log.record, w.ctx.config.log.origin)!], { origin: w.ctx.config.log.origin });
    assert.equal(checked.ok, true);
    const lines = latest.note.split('\n');
    assert.equal(lines[0], w.ctx.config.log.origin);
    assert.equal(lines[1], '8');
    assert.equal(lines[3], '');
    assert.match(lines[4]!, new RegExp(`^— ${w.ctx.config.log.origin.replace(/[.]/g, '\\.')} [A-Za-z0-9+/]+=*$`));
    assert.equal(await readFile(join(w.ws.home, STORED_CHECKPOINT_FILE), 'utf8'), latest.note);
    // forced: a new checkpoint at the same size
    const forced = await w.sign(true);
    assert.equal(forced.status === 'signed' && forced.checkpoint.size, 8);
    const all = await w.ctx.store.read((tx) => tx.log.checkpoints(undefined, 100));
    assert.deepEqual(all.map((c) => c.size), [0, 5, 8, 8]);
  });

  it('reports a missing log key instead of failing, so the command goes on', async () => {
    const w = await logWorkspace();
    await w.append(1);
    // The automatic path asks loadSigner for the key named in config (default "log").
    const outcome = await signWorkspaceCheckpoint(w.ctx);
    assert.equal(outcome.status, 'no-key');
  });

  it('refuses to sign with a key that may not, or over a history that was rewritten', async () => {
    const w = await logWorkspace();
    await w.append(4);
    await w.sign();
    const notLog = testKey({ purposes: ['attest'] });
    await rejectsWithCode(
      () => w.ctx.store.transaction((tx) => signCheckpointWith(tx, { signer: notLog.signer, key: notLog.record, origin: w.ctx.config.log.origin, now: new Date() })),
      'KEY_NOT_USABLE',
    );
    const expired = testKey({ purposes: ['log-checkpoint'], notAfter: '2021-01-01T00:00:00.000Z' });
    await rejectsWithCode(
      () => w.ctx.store.transaction((tx) => signCheckpointWith(tx, { signer: expired.signer, key: expired.record, origin: w.ctx.config.log.origin, now: new Date() })),
      'KEY_NOT_USABLE',
    );
    // Rewrite a stored subtree hash (level 2, index 0 lives in the row of leaf 3): the tree no longer has the root the log signed, so it will not sign again.
    tamper(w.db, (db) => db.prepare('UPDATE log_entries SET nodes = ? WHERE idx = 3').run(Buffer.alloc(64, 7)));
    await rejectsWithCode(() => w.sign(true), 'LOG_TAMPERED');
    // Appending on the rewritten tree goes on (the frontier is what it is), but no checkpoint will cover it.
    await w.append(1);
    await rejectsWithCode(() => w.sign(), 'LOG_TAMPERED');
  });

  it('refuses to sign over a latest checkpoint that does not verify', async () => {
    const w = await logWorkspace();
    await w.append(2);
    await w.sign();
    const other = testKey({ purposes: ['log-checkpoint'] });
    const cp = await latestCheckpoint(w.ctx);
    const forged = await signCheckpoint({ origin: w.ctx.config.log.origin, size: cp.size, root: cp.root }, other.signer, other.record);
    tamper(w.db, (db) => db.prepare('UPDATE log_checkpoints SET note = ? WHERE seq = ?').run(forged, cp.seq));
    await w.append(1);
    await rejectsWithCode(() => w.sign(), 'LOG_TAMPERED');
  });
});

describe('CheckpointScheduler: after each batch, at most every interval', () => {
  function fake() {
    let now = 1_000_000;
    const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
    const signed: number[] = [];
    const outcome: CheckpointOutcome = { status: 'no-key', reason: 'test' };
    const s = new CheckpointScheduler({
      clock: { now: () => new Date(now) },
      intervalMs: 1000,
      sign: () => {
        signed.push(now);
        return Promise.resolve(outcome);
      },
      setTimer: (fn, ms) => {
        const t = { at: now + ms, fn, cancelled: false };
        timers.push(t);
        return { cancel: () => (t.cancelled = true) };
      },
    });
    const advance = async (ms: number) => {
      now += ms;
      for (const t of timers.splice(0)) {
        if (t.cancelled) continue;
        if (t.at <= now) t.fn();
        else timers.push(t);
      }
      await new Promise((r) => setImmediate(r));
    };
    return { s, signed, advance, tick: () => new Promise((r) => setImmediate(r)) };
  }

  it('signs the first batch at once, coalesces batches inside the interval into one signing when it ends', async () => {
    const { s, signed, advance, tick } = fake();
    s.notify();
    await tick();
    assert.deepEqual(signed, [1_000_000]);
    await advance(100);
    s.notify();
    await advance(100);
    s.notify();
    await tick();
    assert.equal(signed.length, 1, 'at most one per interval');
    await advance(800);
    assert.deepEqual(signed, [1_000_000, 1_001_000]);
    await advance(5000);
    assert.equal(signed.length, 2, 'nothing pending, nothing signed');
  });

  it('flush signs what is pending now (the end of a CLI command) and reports the outcome', async () => {
    const { s, signed, advance, tick } = fake();
    const seen: string[] = [];
    s.onOutcome((o) => seen.push(o.status));
    s.notify();
    await tick();
    await advance(10);
    s.notify();
    const o = await s.flush();
    assert.equal(o?.status, 'no-key');
    assert.equal(signed.length, 2);
    assert.deepEqual(seen, ['no-key', 'no-key']);
    assert.equal(await s.flush().then((x) => x?.status), 'no-key', 'a second flush hands back the last outcome');
    assert.equal(signed.length, 2);
    s.close();
  });
});

describe('proofs', () => {
  it('proves an entry by index or id into the latest checkpoint, and the proof verifies', async () => {
    const w = await logWorkspace();
    await w.append(13);
    await w.sign();
    const byIndex = await proveEntry(w.ctx, '6');
    const byId = await proveEntry(w.ctx, byIndex.entry.id);
    assert.deepEqual(byId, byIndex);
    const cp = parseCheckpointText(parseNote(byIndex.checkpoint).text);
    assert.equal(cp.size, 13);
    const r = verifyInclusion(6, 13, Buffer.from(byIndex.entry.leafHash, 'hex'), byIndex.proof.hashes.map((h) => Buffer.from(h, 'base64')), cp.root);
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(entryLeaf(byIndex.entry.body), Buffer.from(byIndex.entry.leafHash, 'hex'));
  });

  it('refuses unknown entries, bad references and entries no checkpoint covers yet', async () => {
    const w = await logWorkspace();
    await w.append(3);
    await rejectsWithCode(() => proveEntry(w.ctx, '1'), 'CHECKPOINT_NOT_FOUND');
    await w.sign();
    await w.append(1);
    await rejectsWithCode(() => proveEntry(w.ctx, '3'), 'CHECKPOINT_NOT_FOUND');
    await rejectsWithCode(() => proveEntry(w.ctx, '99'), 'LOG_ENTRY_NOT_FOUND');
    await rejectsWithCode(() => proveEntry(w.ctx, `1-${'0'.repeat(32)}`), 'LOG_ENTRY_NOT_FOUND');
    await rejectsWithCode(() => proveEntry(w.ctx, 'DROP TABLE'), 'INPUT_INVALID');
    await rejectsWithCode(() => proveEntry(w.ctx, '-1'), 'INPUT_INVALID');
  });
});

describe('audit verify', () => {
  /** A log of 23 entries in several batches, with checkpoints at 0, 5, 12 and 23. */
  async function busyLog() {
    const w = await logWorkspace();
    await w.sign();
    await w.append(5);
    await w.sign();
    const file = join(w.ws.dir, 'app.tgz');
    await writeFile(file, 'build output');
    await addArtifact(w.ctx, { file, name: 'pkg:npm/app', version: '1.0.0' });
    await w.append(6);
    await w.sign();
    await w.append(11);
    await w.sign();
    return w;
  }

  it('passes an intact log: every entry, subtree hash, checkpoint and the stored copy', async () => {
    const w = await busyLog();
    const report = await auditVerify(w.ctx);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
    assert.equal(report.entries, 23);
    assert.equal(report.checkpoints, 5, 'four stored checkpoints and the workspace copy');
    assert.equal(report.verifiedSize, 23);
    assert.equal((await showArtifact(w.ctx, 'pkg:npm/app@1.0.0')).history.length, 1);
  });

  it('reports entries that no checkpoint covers, and a log with no checkpoint at all', async () => {
    const w = await logWorkspace();
    await w.append(3);
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 0, kind: 'uncovered' });
    await w.sign();
    await w.append(2);
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 3, kind: 'uncovered' });
  });

  const pick = (f: { index: number; kind: string } | undefined) => f && { index: f.index, kind: f.kind };

  it('tamper: one byte of an entry payload → entry-edited at that index', async () => {
    const w = await busyLog();
    const original = (await w.ctx.store.read((tx) => tx.log.byIndex(9)))!.body;
    tamper(w.db, (db) => db.prepare('UPDATE log_entries SET body = ? WHERE idx = 9').run(flipOneByte(original)));
    const after = (await w.ctx.store.read((tx) => tx.log.byIndex(9)))!.body;
    assert.equal(after.length, original.length);
    assert.equal([...after].filter((c, i) => c !== original[i]).length, 1, 'one byte changed');
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 9, kind: 'entry-edited' });
  });

  it('tamper: an entry edited together with its leaf hash → its subtree; with every subtree too → the checkpoint', async () => {
    const w = await busyLog();
    const edit = (db: DatabaseSync) => {
      const row = db.prepare('SELECT body FROM log_entries WHERE idx = 9').get() as { body: string };
      const body = flipOneByte(row.body);
      db.prepare('UPDATE log_entries SET body = ?, leaf_hash = ? WHERE idx = 9').run(body, entryLeaf(body));
    };
    tamper(w.db, edit);
    const f = (await auditVerify(w.ctx)).finding!;
    assert.equal(f.kind, 'node-mismatch');
    assert.ok(f.range && f.range.from <= 9 && 9 < f.range.to, JSON.stringify(f));
    // Now rebuild every stored subtree hash from the edited leaves, as a thorough forger would.
    tamper(w.db, (db) => {
      const tree = new CompactRange();
      for (const r of db.prepare('SELECT idx, leaf_hash FROM log_entries ORDER BY idx').all() as { idx: number; leaf_hash: Uint8Array }[]) {
        const parts: Uint8Array[] = [];
        tree.append(r.leaf_hash, (level, _index, hash) => {
          if (level > 0) parts.push(hash);
        });
        db.prepare('UPDATE log_entries SET nodes = ? WHERE idx = ?').run(parts.length ? Buffer.concat(parts) : null, r.idx);
      }
    });
    const g = (await auditVerify(w.ctx)).finding!;
    assert.equal(g.kind, 'checkpoint-root');
    assert.deepEqual(g.range, { from: 5, to: 12 }, 'the first checkpoint that covers entry 9');
    assert.equal(g.index, 5);
  });

  it('tamper: a deleted entry → entry-missing at its index', async () => {
    const w = await busyLog();
    tamper(w.db, (db) => db.prepare('DELETE FROM log_entries WHERE idx = 7').run());
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 7, kind: 'entry-missing' });
  });

  it('tamper: two entries swapped → entry-moved at the first', async () => {
    const w = await busyLog();
    tamper(w.db, (db) => {
      const a = db.prepare('SELECT body, leaf_hash FROM log_entries WHERE idx = 3').get() as { body: string; leaf_hash: Uint8Array };
      const b = db.prepare('SELECT body, leaf_hash FROM log_entries WHERE idx = 14').get() as { body: string; leaf_hash: Uint8Array };
      db.prepare('UPDATE log_entries SET body = ?, leaf_hash = ? WHERE idx = 3').run(b.body, b.leaf_hash);
      db.prepare('UPDATE log_entries SET body = ?, leaf_hash = ? WHERE idx = 14').run(a.body, a.leaf_hash);
    });
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 3, kind: 'entry-moved' });
  });

  it('tamper: an entry inserted in the middle (later ones renumbered) → the first displaced entry, or the checkpoint right after it', async () => {
    const insertAt = (at: number) => (db: DatabaseSync) => {
      db.prepare('UPDATE log_entries SET idx = -(idx + 1) WHERE idx >= ?').run(at);
      db.exec('UPDATE log_entries SET idx = -idx WHERE idx < 0');
      const body = entryBody(at, entryInput(999));
      db.prepare('INSERT INTO log_entries (idx, body, leaf_hash) VALUES (?, ?, ?)').run(at, body, entryLeaf(body));
    };
    const w = await busyLog();
    tamper(w.db, insertAt(8));
    const f = (await auditVerify(w.ctx)).finding!;
    assert.deepEqual(pick(f), { index: 9, kind: 'entry-moved' });
    assert.match(f.message, /holds the body of entry 8/);
    // Inserted just before a checkpoint's size: the checkpoint of 5 no longer matches, before entry 5 is read.
    const v = await busyLog();
    tamper(v.db, insertAt(4));
    const g = (await auditVerify(v.ctx)).finding!;
    assert.equal(g.kind, 'checkpoint-root');
    assert.deepEqual(g.range, { from: 0, to: 5 });
  });

  it('tamper: a forged entry appended without a checkpoint → uncovered at its index', async () => {
    const w = await busyLog();
    let at = -1;
    tamper(w.db, (db) => {
      at = forgeAppend(db, { type: 'key.created', actor: 'mallory@example.com', time: '2026-03-01T12:00:00.000Z', subject: 'mallory-key', payload: {} });
    });
    assert.equal(at, 23);
    const report = await auditVerify(w.ctx);
    assert.deepEqual(pick(report.finding), { index: 23, kind: 'uncovered' });
    assert.equal(report.verifiedSize, 23);
  });

  it('tamper: the latest checkpoint replaced by one signed with another key → checkpoint-signature', async () => {
    const w = await busyLog();
    const other = testKey({ name: 'log', purposes: ['log-checkpoint'] });
    const cp = await latestCheckpoint(w.ctx);
    const forged = await signCheckpoint({ origin: w.ctx.config.log.origin, size: cp.size, root: cp.root }, other.signer, other.record);
    tamper(w.db, (db) => db.prepare('UPDATE log_checkpoints SET note = ?, keyid = ? WHERE seq = ?').run(forged, other.record.keyid, cp.seq));
    const f = (await auditVerify(w.ctx)).finding!;
    assert.equal(f.kind, 'checkpoint-signature');
    assert.equal(f.index, 12, 'the first entry only that checkpoint covered');
    assert.equal(f.checkpoint?.seq, cp.seq);
  });

  it('tamper: a checkpoint row whose size or root column disagrees with its signed text → checkpoint-invalid', async () => {
    const w = await busyLog();
    tamper(w.db, (db) => db.prepare('UPDATE log_checkpoints SET size = 11 WHERE size = 12').run());
    assert.equal((await auditVerify(w.ctx)).finding?.kind, 'checkpoint-invalid');
  });

  it('tamper: the log truncated under its checkpoints → truncated at the first missing index', async () => {
    const w = await busyLog();
    await rm(join(w.ws.home, STORED_CHECKPOINT_FILE));
    tamper(w.db, (db) => {
      db.exec('DELETE FROM log_entries WHERE idx >= 20');
    });
    assert.deepEqual(pick((await auditVerify(w.ctx)).finding), { index: 20, kind: 'truncated' });
  });

  it('tamper: the whole log rolled back to an earlier consistent state → caught by the stored copy, or by a witnessed checkpoint', async () => {
    const w = await busyLog();
    const witnessed = join(w.ws.dir, 'witnessed.txt');
    await writeFile(witnessed, (await latestCheckpoint(w.ctx)).note);
    // Back to size 12 exactly as it was then: later entries (with their subtree hashes) and checkpoints gone.
    tamper(w.db, (db) => {
      db.exec('DELETE FROM log_entries WHERE idx >= 12');
      db.exec('DELETE FROM log_checkpoints WHERE size > 12');
    });
    const viaCopy = await auditVerify(w.ctx);
    assert.deepEqual(pick(viaCopy.finding), { index: 12, kind: 'rollback' });
    assert.match(viaCopy.finding!.message, new RegExp(STORED_CHECKPOINT_FILE));
    // A thorough attacker also removes the workspace copy: the database alone now looks intact...
    await rm(join(w.ws.home, STORED_CHECKPOINT_FILE));
    assert.equal((await auditVerify(w.ctx)).ok, true);
    // ...but not against a checkpoint kept elsewhere (a witness's, an auditor's).
    const viaWitness = await auditVerify(w.ctx, { checkpointFiles: [witnessed] });
    assert.deepEqual(pick(viaWitness.finding), { index: 12, kind: 'rollback' });
    // And rolling forward on a different history is a fork at the size the outside checkpoint vouches for.
    await w.append(15);
    await w.sign();
    const fork = (await auditVerify(w.ctx, { checkpointFiles: [witnessed] })).finding!;
    assert.equal(fork.kind, 'rollback');
    assert.equal(fork.index, 12);
  });

  it('pins the log key when given one, so a key record planted in the database does not help a forger', async () => {
    const w = await busyLog();
    const mallory = testKey({ name: 'log', version: 2, purposes: ['log-checkpoint'] });
    tamper(w.db, (db) => {
      db.prepare('INSERT INTO keys (keyid, name, version, record, private_ref) VALUES (?, ?, ?, ?, NULL)').run(mallory.record.keyid, 'log', 2, JSON.stringify(mallory.record));
      forgeAppend(db, entryInput(1000));
    });
    const cp = await w.ctx.store.read((tx) => tx.log.root());
    const note = await signCheckpoint({ origin: w.ctx.config.log.origin, size: 24, root: cp }, mallory.signer, mallory.record);
    tamper(w.db, (db) => db.prepare('INSERT INTO log_checkpoints VALUES (99, 24, ?, ?, ?, ?)').run(cp, note, mallory.record.keyid, new Date().toISOString()));
    assert.equal((await auditVerify(w.ctx)).ok, true, 'trusting the database\'s own key records, the plant works');
    const pinned = await auditVerify(w.ctx, { logKeyFiles: [await w.publicKeyFile()] });
    assert.deepEqual(pick(pinned.finding), { index: 23, kind: 'checkpoint-signature' });
  });
});

describe('offline evidence', () => {
  async function exported(from?: number, to?: number) {
    const w = await logWorkspace();
    await w.sign();
    await w.append(7);
    await w.sign();
    await w.append(1500);
    await w.sign();
    await w.append(2);
    const out = join(await tempDir(), 'evidence.tar');
    const r = await exportEvidence(w.ctx, { out, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
    return { w, out, r, key: await w.publicKeyFile() };
  }

  async function rewrite(file: string, fn: (m: TarMember) => TarMember | undefined): Promise<string> {
    const members: TarMember[] = [];
    await readTar(file, DEFAULT_TAR_LIMITS, (m) => {
      const x = fn(m);
      if (x) members.push(x);
    });
    const out = `${file}.edited.tar`;
    await writeTar(out, members);
    return out;
  }

  it('exports entries, proofs, checkpoints and keys, and verifies with the log key alone', async () => {
    const { out, r, key, w } = await exported();
    assert.equal(r.to, 1507, 'by default up to the latest checkpoint');
    assert.equal(r.checkpoints, 3);
    const report = await verifyEvidence(out, [key]);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
    assert.equal(report.summary?.entries, 1507);
    assert.deepEqual(report.summary?.signedBy, [w.log.record.keyid]);
    // a C2SP vkey works as the key too
    const vkey = join(w.ws.dir, 'log.vkey');
    await writeFile(vkey, logVkey(w.log.record, w.ctx.config.log.origin));
    assert.equal((await verifyEvidence(out, [vkey])).ok, true);
  });

  it('exports a range', async () => {
    const { out, key } = await exported(1000, 1200);
    const report = await verifyEvidence(out, [key]);
    assert.equal(report.ok, true, JSON.stringify(report.finding));
    assert.deepEqual([report.summary?.from, report.summary?.to, report.summary?.entries], [1000, 1200, 200]);
  });

  it('detects an edited entry, a dropped one, a foreign key and a forged checkpoint in the bundle', async () => {
    const { out, key, w } = await exported(0, 1507);
    const edited = await rewrite(out, (m) =>
      m.name.startsWith('entries/1000-') ? { name: m.name, data: Buffer.from(Buffer.from(m.data).toString().replace('"i\\":1005}', '"i\\":1006}')) } : m,
    );
    assert.deepEqual((await verifyEvidence(edited, [key])).finding?.kind, 'entry-edited');
    const dropped = await rewrite(out, (m) =>
      m.name.startsWith('entries/0-') ? { name: m.name, data: Buffer.from(Buffer.from(m.data).toString().split('\n').filter((_, i) => i !== 4).join('\n')) } : m,
    );
    assert.deepEqual((await verifyEvidence(dropped, [key])).finding?.index, 4);
    const otherKey = join(w.ws.dir, 'other.pub');
    await writeFile(otherKey, testKey({ purposes: ['log-checkpoint'] }).record.publicKeyPem);
    assert.equal((await verifyEvidence(out, [otherKey])).finding?.kind, 'checkpoint-signature');
    const forged = await rewrite(out, (m) => {
      if (!m.name.startsWith('checkpoints/')) return m;
      const text = Buffer.from(m.data).toString();
      return { name: m.name, data: Buffer.from(text.replace(/\n\n[\s\S]*$/, `\n\n— ${w.ctx.config.log.origin} ${Buffer.alloc(68, 9).toString('base64')}\n`)) };
    });
    assert.equal((await verifyEvidence(forged, [key])).finding?.kind, 'checkpoint-signature');
  });

  it('refuses malformed bundles and bundles over the size limits, without a workspace', async () => {
    const { out, key } = await exported(0, 10);
    const junk = join(await tempDir(), 'junk.tar');
    await writeFile(junk, 'not a tar at all'.repeat(100));
    await rejectsWithCode(() => verifyEvidence(junk, [key]), 'EVIDENCE_INVALID');
    await rejectsWithCode(() => verifyEvidence(out, [key], { ...DEFAULT_TAR_LIMITS, maxBytes: 1000 }), 'INPUT_TOO_LARGE');
    await rejectsWithCode(() => verifyEvidence(out, [key], { ...DEFAULT_TAR_LIMITS, maxMemberBytes: 100 }), 'INPUT_TOO_LARGE');
    await rejectsWithCode(() => verifyEvidence(out, [key], { ...DEFAULT_TAR_LIMITS, maxMembers: 2 }), 'INPUT_TOO_LARGE');
    const noManifest = await rewrite(out, (m) => (m.name === 'manifest.json' ? undefined : m));
    await rejectsWithCode(() => verifyEvidence(noManifest, [key]), 'EVIDENCE_INVALID');
    const extra = await rewrite(out, (m) => (m.name === 'manifest.json' ? m : { name: m.name.replace(/^checkpoints\//, 'checkpoints/../'), data: m.data }));
    await rejectsWithCode(() => verifyEvidence(extra, [key]), 'EVIDENCE_INVALID');
    await rejectsWithCode(() => verifyEvidence(out, []), 'USAGE');
    const missing = join(await tempDir(), 'missing.tar');
    await rejectsWithCode(() => verifyEvidence(missing, [key]), 'INPUT_NOT_FOUND');
  });

  it('refuses to export entries no checkpoint covers', async () => {
    const w = await logWorkspace();
    await w.append(3);
    await rejectsWithCode(() => exportEvidence(w.ctx, { out: join(w.ws.dir, 'e.tar') }), 'CHECKPOINT_NOT_FOUND');
    await w.sign();
    await w.append(3);
    await rejectsWithCode(() => exportEvidence(w.ctx, { out: join(w.ws.dir, 'e.tar'), to: 5 }), 'CHECKPOINT_NOT_FOUND');
    await rejectsWithCode(() => exportEvidence(w.ctx, { out: join(w.ws.dir, 'e.tar'), from: 3, to: 2 }), 'INPUT_INVALID');
  });
});
