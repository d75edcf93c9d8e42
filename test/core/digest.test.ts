import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesEqual, digestEquals, formatDigest, isDigestString, parseDigest } from '../../src/core/digest.ts';
import { throwsWithCode } from '../helpers.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'a'.repeat(63)}b`;

describe('digest', () => {
  it('parses and formats canonical digests', () => {
    assert.deepEqual(parseDigest(A), { algorithm: 'sha256', hex: 'a'.repeat(64) });
    assert.equal(formatDigest(parseDigest(`sha512:${'0'.repeat(128)}`)), `sha512:${'0'.repeat(128)}`);
    assert.equal(isDigestString(A), true);
  });

  for (const bad of ['', 'sha256:', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `md5:${'a'.repeat(32)}`, `sha256:${'g'.repeat(64)}`, ` ${A}`, `${A}\n`, `sha512:${'a'.repeat(64)}`]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 20))}… with DIGEST_INVALID`, () => {
      throwsWithCode(() => parseDigest(bad), 'DIGEST_INVALID');
      assert.equal(isDigestString(bad), false);
    });
  }

  it('compares equal digests, and never across algorithms or malformed input', () => {
    assert.equal(digestEquals(A, A), true);
    assert.equal(digestEquals(A, B), false);
    assert.equal(digestEquals(A, `sha512:${'a'.repeat(128)}`), false);
    assert.equal(digestEquals(A, 'garbage'), false);
    assert.equal(digestEquals(parseDigest(A), A), true);
  });

  it('compares bytes of different lengths as unequal without throwing', () => {
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false);
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  });
});
