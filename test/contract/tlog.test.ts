/** The log repository's tree, proofs and checkpoints: the same contract on every store. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { canonicalJson } from '../../src/core/canonical.ts';
import type { LogEntryInput } from '../../src/core/ports.ts';
import { consistencyRanges, entryLeaf, inclusionRanges, leafHash, verifyConsistency, verifyInclusion } from '../../src/core/tlog/index.ts';
import { rejectsWithCode } from '../helpers.ts';
import { recomputed } from './samples.ts';
import { forEachStore } from './stores.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function entry(i: number, subject?: string): LogEntryInput {
  return { type: 'test.appended', actor: 'tester@example.com', time: '2026-01-01T00:00:00.000Z', ...(subject === undefined ? {} : { subject }), payload: { i } };
}

forEachStore((h) => {
  it('appends entries with their leaves and subtree hashes; roots and proofs from storage match the recomputed tree', async () => {
    const { store } = await h.fresh();
    // Batches of varying size, including single-entry transactions.
    let n = 0;
    for (const batch of [1, 1, 3, 8, 1, 20, 37]) {
      await store.transaction(async (tx) => {
        for (let j = 0; j < batch; j++) {
          const e = await tx.log.append(entry(n));
          assert.equal(e.index, n);
          assert.equal(e.id, `${n}-${e.leafHash.slice(0, 32)}`);
          assert.equal(e.leafHash, hex(entryLeaf(e.body)));
          assert.equal(e.body, canonicalJson({ index: n, ...entry(n) }));
          n++;
        }
      });
    }
    const { size, roots } = await recomputed(store);
    assert.equal(size, 71);
    await store.read(async (tx) => {
      assert.equal(await tx.log.size(), 71);
      for (let s = 0; s <= 71; s++) assert.equal(hex(await tx.log.root(s)), hex(roots[s]!), `root at ${s}`);
      for (const s of [1, 2, 5, 8, 16, 33, 64, 70, 71]) {
        for (const i of [0, 1, Math.floor(s / 2), s - 1]) {
          if (i >= s) continue;
          const proof = await tx.log.inclusionProof(i, s);
          assert.equal(proof.length, inclusionRanges(i, s).length);
          const leaf = Buffer.from((await tx.log.byIndex(i))!.leafHash, 'hex');
          assert.deepEqual(verifyInclusion(i, s, leaf, proof, roots[s]!), { ok: true }, `inclusion ${i}/${s}`);
        }
        for (const a of [1, 3, s]) {
          if (a > s) continue;
          const proof = await tx.log.consistencyProof(a, s);
          assert.equal(proof.length, consistencyRanges(a, s).length);
          assert.deepEqual(verifyConsistency(a, s, proof, roots[a]!, roots[s]!), { ok: true }, `consistency ${a}→${s}`);
        }
      }
      await rejectsWithCode(() => tx.log.inclusionProof(71, 71), 'LOG_ENTRY_NOT_FOUND');
      await rejectsWithCode(() => tx.log.root(72), 'LOG_ENTRY_NOT_FOUND');
      // each leaf's row holds the subtrees it completes: one per trailing 1-bit of its index; n - 1 in all for n = 64
      const rows = await tx.log.leaves(0, 1000);
      for (const r of rows) {
        let ones = 0;
        for (let i = r.index; i % 2 === 1; i = (i - 1) / 2) ones++;
        assert.equal(r.nodes.length, ones * 32, `nodes of leaf ${r.index}`);
      }
      assert.equal(rows.slice(0, 64).reduce((n, r) => n + r.nodes.length / 32, 0), 63);
    });
    await store.close();
  });

  it('finds entries by index, by id (both parts must match) and by subject', async () => {
    const { store } = await h.fresh();
    const digest = `sha256:${'a'.repeat(64)}`;
    const ids = await store.transaction(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 40; i++) out.push((await tx.log.append(entry(i, i % 3 === 0 ? digest : `sha256:${i.toString(16).padStart(64, '0')}`))).id);
      return out;
    });
    await store.read(async (tx) => {
      const e = await tx.log.byId(ids[5]!);
      assert.equal(e?.index, 5);
      assert.equal(await tx.log.byId(ids[5]!.replace(/^5-/, '6-')), undefined, 'an id names one position');
      assert.equal(await tx.log.byId(`5-${'0'.repeat(32)}`), undefined, 'and one content');
      assert.equal(await tx.log.byId('garbage'), undefined);
      assert.equal(await tx.log.byIndex(-1), undefined);
      assert.equal(await tx.log.byIndex(40), undefined);
      const history = await tx.log.bySubject(digest);
      assert.deepEqual(history.map((h) => h.index), [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39]);
      assert.equal((await tx.log.bySubject('sha256:none')).length, 0);
      assert.deepEqual((await tx.log.range(38, 10)).map((r) => r.index), [38, 39]);
    });
    await store.close();
  });

  it('keeps the tree right across rolled-back transactions and another connection appending', async () => {
    const { store: a, open } = await h.fresh();
    const b = await open();
    await a.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.log.append(entry(i));
    });
    // a: appends three more, then the use case fails: all rolled back
    await assert.rejects(
      a.transaction(async (tx) => {
        for (let i = 0; i < 3; i++) await tx.log.append(entry(100 + i));
        throw new Error('use case failed');
      }),
    );
    // b (another connection) appends to exactly the size a's cached tree had reached
    await b.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await tx.log.append(entry(200 + i));
    });
    await a.transaction(async (tx) => {
      assert.equal((await tx.log.append(entry(300))).index, 8);
    });
    await b.transaction(async (tx) => {
      assert.equal((await tx.log.append(entry(301))).index, 9);
    });
    await a.transaction(async (tx) => {
      assert.equal((await tx.log.append(entry(302))).index, 10);
    });
    const { size, root } = await recomputed(a);
    assert.equal(size, 11);
    assert.equal(hex(await a.read((tx) => tx.log.root())), hex(root));
    assert.equal(hex(await b.read((tx) => tx.log.root())), hex(root));
    await a.close();
    await b.close();
  });

  it('stores every checkpoint and pages through them by size', async () => {
    const { store } = await h.fresh();
    const root = leafHash(Buffer.from('r'));
    await store.transaction(async (tx) => {
      for (const size of [0, 1, 1, 5, 9]) await tx.log.addCheckpoint({ size, root, note: `n${size}`, keyid: 'k', createdAt: '2026-01-01T00:00:00.000Z' });
    });
    await store.read(async (tx) => {
      const latest = await tx.log.latestCheckpoint();
      assert.equal(latest?.size, 9);
      const page1 = await tx.log.checkpoints(undefined, 2);
      assert.deepEqual(page1.map((c) => [c.size, c.seq]), [
        [0, 1],
        [1, 2],
      ]);
      const page2 = await tx.log.checkpoints({ size: 1, seq: 2 }, 10);
      assert.deepEqual(page2.map((c) => [c.size, c.seq]), [
        [1, 3],
        [5, 4],
        [9, 5],
      ]);
      assert.deepEqual((await tx.log.checkpointBySeq(4))?.root, new Uint8Array(root));
    });
    await store.transaction((tx) => tx.log.updateCheckpointNote(5, 'n9+cosigned'));
    assert.equal((await store.read((tx) => tx.log.latestCheckpoint()))?.note, 'n9+cosigned');
    await store.close();
  });
});
