import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { keyidOf } from '../../../src/core/crypto.ts';
import {
  addSignatures,
  cosignatureVerifier,
  cosignCheckpoint,
  formatCheckpointText,
  logNoteVerifier,
  logNoteVerifierFor,
  parseCheckpointText,
  signCheckpoint,
  verifyCheckpoint,
  verifyCosignatures,
  verifyNoteSignatures,
} from '../../../src/core/tlog/checkpoint.ts';
import { ed25519FromRaw, formatVkey, noteKeyId, parseNote, parseVkey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519 } from '../../../src/core/tlog/note.ts';
import { leafHash } from '../../../src/core/tlog/hash.ts';
import { rejectsWithCode, throwsWithCode } from '../../helpers.ts';
import { testKey } from '../../fixtures/keys.ts';

const ORIGIN = 'custody.test/log';
const root = leafHash(Buffer.from('root'));

describe('signed-note (C2SP signed-note)', () => {
  it('verifies the published example note with the published verifier key', () => {
    // c2sp.org/signed-note, "Verifier keys" example.
    const vkey = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
    const note = 'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
    const v = parseVkey(vkey);
    assert.equal(v.name, 'example.com/foo');
    assert.equal(v.type, SIG_TYPE_ED25519);
    assert.equal(Buffer.from(v.keyId).toString('hex'), '530d903a');
    const key = ed25519FromRaw(v.publicKey);
    const verifier = logNoteVerifier(v.name, key, keyidOf(key));
    assert.equal(formatVkey(v.name, v.type, v.publicKey), vkey);
    const parsed = parseNote(note);
    assert.equal(parsed.text, 'This is an example message.\n');
    assert.deepEqual(verifyNoteSignatures(parsed, [verifier]).reasons, []);
    // one changed byte in the text: the known key's signature fails, so the note is rejected
    const tampered = parseNote(note.replace('example message', 'example messagE'));
    assert.equal(verifyNoteSignatures(tampered, [verifier]).signedBy.length, 0);
    assert.equal(verifyNoteSignatures(tampered, [verifier]).reasons[0]?.code, 'CHECKPOINT_SIGNATURE');
  });

  it('parses the published checkpoint and cosignature examples', () => {
    // c2sp.org/tlog-cosignature example: a log signature and a witness cosignature made at time 1679315147.
    const note = [
      'example.com/behind-the-sofa',
      '20852163',
      'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
      '',
      '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=',
      '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==',
      '',
    ].join('\n');
    const parsed = parseNote(note);
    const cp = parseCheckpointText(parsed.text);
    assert.equal(cp.origin, 'example.com/behind-the-sofa');
    assert.equal(cp.size, 20852163);
    assert.equal(Buffer.from(cp.root).toString('base64'), 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    assert.deepEqual(parsed.signatures.map((s) => s.name), ['example.com/behind-the-sofa', 'witness.example.com/w1']);
    const w = parsed.signatures[1]!;
    assert.equal(w.signature.length, 8 + 64);
    assert.equal(Buffer.from(w.signature).readBigUInt64BE(0), 1679315147n);
    // Unknown keys are ignored: with no trusted key at all, nothing verifies and the note is rejected.
    const r = verifyCheckpoint(note, []);
    assert.equal(r.ok, false);
    assert.equal(r.reasons[0]?.code, 'CHECKPOINT_UNSIGNED');
  });

  it('computes key IDs as SHA-256(name || 0x0A || type || key)[:4]', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = new Uint8Array(publicKey.export({ format: 'jwk' }).x ? Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url') : []);
    const id1 = noteKeyId('a.example/x', SIG_TYPE_ED25519, raw);
    const id4 = noteKeyId('a.example/x', SIG_TYPE_COSIGNATURE_V1, raw);
    assert.equal(id1.length, 4);
    assert.notDeepEqual(id1, id4, 'the signature type separates key IDs');
  });

  it('refuses malformed notes with CHECKPOINT_INVALID, never a bare error', () => {
    const good = `${ORIGIN}\n1\n${Buffer.from(root).toString('base64')}\n\n— ${ORIGIN} ${Buffer.alloc(68, 1).toString('base64')}\n`;
    assert.doesNotThrow(() => parseNote(good));
    const bad = [
      good.slice(0, -1), // no final newline
      good.replace('\n\n', '\n'), // no blank line
      `${ORIGIN}\n1\n${Buffer.from(root).toString('base64')}\n\n`, // no signatures
      good.replace('— ', '- '), // not an em dash
      good.replace(`— ${ORIGIN} `, '— bad+name '), // + in key name
      good.replace(`— ${ORIGIN} `, `— ${ORIGIN}  `), // double space
      good.replace(/ [A-Za-z0-9+/=]+\n$/, ' AAAA\n'), // too short for a key ID and a signature
      good.replace(/ [A-Za-z0-9+/=]+\n$/, ' not base64!\n'),
      good.replace(/=*\n$/, '\n'), // base64 without its padding does not round-trip
      good.replace('1\n', '1\r\n'), // control character
      `${good}\u0000`,
      'x'.repeat(300 * 1024),
    ];
    for (const n of bad) throwsWithCode(() => parseNote(n), 'CHECKPOINT_INVALID');
    throwsWithCode(() => parseNote(Uint8Array.of(0xff, 0xfe, 0x0a)), 'CHECKPOINT_INVALID');
    const many = `${ORIGIN}\n1\n${Buffer.from(root).toString('base64')}\n\n${`— ${ORIGIN} ${Buffer.alloc(68, 1).toString('base64')}\n`.repeat(65)}`;
    throwsWithCode(() => parseNote(many), 'CHECKPOINT_INVALID');
  });

  it('fast-check: parsing arbitrary text either succeeds or fails with CHECKPOINT_INVALID', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (s) => {
        try {
          const n = parseNote(s);
          try {
            parseCheckpointText(n.text);
          } catch (e) {
            return (e as { code?: string }).code === 'CHECKPOINT_INVALID';
          }
          return true;
        } catch (e) {
          return (e as { code?: string }).code === 'CHECKPOINT_INVALID';
        }
      }),
    );
  });
});

describe('checkpoint text (C2SP tlog-checkpoint)', () => {
  it('formats origin, decimal size and base64 root, one per line', () => {
    const text = formatCheckpointText({ origin: ORIGIN, size: 42, root });
    assert.equal(text, `${ORIGIN}\n42\n${Buffer.from(root).toString('base64')}\n`);
    const back = parseCheckpointText(text);
    assert.equal(back.size, 42);
    assert.deepEqual(back.root, new Uint8Array(root));
    assert.deepEqual(parseCheckpointText(formatCheckpointText({ origin: ORIGIN, size: 0, root })).size, 0);
  });

  it('refuses leading zeros, signs, oversized sizes and roots that are not 32 bytes', () => {
    const r = Buffer.from(root).toString('base64');
    for (const text of [
      `${ORIGIN}\n01\n${r}\n`,
      `${ORIGIN}\n+1\n${r}\n`,
      `${ORIGIN}\n-1\n${r}\n`,
      `${ORIGIN}\n1.0\n${r}\n`,
      `${ORIGIN}\n99999999999999999999\n${r}\n`,
      `${ORIGIN}\n1\n${Buffer.alloc(31).toString('base64')}\n`,
      `${ORIGIN}\n1\n`,
      `\n1\n${r}\n`,
      `${ORIGIN}\n1\n${r}\n\n`,
    ]) {
      throwsWithCode(() => parseCheckpointText(text), 'CHECKPOINT_INVALID');
    }
  });
});

describe('checkpoint signing and verification', () => {
  const log = testKey({ name: 'log', purposes: ['log-checkpoint'] });
  const verifier = logNoteVerifierFor(log.record, ORIGIN)!;

  it('signs with the log key as a signed-note Ed25519 line named by the origin, and verifies', async () => {
    const note = await signCheckpoint({ origin: ORIGIN, size: 3, root }, log.signer, log.record);
    const parsed = parseNote(note);
    assert.equal(parsed.signatures.length, 1);
    assert.equal(parsed.signatures[0]!.name, ORIGIN);
    assert.deepEqual(parsed.signatures[0]!.keyId, verifier.keyId);
    const r = verifyCheckpoint(note, [verifier], { origin: ORIGIN });
    assert.equal(r.ok, true, JSON.stringify(r.reasons));
    assert.equal(r.value?.checkpoint.size, 3);
    // as a vkey, for other tools
    const vkey = formatVkey(ORIGIN, SIG_TYPE_ED25519, verifier.publicKey);
    assert.deepEqual(parseVkey(vkey).keyId, verifier.keyId);
  });

  it('refuses keys that may not sign checkpoints', async () => {
    const notLog = testKey({ purposes: ['attest'] });
    await rejectsWithCode(() => signCheckpoint({ origin: ORIGIN, size: 1, root }, notLog.signer, notLog.record), 'KEY_NOT_USABLE');
    const ecdsa = testKey({ algorithm: 'ecdsa-p256-sha256', purposes: ['log-checkpoint'] });
    await rejectsWithCode(() => signCheckpoint({ origin: ORIGIN, size: 1, root }, ecdsa.signer, ecdsa.record), 'KEY_NOT_USABLE');
    await rejectsWithCode(() => signCheckpoint({ origin: ORIGIN, size: 1, root }, testKey({ purposes: ['log-checkpoint'] }).signer, log.record), 'KEY_ID_MISMATCH');
    const liar = { ...log.signer, sign: () => Promise.resolve(new Uint8Array(64)) };
    await rejectsWithCode(() => signCheckpoint({ origin: ORIGIN, size: 1, root }, liar, log.record), 'KEY_NOT_USABLE');
  });

  it('rejects another key, another origin, an edited size or root, and keys outside their validity', async () => {
    const note = await signCheckpoint({ origin: ORIGIN, size: 3, root }, log.signer, log.record);
    const other = testKey({ purposes: ['log-checkpoint'] });
    const forged = await signCheckpoint({ origin: ORIGIN, size: 3, root }, other.signer, other.record);
    assert.equal(verifyCheckpoint(forged, [verifier]).reasons[0]?.code, 'CHECKPOINT_UNSIGNED');
    assert.equal(verifyCheckpoint(note, [verifier], { origin: 'other.example/log' }).reasons[0]?.code, 'CHECKPOINT_ORIGIN');
    assert.equal(verifyCheckpoint(note.replace('\n3\n', '\n4\n'), [verifier]).reasons[0]?.code, 'CHECKPOINT_SIGNATURE');
    const expired = logNoteVerifierFor({ ...log.record, notAfter: '2021-01-01T00:00:00.000Z' }, ORIGIN)!;
    assert.equal(verifyCheckpoint(note, [expired], { at: new Date('2022-01-01T00:00:00Z') }).reasons[0]?.code, 'KEY_EXPIRED');
    assert.equal(verifyCheckpoint(note, [expired], { at: new Date('2020-06-01T00:00:00Z') }).ok, true);
    // a second, unknown signature does not hurt; a known one that fails does
    const both = addSignatures(note, [parseNote(forged).signatures[0]!.line]);
    assert.equal(verifyCheckpoint(both, [verifier]).ok, true);
    const otherVerifier = logNoteVerifierFor(other.record, ORIGIN)!;
    const badLine = parseNote(forged).signatures[0]!.line.replace(/.{6}=$/, 'AAAAAA=');
    assert.equal(verifyCheckpoint(addSignatures(note, [badLine]), [verifier, otherVerifier]).ok, false);
  });
});

describe('witness cosignatures (C2SP tlog-cosignature/v1)', () => {
  const log = testKey({ name: 'log', purposes: ['log-checkpoint'] });
  const witness = generateKeyPairSync('ed25519');
  const wVerifier = cosignatureVerifier('witness.test/w1', witness.publicKey, keyidOf(witness.publicKey));
  const sign = (m: Uint8Array) => Promise.resolve(new Uint8Array(nodeSign(null, m, witness.privateKey)));

  it('signs "cosignature/v1\\ntime T\\n" + the checkpoint text with a timestamp prefix and a type 0x04 key ID', async () => {
    const note = await signCheckpoint({ origin: ORIGIN, size: 7, root }, log.signer, log.record);
    const text = parseNote(note).text;
    const line = await cosignCheckpoint(text, 'witness.test/w1', witness.publicKey, sign, 1700000000);
    const cosigned = addSignatures(note, [line]);
    const parsed = parseNote(cosigned);
    assert.equal(parsed.signatures.length, 2);
    const sig = parsed.signatures[1]!;
    assert.deepEqual(sig.keyId, wVerifier.keyId);
    assert.equal(Buffer.from(sig.signature).readBigUInt64BE(0), 1700000000n);
    const expectedMessage = Buffer.from(`cosignature/v1\ntime 1700000000\n${text}`);
    assert.ok(wVerifier.verify(Buffer.from(text), sig.signature));
    assert.ok(nodeVerify(null, expectedMessage, witness.publicKey, sig.signature.subarray(8)));
    assert.deepEqual(verifyCosignatures(parsed, [wVerifier]).valid, [{ name: 'witness.test/w1', keyid: keyidOf(witness.publicKey), timestamp: 1700000000 }]);
    // the log's signature still verifies: cosignatures are just more lines
    assert.equal(verifyCheckpoint(cosigned, [logNoteVerifierFor(log.record, ORIGIN)!]).ok, true);
    // the same line twice counts once
    assert.equal(addSignatures(cosigned, [line]), cosigned);
  });

  it('rejects a cosignature over another text or with an edited timestamp', async () => {
    const note = await signCheckpoint({ origin: ORIGIN, size: 7, root }, log.signer, log.record);
    const text = parseNote(note).text;
    const line = await cosignCheckpoint(text, 'witness.test/w1', witness.publicKey, sign, 1700000000);
    const sig = parseNote(addSignatures(note, [line])).signatures[1]!;
    assert.equal(wVerifier.verify(Buffer.from(text.replace('7', '8')), sig.signature), false);
    const edited = Uint8Array.from(sig.signature);
    edited[7] = (edited[7]! + 1) % 256;
    assert.equal(wVerifier.verify(Buffer.from(text), edited), false);
    assert.equal(wVerifier.verify(Buffer.from(text), sig.signature.subarray(0, 70)), false);
  });
});
