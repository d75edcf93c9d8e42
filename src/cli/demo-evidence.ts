/** Demo steps for signatures and attestations: a key, a signature, an attestation, verification, tampering caught. */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyArtifact } from '../app/evidence.ts';
import { createKey, exportPublicKey } from '../app/keys.ts';
import { attestArtifact, signArtifact } from '../app/sign.ts';
import { verifyBundleFile } from '../app/verify-bundle.ts';
import type { DemoState } from './demo.ts';
import { shortDigest, table } from './output.ts';

const KEK_ENV = 'CUSTODY_KEK_FILE';

export const EVIDENCE_STEPS: { title: string; run(d: DemoState): Promise<string> }[] = [
  {
    title: 'Keys: a signing key for the release pipeline',
    async run(d) {
      // The demo brings its own key-encryption key unless the environment names one.
      if (process.env[KEK_ENV] === undefined && process.env['CUSTODY_KEY_PASSPHRASE'] === undefined) {
        const kek = join(d.dir, 'demo.kek');
        await writeFile(kek, randomBytes(32), { mode: 0o600 });
        process.env[KEK_ENV] = kek;
        d.facts['kek'] = 'set';
      }
      const key = await createKey(d.ctx, { name: 'release', purposes: ['sign-artifact', 'attest'] });
      return `$ custody key create release --purpose sign-artifact --purpose attest\n  ${key.name}@${key.version} ${key.algorithm} keyid ${key.keyid.slice(0, 16)}…`;
    },
  },
  {
    title: 'Sign and attest: a signature and a test-result attestation for app 1.4.2',
    async run(d) {
      const sig = await signArtifact(d.ctx, { artifact: 'pkg:npm/acme-app@1.4.2', key: 'release' });
      const predicate = join(d.dir, 'test-results.json');
      await writeFile(predicate, JSON.stringify({ result: 'PASSED', configuration: [{ uri: 'https://github.com/acme/app/blob/3f2c1e9/.github/workflows/ci.yml' }], passedTests: ['unit', 'integration', 'e2e'], failedTests: [] }));
      const att = await attestArtifact(d.ctx, { artifact: 'pkg:npm/acme-app@1.4.2', key: 'release', type: 'test-result', predicate });
      d.facts['bundle'] = sig.path;
      const rel = (p: string) => p.slice(d.dir.length + 1);
      return [
        '$ custody sign pkg:npm/acme-app@1.4.2 --key release',
        `  ${rel(sig.path)}   (Sigstore bundle v0.3, message signature over the digest)`,
        '$ custody attest pkg:npm/acme-app@1.4.2 --type test-result --predicate test-results.json --key release',
        `  ${rel(att.path)}   (in-toto Statement v1 in DSSE, in a bundle v0.3)`,
      ].join('\n');
    },
  },
  {
    title: 'Verify: every signature and attestation, each at the time Custody recorded it',
    async run(d) {
      const v = await verifyArtifact(d.ctx, { artifact: 'pkg:npm/acme-app@1.4.2' });
      return `$ custody verify pkg:npm/acme-app@1.4.2\n${table(
        ['RESULT', 'KIND', 'TYPE', 'EVIDENCE'],
        v.items.map((i) => [i.verified ? 'verified' : 'FAILED', i.kind ?? '', i.predicateType || '-', shortDigest(i.digest)]),
      )}`;
    },
  },
  {
    title: 'Tampering is caught: the bundle checked against another build, and edited',
    async run(d) {
      const bundle = d.facts['bundle'] ?? '';
      const pub = join(d.dir, 'release.pub');
      await writeFile(pub, (await exportPublicKey(d.ctx, 'release')).pem ?? '');
      const other = d.facts['pkg:npm/acme-app@1.4.1'] ?? '';
      const wrongArtifact = await verifyBundleFile({ bundle, key: pub, target: other });
      const edited = join(d.dir, 'edited.sigstore.json');
      const json = JSON.parse(await readFile(bundle, 'utf8')) as { messageSignature: { signature: string } };
      const sig = Buffer.from(json.messageSignature.signature, 'base64');
      sig[sig.length - 1]! ^= 0x01;
      json.messageSignature.signature = sig.toString('base64');
      await writeFile(edited, JSON.stringify(json));
      const flipped = await verifyBundleFile({ bundle: edited, key: pub, target: d.facts['pkg:npm/acme-app@1.4.2'] ?? '' });
      if (d.facts['kek'] === 'set') delete process.env[KEK_ENV];
      const show = (r: typeof flipped) => (r.result.ok ? 'Verified OK' : `exit 1, ${r.result.reasons.map((x) => x.code).join(', ')}`);
      return [
        `$ custody verify-bundle --bundle ${bundle.slice(d.dir.length + 1)} --key release.pub ${shortDigest(other)}`,
        `  ${show(wrongArtifact)}`,
        '$ custody verify-bundle --bundle edited.sigstore.json --key release.pub sha256:…   (one bit of the signature flipped)',
        `  ${show(flipped)}`,
      ].join('\n');
    },
  },
];
