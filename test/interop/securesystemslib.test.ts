/**
 * Cross-check: a DSSE envelope Custody signs verifies with Debian's
 * python3-securesystemslib through test/interop/dsse_verify.py, a second,
 * independent implementation of PAE and of each signature scheme.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KeyAlgorithm } from '../../src/core/key.ts';
import { ROOT } from '../helpers.ts';
import { testKey, type TestKey } from '../fixtures/keys.ts';
import { dsseFor, randomArtifact, statementAbout } from '../fixtures/evidence.ts';

const SCRIPT = join(ROOT, 'test', 'interop', 'dsse_verify.py');

/** The key as securesystemslib 0.26 describes it (keytype, scheme, keyval). */
function sslibKey(k: TestKey): Record<string, unknown> {
  switch (k.record.algorithm) {
    case 'ed25519':
      // keyval.public is the raw 32-byte point in hex: the SPKI without its 12-byte algorithm prefix.
      return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: k.publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('hex') } };
    case 'ecdsa-p256-sha256':
      return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: k.record.publicKeyPem } };
    case 'rsa-pss-3072-sha256':
      return { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: k.record.publicKeyPem } };
  }
}

function python(input: unknown): Promise<{ code: number; verified: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Debian's python3, where python3-securesystemslib is installed, whatever else is on PATH.
    const child = spawn('python3', [SCRIPT], { env: { PATH: '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code: code ?? -1, verified: (JSON.parse(out) as { verified: string[] }).verified, stderr: err });
      } catch {
        resolve({ code: code ?? -1, verified: [], stderr: err });
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

describe('Custody DSSE envelopes verify with python3-securesystemslib', () => {
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as KeyAlgorithm[]) {
    it(`${algorithm}: verifies, and refuses a changed payload`, async () => {
      const k = testKey({ algorithm });
      const a = randomArtifact();
      const envelope = await dsseFor(statementAbout({ sha256: a.sha256 }), k.signer);
      const keys = { [k.record.keyid]: sslibKey(k) };
      const ok = await python({ envelope, keys });
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(ok.verified, [k.record.keyid]);
      const changed = { ...envelope, payload: Buffer.from(JSON.stringify(statementAbout({ sha256: randomArtifact().sha256 }))).toString('base64') };
      const bad = await python({ envelope: changed, keys });
      assert.equal(bad.code, 1, bad.stderr);
      assert.deepEqual(bad.verified, []);
    });
  }
});
