import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogAuditor, entryBody, entryLeaf, logNoteVerifierFor, signCheckpoint, CompactRange } from '../../../src/core/tlog/index.ts';
import { testKey } from '../../fixtures/keys.ts';

const ORIGIN = 'custody.test/audit';
const log = testKey({ purposes: ['log-checkpoint'] });
const verifiers = [logNoteVerifierFor(log.record, ORIGIN)!];

function body(i: number, actor = 'a@example.com'): string {
  return entryBody(i, { type: 'test.entry', actor, time: '2026-01-01T00:00:00.000Z', payload: { i } });
}

/** Feeds bodies with their true leaves and subtree hashes, as an honest store would record them. */
function feed(a: LogAuditor, bodies: string[]) {
  const t = new CompactRange();
  for (const [i, b] of bodies.entries()) {
    const leaf = entryLeaf(b);
    const parts: Uint8Array[] = [];
    t.append(leaf, (level, _index, h) => {
      if (level > 0) parts.push(h);
    });
    const f = a.entry(i, b, leaf, Buffer.concat(parts));
    if (f) return f;
  }
  return undefined;
}

describe('LogAuditor', () => {
  it('reads the index a body names, fast for canonical bodies, by parsing otherwise', () => {
    const tricky = [body(0, 'a\\"b'), body(1, '"'), body(2, 'x","index":7,"y'), JSON.stringify({ index: 3, type: 'test.entry', actor: 'a', time: 't', payload: {} }, null, 1)];
    assert.equal(feed(new LogAuditor({ origin: ORIGIN, verifiers }), tricky), undefined);
    const f = feed(new LogAuditor({ origin: ORIGIN, verifiers }), [body(0), body(5)]);
    assert.deepEqual([f?.index, f?.kind], [1, 'entry-moved']);
    for (const bad of ['{"actor":"a","index":01,"payload":{},"time":"t","type":"a.b"}', 'not json', '{"index":1}', '[]']) {
      const g = feed(new LogAuditor({ origin: ORIGIN, verifiers }), [body(0), bad]);
      assert.deepEqual([g?.index, g?.kind], [1, 'entry-edited'], bad);
    }
  });

  it('checks checkpoints at their size, flags trees beyond the log, outside checkpoints and unvouched tails', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => body(i));
    const a = new LogAuditor({ origin: ORIGIN, verifiers });
    feed(a, bodies.slice(0, 4));
    const note4 = await signCheckpoint({ origin: ORIGIN, size: 4, root: a.root }, log.signer, log.record);
    assert.equal(a.checkpoint({ seq: 1, size: 4, note: note4 }), undefined);
    assert.equal(a.vouched.size, 4);
    const t = new CompactRange();
    for (const b of bodies) t.append(entryLeaf(b));
    const note6 = await signCheckpoint({ origin: ORIGIN, size: 6, root: t.root() }, log.signer, log.record);
    const beyond = a.checkpoint({ seq: 2, size: 6, note: note6 });
    assert.deepEqual([beyond?.index, beyond?.kind], [4, 'truncated']);
    assert.deepEqual([a.checkpoint({ size: 6, note: note6, source: 'witness' })?.kind], ['rollback']);
    assert.equal(a.finish(), undefined, 'everything fed is vouched for');
    const b = new LogAuditor({ origin: ORIGIN, verifiers });
    feed(b, bodies);
    assert.equal(b.checkpoint({ seq: 1, size: 6, note: note6 }), undefined);
    const more = body(6);
    b.entry(6, more, entryLeaf(more));
    assert.deepEqual(b.finish()?.range, { from: 6, to: 7 });
  });

  it('reports a stored subtree hash that is missing or extra', () => {
    const a = new LogAuditor({ origin: ORIGIN, verifiers });
    const b0 = body(0);
    const b1 = body(1);
    assert.equal(a.entry(0, b0, entryLeaf(b0), new Uint8Array(0)), undefined);
    const f = a.entry(1, b1, entryLeaf(b1), new Uint8Array(0));
    assert.deepEqual([f?.index, f?.kind, f?.range], [0, 'node-mismatch', { from: 0, to: 2 }]);
    const c = new LogAuditor({ origin: ORIGIN, verifiers });
    const g = c.entry(0, b0, entryLeaf(b0), new Uint8Array(32));
    assert.deepEqual([g?.index, g?.kind], [0, 'node-mismatch']);
  });
});
