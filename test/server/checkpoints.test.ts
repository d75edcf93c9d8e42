/** The server as a long-running batcher for the log: a checkpoint after requests that append, at most once per interval. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckpointScheduler, signWorkspaceCheckpoint } from '../../src/app/log.ts';
import type { Context } from '../../src/app/workspace.ts';
import { NOTICE_HEADER } from '../../src/server/app.ts';
import { testKey } from '../fixtures/keys.ts';
import { api } from './fixture.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describe('server checkpoints', () => {
  it('signs after the first request that appends, then coalesces the requests of the interval', async () => {
    const log = testKey({ name: 'log', purposes: ['log-checkpoint'] });
    let now = Date.parse('2026-03-01T12:00:00Z');
    const server: { ctx?: Context } = {};
    // The server's scheduler, with the fixture key instead of a KEK-protected one, and a clock the test moves.
    const scheduler = new CheckpointScheduler({
      sign: () => signWorkspaceCheckpoint(server.ctx!, { signer: { key: log.record, signer: log.signer } }),
      clock: { now: () => new Date(now) },
      intervalMs: 1000,
      setTimer: () => ({ cancel: () => undefined }),
    });
    const t = await api({ appDeps: { checkpoints: scheduler }, logKey: false });
    server.ctx = t.ctx;
    await t.ctx.store.transaction((tx) => tx.keys.insert(log.record, null));
    const builder = await t.token(['builder']);
    const add = (n: number) => t.request('POST', '/v1/artifacts', { token: builder, json: { digest: digest(n), name: 'pkg:oci/app', version: `1.0.${n}` } });
    const size = () => t.ctx.store.read((tx) => tx.log.size());
    const latest = () => t.ctx.store.read((tx) => tx.log.latestCheckpoint());

    const first = await add(1);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get(NOTICE_HEADER), null);
    assert.equal((await latest())?.size, await size(), 'the first batch is signed at once');
    now += 100;
    await add(2);
    await add(3);
    assert.ok(((await latest())?.size ?? 0) < (await size()), 'inside the interval: no new checkpoint yet');
    now += 1000;
    await scheduler.flush();
    assert.equal((await latest())?.size, await size(), 'the interval is up (or the server stops): everything is covered');
    const checkpoints = await t.ctx.store.read((tx) => tx.log.checkpoints(undefined, 100));
    assert.equal(checkpoints.length, 2, 'three requests, two checkpoints');
  });

  it('tells the caller, in a header the CLI prints, when no log key can sign', async () => {
    const t = await api({ logKey: false });
    const builder = await t.token(['builder']);
    const r = await t.request('POST', '/v1/artifacts', { token: builder, json: { digest: digest(7), name: 'pkg:oci/app', version: '1.0.0' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get(NOTICE_HEADER) ?? '', /^note: new log entries wait for a signed checkpoint: /);
    const list = await t.request('GET', '/v1/artifacts', { token: builder });
    assert.equal(list.headers.get(NOTICE_HEADER), null, 'nothing appended, nothing said');
  });
});
