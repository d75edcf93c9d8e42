/**
 * The verification pipeline's fast paths against their plain definitions, on
 * random and hostile inputs: strict base64 decoded without re-encoding must
 * accept and refuse exactly what the re-encoding definition does, and JSON
 * read with the payload lifted out must mean exactly what JSON.parse means.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeBase64 } from '../../src/core/encoding.ts';
import { PREDICATE_TYPES } from '../../src/core/intoto.ts';
import { parseInput } from '../../src/core/verify/pipeline.ts';
import { parseJsonEvidence } from '../../src/core/verify/json.ts';
import { attestationBundle, dsseFor, randomArtifact, statementAbout } from '../fixtures/evidence.ts';
import { testKey } from '../fixtures/keys.ts';

/** The definition: a string is canonical base64 of one alphabet iff decoding and re-encoding gives it back (padding optional). */
function reference(s: string): Buffer | undefined {
  const end = s.replace(/=+$/, '').length;
  const padding = s.length - end;
  if (padding > 2 || (padding > 0 && s.length % 4 !== 0) || end % 4 === 1) return undefined;
  for (const alphabet of ['base64', 'base64url'] as const) {
    const pattern = alphabet === 'base64' ? /^[A-Za-z0-9+/]*$/ : /^[A-Za-z0-9_-]*$/;
    if (!pattern.test(s.slice(0, end))) continue;
    const bytes = Buffer.from(s, alphabet);
    if (bytes.toString(alphabet).replace(/=+$/, '') === s.slice(0, end)) return bytes;
  }
  return undefined;
}

// Characters that a lenient decoder skips, stops at, or reads by their low byte ('Ł' is U+0141, low byte 'A').
const HOSTILE = ['=', '+', '/', '-', '_', ' ', '\n', '\t', '.', '*', 'é', 'Ł', 'ā', '\u0000', '\uff21', '😀'];

function mutate(s: string): string {
  const at = Math.floor(Math.random() * (s.length + 1));
  const c = HOSTILE[Math.floor(Math.random() * HOSTILE.length)]!;
  switch (Math.floor(Math.random() * 5)) {
    case 0:
      return s.slice(0, at) + c + s.slice(at + 1);
    case 1:
      return s.slice(0, at) + c + s.slice(at);
    case 2:
      return s.slice(0, at) + s.slice(at + 1);
    case 3:
      return s.slice(0, at);
    default: {
      // Flip the last data digit: a non-zero spare bit, or a neighbour's value.
      const end = s.replace(/=+$/, '').length;
      if (end === 0) return s;
      const code = s.charCodeAt(end - 1);
      return s.slice(0, end - 1) + String.fromCharCode(code ^ (1 << Math.floor(Math.random() * 3))) + s.slice(end);
    }
  }
}

describe('strict base64 without re-encoding', () => {
  it('accepts and refuses exactly what the re-encoding definition does, over 40,000 random and mutated strings', () => {
    let accepted = 0;
    for (let i = 0; i < 40_000; i++) {
      const bytes = randomBytes(Math.floor(Math.random() * 20));
      const alphabet = i % 2 === 0 ? 'base64' : 'base64url';
      let s = bytes.toString(alphabet);
      if (i % 3 === 0) s = s.replace(/=+$/, '');
      if (i % 4 !== 0) s = mutate(s);
      if (i % 7 === 0) s = mutate(s);
      const want = reference(s);
      assert.deepEqual(decodeBase64(s), want, JSON.stringify(s));
      if (want) accepted++;
    }
    // Both sides of the boundary were exercised.
    assert.ok(accepted > 10_000 && accepted < 35_000, `${accepted} accepted`);
  });

  it('refuses a wide character whose low byte is a base64 digit, mixed alphabets and stray spare bits', () => {
    for (const s of ['QUJD\u0141', 'QUJ\u0141', 'ab+_', 'a-b/', 'QQ==', 'QR==', 'QUI=', 'QUJ=', 'QR', ' QUJD', 'QUJD\n']) {
      assert.deepEqual(decodeBase64(s), reference(s), s);
    }
    assert.deepEqual(decodeBase64('QQ=='), Buffer.from('A'));
    assert.equal(decodeBase64('QR=='), undefined);
    assert.equal(decodeBase64('QUJD\u0141'), undefined);
  });
});

describe('JSON with the payload lifted out', () => {
  const key = testKey({ algorithm: 'ed25519' });
  const artifact = randomArtifact();

  async function texts(): Promise<string[]> {
    const statement = statementAbout({ sha256: artifact.sha256 }, PREDICATE_TYPES['test-result'], 3000);
    const bundle = JSON.stringify(await attestationBundle(statement, key.signer));
    const envelope = JSON.stringify(await dsseFor(statement, key.signer));
    const payload = (JSON.parse(envelope) as { payload: string }).payload;
    return [
      bundle,
      envelope,
      JSON.stringify(JSON.parse(bundle), null, 2),
      bundle.replace('"payload":"', '"payload" : "'),
      bundle.replace('"payload":"', '"payload":"\\u0041'),
      bundle.replace('"payload":"', '"payload":"A\\/'),
      bundle.replace('"dsseEnvelope":{', `"dsseEnvelope":{"payload":"${payload}",`),
      bundle.replace('"dsseEnvelope":{', '"dsseEnvelope":{"payload":"e30=",'),
      bundle.replace(/"signatures":/, '"payload":"e30=","signatures":'),
      bundle.replace('"mediaType":', `"payload":"${payload}","mediaType":`),
      bundle.replace('"payload":"', '"payload":"<custody: payload lifted>'),
      bundle.replace('"payload":"', '"payload":"AB\nCD'),
      bundle.replace('"payload":"', '"payload":"AB\u0000CD'),
      bundle.replace('"payload":"', '"payload":"AB CD'),
      bundle.replace('"payload":"', '"payload":["'),
      bundle.replace(/"payload":"[^"]*"/, `"payload":${JSON.stringify(payload.slice(0, 900))}`),
      bundle.slice(0, bundle.indexOf('"payload":"') + 2000),
      envelope.replace('"payload":"', '"payload":"x"}'),
      `${bundle} `,
      `${bundle}]`,
    ];
  }

  it('gives the value JSON.parse gives whenever it keeps a lifted payload of base64 characters', async () => {
    let lifted = 0;
    for (const text of await texts()) {
      let want: unknown;
      try {
        want = JSON.parse(text);
      } catch {
        want = undefined;
      }
      let got: ReturnType<typeof parseJsonEvidence> | undefined;
      try {
        got = parseJsonEvidence(text);
      } catch {
        got = undefined;
      }
      if (got === undefined) {
        assert.equal(want, undefined, text.slice(0, 80));
        continue;
      }
      if (got.lifted === null) {
        assert.deepEqual(got.value, want);
        continue;
      }
      lifted++;
      const holder = got.lifted === 'bundle' ? (got.value as { dsseEnvelope: { payload: string } }).dsseEnvelope : (got.value as { payload: string });
      // Only a payload the caller then decodes as base64 is kept (the caller parses again otherwise).
      if (/^[A-Za-z0-9+/=_-]*$/.test(holder.payload)) assert.deepEqual(got.value, want, text.slice(0, 80));
    }
    assert.ok(lifted >= 3, `${lifted} lifted`);
  });

  it('refuses as JSON_MALFORMED exactly the texts JSON.parse refuses, and reads the rest as JSON.parse would', async () => {
    for (const text of await texts()) {
      let malformed = false;
      try {
        JSON.parse(text);
      } catch {
        malformed = true;
      }
      const r = parseInput(text, 1 << 24);
      assert.equal(!r.ok && r.reason.code === 'JSON_MALFORMED', malformed, text.slice(0, 120));
      if (r.ok) {
        const value = JSON.parse(text) as { dsseEnvelope?: { payload: string }; payload?: string };
        const payload = Buffer.from(value.dsseEnvelope?.payload ?? value.payload ?? '', 'base64');
        const env = r.value.format === 'bundle' ? (r.value.bundle.content as { envelope: { payload: Uint8Array } }).envelope : r.value.envelope;
        assert.deepEqual(Buffer.from(env.payload), payload);
      }
    }
  });
});
