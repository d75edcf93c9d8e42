import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseSigningKey,
  keyMaySign,
  keyStateAt,
  keyValidAt,
  needsKeyAdmin,
  newKeyRecord,
  parseKeyAddress,
  parseKeyAlgorithm,
  parseKeyPurposes,
  parseRevocationReason,
  retireKey,
  revokeKey,
  selectVersion,
  validateKeyName,
  validateKeyid,
  validityLength,
  type KeyRecord,
} from '../../src/core/key.ts';
import { throwsWithCode } from '../helpers.ts';
import { testKey } from '../fixtures/keys.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-02-01T00:00:00.000Z';
const at = (iso: string) => new Date(iso);
const ms = (iso: string, delta: number) => new Date(Date.parse(iso) + delta);

function key(over: Partial<KeyRecord> = {}): KeyRecord {
  return { ...testKey({ notBefore: T0, notAfter: T1, purposes: ['attest'] }).record, ...over };
}

describe('keyValidAt: the validity window', () => {
  it('includes notBefore and excludes notAfter, to the millisecond', () => {
    const k = key();
    assert.equal(keyValidAt(k, 'attest', ms(T0, -1)).code, 'KEY_NOT_YET_VALID');
    assert.equal(keyValidAt(k, 'attest', at(T0)).ok, true);
    assert.equal(keyValidAt(k, 'attest', ms(T1, -1)).ok, true);
    assert.equal(keyValidAt(k, 'attest', at(T1)).code, 'KEY_EXPIRED');
  });

  it('has no end when notAfter is null', () => {
    assert.equal(keyValidAt(key({ notAfter: null }), 'attest', at('2999-01-01T00:00:00Z')).ok, true);
  });

  it('refuses a purpose the key was not made for', () => {
    const v = keyValidAt(key(), 'policy', at(T0));
    assert.equal(v.ok, false);
    assert.equal(v.code, 'KEY_PURPOSE');
  });

  it('verifies a retired key before retiredAt (exclusive) and not at or after it', () => {
    const r = '2026-01-15T00:00:00.000Z';
    const k = key({ status: 'retired', retiredAt: r });
    assert.equal(keyValidAt(k, 'attest', ms(r, -1)).ok, true);
    assert.equal(keyValidAt(k, 'attest', at(r)).code, 'KEY_RETIRED');
  });

  it('treats compromisedSince equal to the signing time as invalid, one millisecond before as valid', () => {
    const since = '2026-01-10T12:00:00.000Z';
    const k = key({ status: 'revoked', revokedAt: '2026-01-20T00:00:00.000Z', compromisedSince: since, revocationReason: 'compromised' });
    assert.equal(keyValidAt(k, 'attest', ms(since, -1)).ok, true);
    const v = keyValidAt(k, 'attest', at(since));
    assert.equal(v.ok, false);
    assert.equal(v.code, 'KEY_COMPROMISED');
    assert.equal(keyValidAt(k, 'attest', at('2026-01-25T00:00:00Z')).code, 'KEY_COMPROMISED');
  });

  it('falls back to revokedAt when a revoked key has no compromisedSince', () => {
    const k = key({ status: 'revoked', revokedAt: '2026-01-20T00:00:00.000Z', compromisedSince: null, revocationReason: 'superseded' });
    assert.equal(keyValidAt(k, 'attest', ms('2026-01-20T00:00:00.000Z', -1)).ok, true);
    assert.equal(keyValidAt(k, 'attest', at('2026-01-20T00:00:00.000Z')).ok, false);
  });
});

describe('keyMaySign', () => {
  it('never lets a revoked key sign, even for an instant before its compromise', () => {
    const k = key({ status: 'revoked', revokedAt: '2026-01-20T00:00:00.000Z', compromisedSince: '2026-01-19T00:00:00.000Z' });
    assert.equal(keyValidAt(k, 'attest', at('2026-01-05T00:00:00Z')).ok, true);
    assert.equal(keyMaySign(k, 'attest', at('2026-01-05T00:00:00Z')).code, 'KEY_REVOKED');
  });

  it('never lets an external key sign', () => {
    assert.equal(keyMaySign(key({ backend: 'external' }), 'attest', at(T0)).ok, false);
  });

  it('lets a retired version sign until its overlap ends', () => {
    const k = key({ status: 'retired', retiredAt: '2026-01-08T00:00:00.000Z' });
    assert.equal(keyMaySign(k, 'attest', ms('2026-01-08T00:00:00.000Z', -1)).ok, true);
    assert.equal(keyMaySign(k, 'attest', at('2026-01-08T00:00:00.000Z')).code, 'KEY_RETIRED');
  });
});

describe('lifecycle transitions', () => {
  const now = at('2026-01-05T00:00:00.000Z');

  it('retires from a given instant, only ever moving the end closer', () => {
    const week = ms(now.toISOString(), 7 * 86_400_000);
    const r = retireKey(key(), week, now);
    assert.equal(r.status, 'retired');
    assert.equal(r.retiredAt, week.toISOString());
    const later = retireKey(r, ms(now.toISOString(), 30 * 86_400_000), now);
    assert.equal(later.retiredAt, week.toISOString(), 'a longer overlap does not extend an earlier one');
    const sooner = retireKey(r, now, now);
    assert.equal(sooner.retiredAt, now.toISOString());
    throwsWithCode(() => retireKey(sooner, now, now), 'KEY_STATE_INVALID');
  });

  it('refuses to retire a revoked key: revocation is permanent', () => {
    const revoked = revokeKey(key(), { reason: 'compromised', now });
    throwsWithCode(() => retireKey(revoked, now, now), 'KEY_STATE_INVALID');
  });

  it('revokes with compromisedSince defaulting to now, and refuses a future one', () => {
    const r = revokeKey(key(), { reason: 'superseded', now });
    assert.equal(r.status, 'revoked');
    assert.equal(r.revokedAt, now.toISOString());
    assert.equal(r.compromisedSince, now.toISOString());
    assert.equal(r.revocationReason, 'superseded');
    throwsWithCode(() => revokeKey(key(), { reason: 'compromised', compromisedSince: ms(now.toISOString(), 1), now }), 'INPUT_INVALID');
    const exactlyNow = revokeKey(key(), { reason: 'compromised', compromisedSince: now, now });
    assert.equal(exactlyNow.compromisedSince, now.toISOString());
  });

  it('revokes a retired key too', () => {
    const retired = retireKey(key(), now, now);
    const r = revokeKey(retired, { reason: 'compromised', compromisedSince: at('2026-01-02T00:00:00Z'), now });
    assert.equal(r.status, 'revoked');
    assert.equal(r.retiredAt, retired.retiredAt);
  });

  it('keeps a revocation permanent: a second one may only move compromisedSince earlier', () => {
    const first = revokeKey(key(), { reason: 'compromised', compromisedSince: at('2026-01-03T00:00:00Z'), now });
    throwsWithCode(() => revokeKey(first, { reason: 'compromised', now }), 'KEY_STATE_INVALID');
    throwsWithCode(() => revokeKey(first, { reason: 'compromised', compromisedSince: at('2026-01-03T00:00:00Z'), now }), 'KEY_STATE_INVALID');
    const earlier = revokeKey(first, { reason: 'compromised', compromisedSince: at('2026-01-02T00:00:00Z'), now });
    assert.equal(earlier.status, 'revoked');
    assert.equal(earlier.revokedAt, first.revokedAt);
    assert.equal(earlier.compromisedSince, '2026-01-02T00:00:00.000Z');
  });

  it('creates a record valid from now for the given length', () => {
    const base = key();
    const r = newKeyRecord({ ...base, now, validForMs: 90 * 86_400_000, createdBy: 'a@b' });
    assert.equal(r.notBefore, now.toISOString());
    assert.equal(r.notAfter, '2026-04-05T00:00:00.000Z');
    assert.equal(r.status, 'active');
    assert.equal(validityLength(r), 90 * 86_400_000);
    assert.equal(newKeyRecord({ ...base, now, validForMs: null, createdBy: 'a@b' }).notAfter, null);
  });
});

describe('choosing the signing version', () => {
  const now = at('2026-01-10T00:00:00.000Z');
  const v1 = key({ version: 1, notAfter: null });
  const v2 = key({ version: 2, notAfter: null });

  it('picks the newest version that may sign', () => {
    const c = chooseSigningKey([v1, v2], 'attest', now);
    assert.ok(c && 'key' in c);
    assert.equal(c.key.version, 2);
  });

  it('falls back to an older version still inside its overlap when the newest may not sign', () => {
    const inOverlap = { ...v1, status: 'retired' as const, retiredAt: '2026-01-12T00:00:00.000Z' };
    const revoked = revokeKey(v2, { reason: 'compromised', now });
    const c = chooseSigningKey([inOverlap, revoked], 'attest', now);
    assert.ok(c && 'key' in c);
    assert.equal(c.key.version, 1);
  });

  it("reports the newest version's reason when none may sign", () => {
    const c = chooseSigningKey([retireKey(v1, now, now), revokeKey(v2, { reason: 'compromised', now })], 'attest', now);
    assert.ok(c && 'refusal' in c);
    assert.equal(c.refusal.key.version, 2);
    assert.equal(c.refusal.code, 'KEY_REVOKED');
    assert.equal(chooseSigningKey([], 'attest', now), undefined);
  });

  it('selects name@version or the newest', () => {
    assert.equal(selectVersion([v1, v2], { name: 'test', version: 1 })?.version, 1);
    assert.equal(selectVersion([v2, v1], { name: 'test', version: undefined })?.version, 2);
    assert.equal(selectVersion([v1], { name: 'test', version: 3 }), undefined);
  });

  it('describes the state of each version at a time', () => {
    assert.equal(keyStateAt(v1, now), 'active');
    assert.equal(keyStateAt({ ...v1, retiredAt: '2026-01-12T00:00:00.000Z', status: 'retired' }, now), 'overlap');
    assert.equal(keyStateAt({ ...v1, retiredAt: '2026-01-09T00:00:00.000Z', status: 'retired' }, now), 'retired');
    assert.equal(keyStateAt(revokeKey(v1, { reason: 'compromised', now }), now), 'revoked');
    assert.equal(keyStateAt(key(), at('2027-01-01T00:00:00Z')), 'expired');
    assert.equal(keyStateAt(key(), at('2025-01-01T00:00:00Z')), 'not-yet-valid');
  });
});

describe('key input', () => {
  it('parses name and name@version addresses', () => {
    assert.deepEqual(parseKeyAddress('release'), { name: 'release', version: undefined });
    assert.deepEqual(parseKeyAddress('release@2'), { name: 'release', version: 2 });
    for (const bad of ['release@0', 'release@', 'release@v2', 'release@2@3', 'Release', '', '@2', 'a/b', '../x', 'x'.repeat(65)]) {
      assert.throws(() => parseKeyAddress(bad), bad);
    }
    throwsWithCode(() => validateKeyName('../etc'), 'NAME_INVALID');
  });

  it('refuses unknown algorithms, purposes and reasons with exact codes', () => {
    throwsWithCode(() => parseKeyAlgorithm('dsa'), 'KEY_ALGORITHM_UNSUPPORTED');
    throwsWithCode(() => parseKeyAlgorithm('rsa-pss-2048-sha256'), 'KEY_ALGORITHM_UNSUPPORTED');
    throwsWithCode(() => parseKeyPurposes(['deploy']), 'INPUT_INVALID');
    throwsWithCode(() => parseKeyPurposes([]), 'INPUT_INVALID');
    assert.deepEqual(parseKeyPurposes(['attest', 'attest', 'policy']), ['attest', 'policy']);
    throwsWithCode(() => parseRevocationReason('oops'), 'INPUT_INVALID');
    throwsWithCode(() => validateKeyid('abc'), 'INPUT_INVALID');
    assert.equal(validateKeyid('A'.repeat(64)), 'a'.repeat(64));
  });

  it('asks for key-admin only for promotion-receipt and policy keys', () => {
    assert.equal(needsKeyAdmin(['attest', 'sign-artifact', 'log-checkpoint']), false);
    assert.equal(needsKeyAdmin(['attest', 'policy']), true);
    assert.equal(needsKeyAdmin(['promotion-receipt']), true);
  });
});
