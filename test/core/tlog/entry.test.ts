import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../../src/core/canonical.ts';
import { entryBody, entryId, entryLeaf, parseEntryBody, parseEntryId } from '../../../src/core/tlog/entry.ts';
import { leafHash } from '../../../src/core/tlog/hash.ts';
import { throwsWithCode } from '../../helpers.ts';

describe('log entry bodies', () => {
  it('are exactly the RFC 8785 canonical JSON of the whole entry (fast envelope, general payload)', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.string(),
        fc.string(),
        fc.option(fc.string(), { nil: undefined }),
        fc.dictionary(fc.string(), json),
        (index, actor, time, subject, payload) => {
          const e = { type: 'artifact.added', actor, time, ...(subject === undefined ? {} : { subject }), payload };
          const body = entryBody(index, e);
          assert.equal(body, canonicalJson({ index, ...e }));
          assert.deepEqual(parseEntryBody(body), JSON.parse(canonicalJson({ index, ...e })));
        },
      ),
    );
  });

  it('canonicalise any payload exactly as the canonicalize library does, or refuse what it refuses', () => {
    const str = fc.string({ unit: 'binary', maxLength: 12 });
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        str,
        fc.double(),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(str, tie('v'), { maxKeys: 4 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(str, value, { maxKeys: 5 }), str, (payload, actor) => {
        let expected: string | undefined;
        try {
          expected = canonicalJson({ actor, index: 3, payload, time: 't', type: 'a.b' });
        } catch {
          expected = undefined;
        }
        let got: string | undefined;
        try {
          got = entryBody(3, { type: 'a.b', actor, time: 't', payload });
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'INPUT_INVALID');
          got = undefined;
        }
        assert.equal(got, expected);
      }),
      { numRuns: 500 },
    );
    // toJSON is honoured, as JSON.stringify and the library do
    assert.equal(entryBody(0, { type: 'a.b', actor: 'x', time: 't', payload: { at: new Date(0) } }), canonicalJson({ actor: 'x', index: 0, payload: { at: new Date(0) }, time: 't', type: 'a.b' }));
  });

  it('hash to an RFC 6962 leaf of their UTF-8 bytes, and name their own index', () => {
    const body = entryBody(7, { type: 'key.created', actor: 'ä@example.com', time: '2026-01-01T00:00:00.000Z', payload: { note: '✓' } });
    assert.deepEqual(entryLeaf(body), leafHash(Buffer.from(body, 'utf8')));
    assert.equal(parseEntryBody(body).index, 7);
  });

  it('refuse bad types and payloads', () => {
    const base = { actor: 'a', time: 't', payload: {} };
    for (const type of ['Artifact.added', 'artifact', 'artifact.', '.added', 'artifact added']) {
      throwsWithCode(() => entryBody(0, { ...base, type }), 'INPUT_INVALID');
    }
    throwsWithCode(() => entryBody(0, { ...base, type: 'a.b', payload: [] as unknown as Record<string, unknown> }), 'INPUT_INVALID');
    assert.doesNotThrow(() => entryBody(0, { ...base, type: 'promotion.awaiting-approval' }));
  });

  it('read back only what is an entry', () => {
    for (const body of ['', 'null', '[]', '{"index":"1"}', '{"index":1,"type":"a.b","actor":"x","time":"t"}', '{"index":1,"type":"a.b","actor":"x","time":"t","payload":[]}']) {
      throwsWithCode(() => parseEntryBody(body), 'LOG_TAMPERED');
    }
  });
});

describe('entry ids', () => {
  it('are <index>-<16 bytes of the leaf hash> and parse back', () => {
    const leaf = leafHash(Buffer.from('x'));
    const id = entryId(42, leaf);
    assert.match(id, /^42-[0-9a-f]{32}$/);
    assert.deepEqual(parseEntryId(id), { index: 42, leafPrefix: new Uint8Array(Buffer.from(leaf.subarray(0, 16))) });
    for (const bad of ['42', '042-' + 'a'.repeat(32), '42-' + 'A'.repeat(32), '42-' + 'a'.repeat(31), '-1-' + 'a'.repeat(32), `${'9'.repeat(17)}-${'a'.repeat(32)}`]) {
      assert.equal(parseEntryId(bad), undefined, bad);
    }
  });
});
