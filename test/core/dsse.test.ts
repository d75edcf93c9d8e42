import assert from 'node:assert/strict';
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { publicKeyPem } from '../../src/core/crypto.ts';
import { envelopeToJson, pae, parseEnvelope, signEnvelope } from '../../src/core/dsse.ts';
import { decodeBase64 } from '../../src/core/encoding.ts';
import { toTrustedKeys, type KeyRecord } from '../../src/core/key.ts';
import { verifyEnvelopeSignatures } from '../../src/core/verify/index.ts';
import { testKey } from '../fixtures/keys.ts';

const AT = new Date('2026-01-01T00:00:00Z');

/** A trusted key record around a public key, under the keyid the vectors use. */
function record(keyid: string, publicKey: KeyObject, algorithm: KeyRecord['algorithm']): KeyRecord {
  return {
    ...testKey().record,
    keyid,
    name: keyid.toLowerCase(),
    algorithm,
    publicKeyPem: publicKeyPem(publicKey),
  };
}

function bigToB64url(decimal: string): string {
  return Buffer.from(BigInt(decimal).toString(16).padStart(64, '0'), 'hex').toString('base64url');
}

describe('DSSE', () => {
  describe('the example in the DSSE protocol (secure-systems-lab/dsse, protocol.md, "Test Vectors")', () => {
    // Published facts, cited: PAYLOAD_TYPE, SERIALIZED_BODY, the PAE, the P-256 public point and the
    // envelope's signature (deterministic RFC 6979, raw r||s "Cryptodome binary encoding").
    const payloadType = 'http://example.com/HelloWorld';
    const body = Buffer.from('hello world');
    const X = '46950820868899156662930047687818585632848591499744589407958293238635476079160';
    const Y = '5640078356564379163099075877009565129882514886557779369047442380624545832820';
    const envelope = {
      payload: 'aGVsbG8gd29ybGQ=',
      payloadType: 'http://example.com/HelloWorld',
      signatures: [{ sig: 'A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==' }],
    };
    const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: bigToB64url(X), y: bigToB64url(Y) }, format: 'jwk' });

    it('computes the published PAE bytes', () => {
      assert.equal(pae(payloadType, body).toString('latin1'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    });

    it('verifies the published signature with the published P-256 key, directly and through the pipeline step', () => {
      const sig = decodeBase64(envelope.signatures[0]!.sig)!;
      assert.equal(verify('sha256', pae(payloadType, body), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig), true);
      const env = parseEnvelope(envelope);
      assert.ok(env.ok);
      const keys = toTrustedKeys([record('example', publicKey, 'ecdsa-p256-sha256')]);
      const r = verifyEnvelopeSignatures(env.value, { keys, signedAt: AT, purpose: 'attest' });
      assert.deepEqual(r.reasons, []);
      assert.deepEqual(r.signers, ['example']);
      // and one changed byte of the body no longer verifies
      const tampered = { ...env.value, payload: Buffer.from('hello World') };
      assert.equal(verifyEnvelopeSignatures(tampered, { keys, signedAt: AT, purpose: 'attest' }).reasons[0]?.code, 'SIGNATURE_INVALID');
    });
  });

  describe('the protocol test vectors (secure-systems-lab/dsse, testvectors/vectors.json)', () => {
    // Public keys are RFC 8032 §7.1 TEST 1 and TEST 2; only their public halves are needed to verify.
    const ed25519 = (hex: string) => createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
    const KEYS = {
      A: ed25519('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
      B: ed25519('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'),
    };
    const INTOTO = 'application/vnd.in-toto+json';
    const STATEMENT = 'eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==';
    const PAE_STATEMENT = '445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d';
    const SIG_A = '2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA==';
    const SIG_B = 'c1+67/aT0yqEpwx8PsVY3MLHsj9D0CZ014/Fv/QlG59P+9CobUZ7xECJ/V3USG0Ob9CiE5LjReEZUzNF2l7eBw==';
    const vectors: {
      id: string;
      envelope: { payload: string; payloadType: string; signatures: { sig: string; keyid?: string }[] };
      trusted: ('A' | 'B')[];
      threshold: number;
      supported: string[];
      pae: string;
      expect: 'accept' | 'reject';
    }[] = [
      { id: 'single-signature', envelope: { payload: STATEMENT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }] }, trusted: ['A'], threshold: 1, supported: [INTOTO], pae: PAE_STATEMENT, expect: 'accept' },
      {
        id: 'url-safe-base64',
        envelope: { payload: '-_-_Pj8=', payloadType: INTOTO, signatures: [{ sig: 'P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw==', keyid: 'A' }] },
        trusted: ['A'],
        threshold: 1,
        supported: [INTOTO],
        pae: '445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203520fbffbf3e3f',
        expect: 'accept',
      },
      {
        id: 'payload-type-swapped',
        envelope: { payload: STATEMENT, payloadType: 'application/vnd.example.other+json', signatures: [{ sig: SIG_A, keyid: 'A' }] },
        trusted: ['A'],
        threshold: 1,
        supported: [INTOTO, 'application/vnd.example.other+json'],
        pae: PAE_STATEMENT,
        expect: 'reject',
      },
      {
        id: 'non-ascii-payload-type',
        envelope: { payload: STATEMENT, payloadType: 'application/vnd.exämple+json', signatures: [{ sig: 'xmSk/ug66ysT7ayhkCIjhAq42zgZXSsEWuzUaNL7w2eGAdF/NU6/fRXPtmfN+5DNSAs5/i2lUnHjbbjPsu0tAw==', keyid: 'A' }] },
        trusted: ['A'],
        threshold: 1,
        supported: ['application/vnd.exämple+json'],
        pae: '445353457631203239206170706c69636174696f6e2f766e642e6578c3a46d706c652b6a736f6e203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d',
        expect: 'accept',
      },
      {
        id: 'empty-payload',
        envelope: { payload: '', payloadType: INTOTO, signatures: [{ sig: 'gSggCAaTLTYyRH6FIDBem6meyIynsYy8RTHVzwx9tnTb7Bg/1jMWnuVgI/gffqmbsC2VX5/jHfkkDqsj7CDbDg==', keyid: 'A' }] },
        trusted: ['A'],
        threshold: 1,
        supported: [INTOTO],
        pae: '445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203020',
        expect: 'accept',
      },
      {
        id: 'empty-payload-type',
        envelope: { payload: STATEMENT, payloadType: '', signatures: [{ sig: 'iC3q/+3Rm0+lpAJRueDmDh15PnwCfxKmS0NAfKsbv+zgulXQC/WM9trc+j1XEqlwDIg/vf/uNfebeD6sxInrDg==', keyid: 'A' }] },
        trusted: ['A'],
        threshold: 1,
        supported: [INTOTO],
        pae: '445353457631203020203433207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d',
        expect: 'reject',
      },
      { id: 'threshold-two-distinct-keys', envelope: { payload: STATEMENT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }, { sig: SIG_B, keyid: 'B' }] }, trusted: ['A', 'B'], threshold: 2, supported: [INTOTO], pae: PAE_STATEMENT, expect: 'accept' },
      { id: 'threshold-two-one-key-twice', envelope: { payload: STATEMENT, payloadType: INTOTO, signatures: [{ sig: SIG_A, keyid: 'A' }, { sig: SIG_A, keyid: 'A' }] }, trusted: ['A', 'B'], threshold: 2, supported: [INTOTO], pae: PAE_STATEMENT, expect: 'reject' },
      { id: 'threshold-two-without-keyids', envelope: { payload: STATEMENT, payloadType: INTOTO, signatures: [{ sig: SIG_A }, { sig: SIG_B }] }, trusted: ['A', 'B'], threshold: 2, supported: [INTOTO], pae: PAE_STATEMENT, expect: 'accept' },
    ];

    for (const v of vectors) {
      it(`${v.id}: PAE matches and the envelope is ${v.expect}ed`, () => {
        const env = parseEnvelope(v.envelope);
        assert.ok(env.ok, JSON.stringify(env));
        // `pae` is what the signatures cover; only the swapped vector's envelope claims another type.
        const mine = pae(env.value.payloadType, env.value.payload).toString('hex');
        if (v.id === 'payload-type-swapped') assert.notEqual(mine, v.pae);
        else assert.equal(mine, v.pae);
        for (const s of v.envelope.signatures) {
          const signer = s.sig === SIG_B ? KEYS.B : KEYS.A;
          assert.equal(verify(null, Buffer.from(v.pae, 'hex'), signer, decodeBase64(s.sig)!), true, 'the published signature covers the published PAE');
        }
        const keys = toTrustedKeys(v.trusted.map((name) => record(name, KEYS[name], 'ed25519')));
        const r = verifyEnvelopeSignatures(env.value, { keys, signedAt: AT, purpose: 'attest', threshold: v.threshold });
        // protocol.md: verify the signatures, then reject an unsupported payload type.
        const accepted = r.ok && v.supported.includes(env.value.payloadType);
        assert.equal(accepted ? 'accept' : 'reject', v.expect, JSON.stringify(r.reasons));
      });
    }

    it('counts one key that signs twice once, and says so', () => {
      const env = parseEnvelope(vectors.find((v) => v.id === 'threshold-two-one-key-twice')!.envelope);
      assert.ok(env.ok);
      const keys = toTrustedKeys([record('A', KEYS.A, 'ed25519'), record('B', KEYS.B, 'ed25519')]);
      const once = verifyEnvelopeSignatures(env.value, { keys, signedAt: AT, purpose: 'attest', threshold: 1 });
      assert.equal(once.ok, true);
      assert.deepEqual(once.signers, ['A']);
      assert.deepEqual(once.signatures.map((s) => [s.ok, s.reasons[0]?.code]), [[true, undefined], [false, 'SIGNATURE_DUPLICATE']]);
      const twice = verifyEnvelopeSignatures(env.value, { keys, signedAt: AT, purpose: 'attest', threshold: 2 });
      assert.deepEqual(twice.reasons.map((r) => r.code), ['SIGNATURE_DUPLICATE', 'THRESHOLD_NOT_MET']);
    });
  });

  it('round-trips an envelope it signs, with the keyid as hint', async () => {
    const k = testKey();
    const env = await signEnvelope('application/vnd.in-toto+json', Buffer.from('{"a":1}'), k.signer);
    const json = envelopeToJson(env);
    assert.deepEqual(Object.keys(json.signatures[0]!), ['keyid', 'sig']);
    const again = parseEnvelope(JSON.parse(JSON.stringify(json)));
    assert.ok(again.ok);
    assert.deepEqual(again.value, env);
  });

  it('reads base64 strictly: both alphabets, padded or not, and nothing else', () => {
    assert.deepEqual(decodeBase64('aGk='), Buffer.from('hi'));
    assert.deepEqual(decodeBase64('aGk'), Buffer.from('hi'));
    assert.deepEqual(decodeBase64('-_-_Pj8='), Buffer.from('fbffbf3e3f', 'hex'));
    assert.deepEqual(decodeBase64(''), Buffer.alloc(0));
    for (const bad of ['aGk*', 'aG k=', 'aGk==', 'a', 'aGl=', '+_8=', 'aGk=aGk=', 42, null]) {
      assert.equal(decodeBase64(bad), undefined, String(bad));
    }
  });

  it('names the field that is not base64, and refuses non-envelopes', () => {
    const bad = parseEnvelope({ payloadType: 'x', payload: 'not*base64', signatures: [] });
    assert.ok(!bad.ok && bad.reason.code === 'BASE64_INVALID' && bad.reason.message.includes('payload'));
    const badSig = parseEnvelope({ payloadType: 'x', payload: '', signatures: [{ sig: '%%' }] });
    assert.ok(!badSig.ok && badSig.reason.code === 'BASE64_INVALID' && badSig.reason.message.includes('signatures[0].sig'));
    for (const v of [null, [], 'x', { payload: '' }, { payloadType: 1, signatures: [] }, { payloadType: 'x', signatures: {} }]) {
      const r = parseEnvelope(v);
      assert.ok(!r.ok && r.reason.code === 'EVIDENCE_MALFORMED', JSON.stringify(v));
    }
  });
});
