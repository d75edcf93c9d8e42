import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateToken, parseToken, secretMatches, tokenStatus } from '../../src/core/token.ts';

describe('API tokens', () => {
  it('has a public id and a 256-bit secret, stored only as a salted hash', () => {
    const a = generateToken();
    const b = generateToken();
    assert.match(a.token, /^cst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseToken(a.token);
    assert.equal(parsed?.id, a.id);
    assert.ok(!a.hash.includes(parsed?.secret ?? '?'));
    assert.ok(secretMatches(a, parsed?.secret ?? ''));
    assert.ok(!secretMatches(b, parsed?.secret ?? ''), 'another salt, another hash');
    assert.notEqual(a.salt, b.salt);
  });

  it('refuses anything not shaped like a token', () => {
    for (const s of ['', 'cst_', 'cst_0123_abc', `cst_0123456789ABCDEF_${'a'.repeat(43)}`, `cst_0123456789abcdef_${'a'.repeat(44)}`, `xcst_0123456789abcdef_${'a'.repeat(43)}`]) {
      assert.equal(parseToken(s), undefined, s);
    }
  });

  it('is active, then expired at its expiry instant, and revoked whatever its expiry', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    assert.equal(tokenStatus({ expiresAt: null, revokedAt: null }, at), 'active');
    assert.equal(tokenStatus({ expiresAt: '2026-01-01T00:00:00.001Z', revokedAt: null }, at), 'active');
    assert.equal(tokenStatus({ expiresAt: '2026-01-01T00:00:00.000Z', revokedAt: null }, at), 'expired');
    assert.equal(tokenStatus({ expiresAt: null, revokedAt: '2025-01-01T00:00:00Z' }, at), 'revoked');
  });
});
