/** The evidence repository's contract, on every store. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { DigestString } from '../../src/core/digest.ts';
import type { StoredEvidence } from '../../src/core/evidence.ts';
import { hex } from './samples.ts';
import { forEachStore } from './stores.ts';

const A = `sha256:${hex('a')}`;
const A512 = `sha512:${hex('a')}${hex('a')}`;
const B = `sha256:${hex('b')}`;
const PROVENANCE = 'https://slsa.dev/provenance/v1';
const TESTS = 'https://in-toto.io/attestation/test-result/v0.1';

function evidence(n: number, subjects: string[], over: Partial<StoredEvidence> = {}): StoredEvidence {
  const body = JSON.stringify({ n, subjects });
  return {
    digest: `sha256:${hex(body)}` as DigestString,
    kind: 'attestation',
    format: 'bundle',
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    predicateType: PROVENANCE,
    signers: ['k1'],
    signedAt: `2026-03-10T10:00:0${n}.000Z`,
    storedAt: `2026-03-10T10:00:0${n}.000Z`,
    storedBy: 'ci:acme',
    source: 'attested',
    expect: null,
    subjects,
    size: body.length,
    body,
    ...over,
  };
}

forEachStore((h) => {
  it('finds evidence by any of its subjects, oldest first, once each, filtered by predicate type', async () => {
    const { store } = await h.fresh();
    const first = evidence(1, [A, A512]);
    const second = evidence(2, [A], { predicateType: TESTS, expect: { identity: 'https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' } });
    const other = evidence(3, [B]);
    await store.transaction(async (tx) => {
      // Stored newest first: the order comes from stored_at, not from insertion.
      for (const e of [second, other, first]) await tx.evidence.insert(e);
    });
    await store.read(async (tx) => {
      assert.deepEqual(await tx.evidence.forSubjects([A, A512]), [first, second]);
      assert.deepEqual(await tx.evidence.forSubjects([A512]), [first]);
      assert.deepEqual(await tx.evidence.forSubjects([A], TESTS), [second]);
      assert.deepEqual(await tx.evidence.forSubjects([]), []);
      assert.deepEqual(await tx.evidence.byDigest(other.digest), other);
      // The subject index alone: the same pieces, each once.
      assert.deepEqual((await tx.evidence.digestsForSubjects([A, A512])).sort(), [first.digest, second.digest].sort());
      assert.deepEqual(await tx.evidence.digestsForSubjects([B]), [other.digest]);
      assert.deepEqual(await tx.evidence.digestsForSubjects([`sha256:${hex('none')}`]), []);
      assert.deepEqual(await tx.evidence.digestsForSubjects([]), []);
    });
  });
});
