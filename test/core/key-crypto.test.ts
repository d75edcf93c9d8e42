import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { ecdsaRawToDer, keyidOf, publicKeyFromTokenPoint, verifyBytes } from '../../src/core/crypto.ts';
import { throwsWithCode } from '../helpers.ts';

describe('token formats', () => {
  it('turns a raw r||s ECDSA signature into DER that verifies, including high-bit and leading-zero values', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let sawHighBit = false;
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      assert.equal(raw.length, 64);
      sawHighBit ||= (raw[0]! & 0x80) !== 0 || (raw[32]! & 0x80) !== 0;
      assert.ok(verifyBytes('ecdsa-p256-sha256', publicKey, data, ecdsaRawToDer(raw)), `signature ${i}`);
    }
    assert.ok(sawHighBit);
    // Leading zero bytes are rare in random signatures: build one, with a high bit in s.
    const der = Buffer.from(ecdsaRawToDer(Buffer.concat([Buffer.alloc(31), Buffer.from([1]), Buffer.from([0x80]), Buffer.alloc(31)])));
    assert.equal(der.toString('hex'), `3026020101022100${'80'}${'00'.repeat(31)}`);
    throwsWithCode(() => ecdsaRawToDer(new Uint8Array(63)), 'INPUT_INVALID');
    throwsWithCode(() => ecdsaRawToDer(new Uint8Array(0)), 'INPUT_INVALID');
  });

  it('reads a CKA_EC_POINT raw or DER-wrapped, and refuses a point of the wrong size', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const point = ec.export({ format: 'der', type: 'spki' }).subarray(-65);
    assert.equal(keyidOf(publicKeyFromTokenPoint('ecdsa-p256-sha256', point)), keyidOf(ec));
    assert.equal(keyidOf(publicKeyFromTokenPoint('ecdsa-p256-sha256', Buffer.concat([Buffer.from([4, 65]), point]))), keyidOf(ec));
    const ed = generateKeyPairSync('ed25519').publicKey;
    const raw = ed.export({ format: 'der', type: 'spki' }).subarray(-32);
    assert.equal(keyidOf(publicKeyFromTokenPoint('ed25519', Buffer.concat([Buffer.from([4, 32]), raw]))), keyidOf(ed));
    throwsWithCode(() => publicKeyFromTokenPoint('ecdsa-p256-sha256', point.subarray(1)), 'KEY_INVALID');
    const offCurve = Buffer.from(point);
    offCurve[64] = offCurve[64]! ^ 1;
    throwsWithCode(() => publicKeyFromTokenPoint('ecdsa-p256-sha256', offCurve), 'KEY_INVALID');
  });
});
