/**
 * The verification pool: many overlapping calls, some merged into one message
 * to a worker, each answered with exactly its own results, in its own order,
 * against exactly the keys it was asked with.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VerifyPool, type WireRequest } from '../../src/adapters/verify-pool.ts';
import type { KeyRecord } from '../../src/core/key.ts';
import { attestationBundle, randomArtifact, statementAbout } from '../fixtures/evidence.ts';
import { testKey } from '../fixtures/keys.ts';

const SIGNED_AT = '2026-01-01T00:00:00.000Z';

interface Case {
  request: WireRequest;
  /** The first reason's code, or 'ok'. */
  expect: string;
}

describe('VerifyPool', () => {
  const pool = new VerifyPool(2);
  after(() => pool.close());
  const alice = testKey({ name: 'alice' });
  const bob = testKey({ name: 'bob' });

  /** Valid, tampered, about another artifact, or too large: each with a known outcome. */
  async function cases(n: number, rotate = 0, signer = alice): Promise<Case[]> {
    const out: Case[] = [];
    for (let j = 0; j < n; j++) {
      const i = j + rotate;
      const art = randomArtifact();
      const body = JSON.stringify(await attestationBundle(statementAbout({ sha256: art.sha256 }, undefined, 200 + i), signer.signer));
      const base = { maxBytes: 1 << 20, artifact: { sha256: art.sha256 }, signedAt: SIGNED_AT };
      switch (i % 4) {
        case 0:
          out.push({ request: { ...base, input: body }, expect: 'ok' });
          break;
        case 1: {
          // The signature's first byte flipped (base64 of the bundle's signature field).
          const b = JSON.parse(body) as { dsseEnvelope: { signatures: { sig: string }[] } };
          const sig = Buffer.from(b.dsseEnvelope.signatures[0]!.sig, 'base64');
          sig[0] = (sig[0] as number) ^ 1;
          b.dsseEnvelope.signatures[0]!.sig = sig.toString('base64');
          out.push({ request: { ...base, input: JSON.stringify(b) }, expect: 'SIGNATURE_INVALID' });
          break;
        }
        case 2:
          out.push({ request: { ...base, input: body, artifact: { sha256: randomArtifact().sha256 } }, expect: 'SUBJECT_MISMATCH' });
          break;
        default:
          out.push({ request: { ...base, input: body, maxBytes: 100 }, expect: 'EVIDENCE_TOO_LARGE' });
      }
    }
    return out;
  }

  function outcome(r: { ok: boolean; reasons: readonly { code: string }[] }): string {
    return r.ok ? 'ok' : (r.reasons[0]?.code ?? 'no reason');
  }

  it('answers a call larger than one message in order, each request with its own outcome', async () => {
    const cs = await cases(300);
    const results = await pool.verifyMany([alice.record], cs.map((c) => c.request));
    assert.deepEqual(results.map(outcome), cs.map((c) => c.expect));
  });

  it('answers many small overlapping calls (merged into shared messages) each with exactly its own results, against its own keys', async () => {
    const aliceKeys: readonly KeyRecord[] = [alice.record];
    const bobKeys: readonly KeyRecord[] = [bob.record];
    // 40 calls of 5 to 7 at once, in runs of two alike (keys, statements asked or not): they queue behind the
    // workers and share messages within a run, never across runs. Each call's outcomes follow their own rotation.
    const run = (k: number) => Math.floor(k / 2);
    const byBob = (k: number) => run(k) % 3 === 1;
    const withStatement = (k: number) => run(k) % 4 < 2;
    const calls = await Promise.all(Array.from({ length: 40 }, async (_, k) => ({ k, cs: await cases(5 + (k % 3), k) })));
    const answers = await Promise.all(calls.map(({ k, cs }) => pool.verifyMany(byBob(k) ? bobKeys : aliceKeys, cs.map((c) => c.request), { withStatement: withStatement(k) })));
    for (const { k, cs } of calls) {
      const got = answers[k]!;
      assert.equal(got.length, cs.length, `call ${k}`);
      // Signed by Alice: with Bob's key only, nothing verifies (signatures are checked before subjects; the oversized one fails unread).
      const want = byBob(k) ? cs.map((c) => (c.expect === 'EVIDENCE_TOO_LARGE' ? c.expect : 'KEY_UNKNOWN')) : cs.map((c) => c.expect);
      assert.deepEqual(got.map(outcome), want, `call ${k}`);
      for (const [i, r] of got.entries()) {
        if (!withStatement(k)) {
          assert.equal(r.statementJson, undefined, `call ${k}, request ${i}`);
          continue;
        }
        if (!r.ok) continue;
        // Its own statement: about the digest this very request named.
        const st = JSON.parse(r.statementJson ?? 'null') as { subject: { digest: { sha256: string } }[] } | null;
        assert.equal(st?.subject[0]?.digest.sha256, cs[i]!.request.artifact.sha256, `call ${k}, request ${i}`);
      }
    }
  });
});
