/**
 * Prehashed signatures (a SHA-256 digest signed as the algorithm's own hash)
 * held to node:crypto signing and verifying the whole message: each direction,
 * each algorithm, and the malformed inputs a verifier must refuse without throwing.
 */
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import { CustodyError } from '../../src/core/errors.ts';
import { signPrehashed, verifyPrehashed } from '../../src/core/prehash.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 });
const rsa2 = generateKeyPairSync('rsa', { modulusLength: 3072 });

const nodeSign = {
  ecdsa: (m: Uint8Array, k: KeyObject) => sign('sha256', m, { key: k, dsaEncoding: 'der' }),
  rsa: (m: Uint8Array, k: KeyObject) => sign('sha256', m, { key: k, ...pss }),
};
const nodeVerify = {
  ecdsa: (m: Uint8Array, k: KeyObject, s: Uint8Array) => verify('sha256', m, { key: k, dsaEncoding: 'der' }, s),
  rsa: (m: Uint8Array, k: KeyObject, s: Uint8Array) => verify('sha256', m, { key: k, ...pss }, s),
};

const CASES = [
  { name: 'ECDSA P-256', alg: 'ecdsa-p256-sha256' as const, keys: ec, other: ec2, kind: 'ecdsa' as const, rounds: 40 },
  { name: 'RSA-PSS 3072', alg: 'rsa-pss-3072-sha256' as const, keys: rsa, other: rsa2, kind: 'rsa' as const, rounds: 12 },
];

for (const c of CASES) {
  describe(`prehashed ${c.name}`, () => {
    it('makes signatures node:crypto verifies over the whole message, and verifies the ones it makes', () => {
      for (let i = 0; i < c.rounds; i++) {
        const message = randomBytes(1 + Math.floor(Math.random() * 5000));
        const digest = sha256(message);
        const ours = signPrehashed(c.alg, c.keys.privateKey, digest);
        assert.equal(nodeVerify[c.kind](message, c.keys.publicKey, ours), true, 'node verifies ours over the message');
        assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, ours), true, 'we verify ours');
        const theirs = nodeSign[c.kind](message, c.keys.privateKey);
        assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, theirs), true, 'we verify node\'s from the digest alone');
      }
    });

    it('refuses another digest, another key, a flipped bit, a truncated or padded signature, and garbage, without throwing', () => {
      const message = randomBytes(300);
      const digest = sha256(message);
      const sig = signPrehashed(c.alg, c.keys.privateKey, digest);
      assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, sha256(randomBytes(300)), sig), false);
      assert.equal(verifyPrehashed(c.alg, c.other.publicKey, digest, sig), false);
      for (const bit of [0, 7, 8 * Math.floor(sig.length / 2), 8 * sig.length - 1]) {
        const flipped = Buffer.from(sig);
        flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
        assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, flipped), false, `bit ${bit}`);
      }
      assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, sig.subarray(0, sig.length - 1)), false);
      assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, Buffer.concat([sig, Buffer.of(0)])), false);
      for (const junk of [Buffer.alloc(0), Buffer.alloc(sig.length), Buffer.alloc(sig.length, 0xff), randomBytes(sig.length), randomBytes(64)]) {
        assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest, junk), false);
      }
      assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, digest.subarray(0, 31), sig), false, 'a digest that is not 32 bytes');
      assert.equal(verifyPrehashed(c.alg, c.keys.publicKey, message, sig), false, 'the message is not its digest');
      assert.throws(() => signPrehashed(c.alg, c.keys.privateKey, message), (e) => e instanceof CustodyError && e.code === 'INPUT_INVALID');
    });
  });
}

describe('prehashed, algorithm details', () => {
  it('accepts ECDSA as raw r||s and with a high S, as OpenSSL and the DSSE reference make them', () => {
    const message = randomBytes(100);
    const digest = sha256(message);
    const raw = sign('sha256', message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    assert.equal(raw.length, 64);
    assert.equal(verifyPrehashed('ecdsa-p256-sha256', ec.publicKey, digest, raw), true);
    const s = p256.Signature.fromBytes(raw, 'compact');
    const n = p256.Point.Fn.ORDER;
    const high = new p256.Signature(s.r, n - s.s).toBytes('der');
    assert.equal(verifyPrehashed('ecdsa-p256-sha256', ec.publicKey, digest, high), true);
    assert.equal(verify('sha256', message, { key: ec.publicKey, dsaEncoding: 'der' }, high), true, 'node agrees the high-S form is valid');
  });

  it('refuses RSA-PSS with another salt length, as Custody\'s keys always use 32', () => {
    const message = randomBytes(100);
    const other = sign('sha256', message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 });
    assert.equal(verifyPrehashed('rsa-pss-3072-sha256', rsa.publicKey, sha256(message), other), false);
    const v15 = sign('sha256', message, rsa.privateKey);
    assert.equal(verifyPrehashed('rsa-pss-3072-sha256', rsa.publicKey, sha256(message), v15), false, 'PKCS #1 v1.5 is not PSS');
  });

  it('has no prehashed form of Ed25519, and does not take a key of another algorithm', () => {
    const ed = generateKeyPairSync('ed25519');
    const digest = sha256(randomBytes(10));
    assert.throws(() => signPrehashed('ed25519', ed.privateKey, digest), (e) => e instanceof CustodyError && e.code === 'KEY_ALGORITHM_UNSUPPORTED');
    assert.equal(verifyPrehashed('ed25519', ed.publicKey, digest, sign(null, digest, ed.privateKey)), false);
    assert.equal(verifyPrehashed('ecdsa-p256-sha256', rsa.publicKey, digest, signPrehashed('rsa-pss-3072-sha256', rsa.privateKey, digest)), false);
    assert.equal(verifyPrehashed('rsa-pss-3072-sha256', ec.publicKey, digest, signPrehashed('ecdsa-p256-sha256', ec.privateKey, digest)), false);
    assert.throws(() => signPrehashed('ecdsa-p256-sha256', rsa.privateKey, digest), (e) => e instanceof CustodyError && e.code === 'KEY_INVALID');
  });
});
