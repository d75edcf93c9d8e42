/** The artifact repository's contract, on every store. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isUniqueViolation } from '../../src/core/errors.ts';
import { rejectsWithCode } from '../helpers.ts';
import { artifact } from './samples.ts';
import { forEachStore } from './stores.ts';

forEachStore((h) => {
  it('round-trips every field of an artifact exactly', async () => {
    const { store } = await h.fresh();
    const full = artifact(1, {
      labels: { tier: 'critical', team: 'pay-ments', 'app.kubernetes.io/name': 'app' },
      source: { repository: 'https://github.com/acme/app', commit: 'abcdef1' },
    });
    const bare = artifact(2, { name: 'pkg:oci/app', size: null, digests: { sha256: artifact(2).digests.sha256! }, stored: false });
    await store.transaction(async (tx) => {
      await tx.artifacts.insert(full);
      await tx.artifacts.insert(bare);
    });
    await store.read(async (tx) => {
      assert.deepEqual(await tx.artifacts.byDigest(full.digest), full);
      assert.deepEqual(await tx.artifacts.byDigest(bare.digest), bare);
      assert.deepEqual(await tx.artifacts.byNameVersion(full.name, full.version), full);
    });
  });

  it('keeps sizes beyond 32 bits exact', async () => {
    const { store } = await h.fresh();
    const sizes = [0, 2 ** 32 + 1, 64 * 1024 ** 3 + 7, Number.MAX_SAFE_INTEGER];
    await store.transaction(async (tx) => {
      for (const [i, size] of sizes.entries()) await tx.artifacts.insert(artifact(i, { size }));
    });
    const got = await store.read(async (tx) => Promise.all(sizes.map(async (_, i) => (await tx.artifacts.byDigest(artifact(i).digest))?.size)));
    assert.deepEqual(got, sizes);
  });

  it('answers undefined for what is not there', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    await store.read(async (tx) => {
      assert.equal(await tx.artifacts.byDigest(artifact(2).digest), undefined);
      assert.equal(await tx.artifacts.byNameVersion('pkg:npm/app', '9.9.9'), undefined);
      assert.equal(await tx.artifacts.byNameVersion('pkg:npm/other', artifact(1).version), undefined);
      assert.deepEqual(await tx.artifacts.versionsOf('pkg:npm/other'), []);
    });
  });

  it('maps one name and version to one digest, and one digest to one artifact', async () => {
    const { store } = await h.fresh();
    await store.transaction((tx) => tx.artifacts.insert(artifact(1)));
    // Another version of the same name and the same version of another name are fine.
    await store.transaction(async (tx) => {
      await tx.artifacts.insert(artifact(2));
      await tx.artifacts.insert(artifact(3, { name: 'pkg:npm/other', version: artifact(1).version }));
    });
    const moved = await rejectsWithCode(() => store.transaction((tx) => tx.artifacts.insert(artifact(4, { version: artifact(1).version }))), 'STORE_ERROR');
    assert.ok(isUniqueViolation(moved, 'artifacts'));
    const renamed = await rejectsWithCode(() => store.transaction((tx) => tx.artifacts.insert(artifact(1, { name: 'pkg:npm/third' }))), 'STORE_ERROR');
    assert.ok(isUniqueViolation(renamed, 'artifacts'));
    assert.equal((await store.read((tx) => tx.artifacts.list())).length, 3);
  });

  it('lists versions of a name newest first', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      for (const n of [3, 1, 2]) await tx.artifacts.insert(artifact(n));
      await tx.artifacts.insert(artifact(9, { name: 'pkg:npm/other' }));
    });
    const versions = await store.read((tx) => tx.artifacts.versionsOf('pkg:npm/app'));
    assert.deepEqual(versions.map((a) => a.version), ['1.0.3', '1.0.2', '1.0.1']);
  });

  it('lists newest first, filters by name and by every given label, and honours the limit', async () => {
    const { store } = await h.fresh();
    await store.transaction(async (tx) => {
      await tx.artifacts.insert(artifact(1, { labels: { tier: 'critical', team: 'a' } }));
      await tx.artifacts.insert(artifact(2, { labels: { tier: 'critical', team: 'b' } }));
      await tx.artifacts.insert(artifact(3, { name: 'pkg:npm/other', labels: { tier: 'low' } }));
      // Same creation time: the order falls back to name, then version.
      await tx.artifacts.insert(artifact(4, { name: 'pkg:npm/b', createdAt: artifact(3).createdAt }));
    });
    await store.read(async (tx) => {
      assert.deepEqual((await tx.artifacts.list()).map((a) => `${a.name}@${a.version}`), ['pkg:npm/b@1.0.4', 'pkg:npm/other@1.0.3', 'pkg:npm/app@1.0.2', 'pkg:npm/app@1.0.1']);
      assert.deepEqual((await tx.artifacts.list({ name: 'pkg:npm/app' })).map((a) => a.version), ['1.0.2', '1.0.1']);
      assert.deepEqual((await tx.artifacts.list({ label: { tier: 'critical' } })).map((a) => a.version), ['1.0.2', '1.0.1']);
      assert.deepEqual((await tx.artifacts.list({ label: { tier: 'critical', team: 'a' } })).map((a) => a.version), ['1.0.1']);
      assert.deepEqual(await tx.artifacts.list({ label: { tier: 'none' } }), []);
      assert.equal((await tx.artifacts.list({ limit: 2 })).length, 2);
      assert.equal((await tx.artifacts.list({ limit: 0 })).length, 1);
      assert.equal((await tx.artifacts.list({ limit: -5 })).length, 1);
    });
  });

  it('filters by label over the whole table, newest first, across pages and ties in creation time', async () => {
    const { store } = await h.fresh();
    // 1,300 artifacts, three per second (so a page of rows can end inside a tie), every seventh critical.
    const all = Array.from({ length: 1300 }, (_, i) =>
      artifact(10_000 + i, { name: `pkg:npm/n${i % 3}`, createdAt: new Date(Date.UTC(2025, 0, 1) + Math.floor(i / 3) * 1000).toISOString(), labels: { tier: i % 7 === 0 ? 'critical' : 'low' } }),
    );
    await store.transaction(async (tx) => {
      for (const a of all) await tx.artifacts.insert(a);
    });
    const newestFirst = [...all].reverse().sort((a, b) => (a.createdAt === b.createdAt ? (a.name < b.name ? -1 : 1) : a.createdAt < b.createdAt ? 1 : -1));
    const critical = newestFirst.filter((a) => a.labels['tier'] === 'critical').map((a) => a.digest);
    await store.read(async (tx) => {
      // Not the critical ones among the newest 150: the newest 150 critical ones (they reach back past a thousand rows).
      assert.deepEqual((await tx.artifacts.list({ label: { tier: 'critical' }, limit: 150 })).map((a) => a.digest), critical.slice(0, 150));
      assert.deepEqual((await tx.artifacts.list({ label: { tier: 'critical' }, limit: 10_000 })).map((a) => a.digest), critical);
      assert.deepEqual(
        (await tx.artifacts.list({ name: 'pkg:npm/n1', label: { tier: 'critical' } })).map((a) => a.digest),
        newestFirst.filter((a) => a.name === 'pkg:npm/n1' && a.labels['tier'] === 'critical').map((a) => a.digest),
      );
      assert.deepEqual((await tx.artifacts.list({ limit: 700 })).map((a) => a.digest), newestFirst.slice(0, 700).map((a) => a.digest));
    });
  });

  it('stores hostile strings as data', async () => {
    const { store } = await h.fresh();
    const hostile = artifact(1, {
      name: "pkg:npm/a'); DROP TABLE artifacts; --",
      labels: { note: '?\u0027"\\ $1 ? 🔥 ünï' },
      createdBy: "robert'); --@example.com",
    });
    await store.transaction((tx) => tx.artifacts.insert(hostile));
    assert.deepEqual(await store.read((tx) => tx.artifacts.byNameVersion(hostile.name, hostile.version)), hostile);
    assert.deepEqual(await store.read((tx) => tx.artifacts.list({ name: hostile.name })), [hostile]);
  });
});
