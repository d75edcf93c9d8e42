/**
 * bench/sign: signatures per second through the file backend's Signer (key
 * decrypted once, then held) against raw node:crypto `sign` with the same key,
 * the same parameters and the same 1 KiB payload, in the same run; plus the
 * one-off unlock cost and, for the record, the SoftHSM2 signing rate through
 * the PKCS#11 Signer. Method: bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { constants, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore, forgetUnlockedKeys, generateKeyPair } from '../src/adapters/keys-file.ts';
import type { KeyAlgorithm } from '../src/core/key.ts';
import type { Signer } from '../src/core/ports.ts';
import { goal, median, report } from './lib.ts';

// Many short, paired slices rather than a few long ones: on a shared machine a
// neighbour's burst then spoils a pair or two, not the median.
const PAIRS = Number(process.env['BENCH_RUNS'] ?? 3) * 8;
const SLICE_MS = Number(process.env['BENCH_SLICE_MS'] ?? 120);
// A DSSE PAE over an in-toto statement is typically around a kilobyte.
const PAYLOAD = randomBytes(1024);

/** The raw baseline: exactly the parameters the Custody algorithm names, straight into node:crypto. */
function rawSigner(algorithm: KeyAlgorithm, key: KeyObject): () => Buffer {
  switch (algorithm) {
    case 'ed25519':
      return () => sign(null, PAYLOAD, key);
    case 'ecdsa-p256-sha256':
      return () => sign('sha256', PAYLOAD, { key, dsaEncoding: 'der' });
    case 'rsa-pss-3072-sha256':
      return () => sign('sha256', PAYLOAD, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  }
}

/** Signatures per second over one time slice. */
async function rate(fn: () => unknown): Promise<number> {
  const end = performance.now() + SLICE_MS;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) await fn();
    n += 16;
  }
  return n / ((performance.now() - start) / 1000);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t };
}

/** SOFTHSM2_MODULE, else the library Debian's packages installed, else Debian's documented path. */
function softhsmModule(): string | undefined {
  if (process.env['SOFTHSM2_MODULE']) return process.env['SOFTHSM2_MODULE'];
  for (const pkg of ['softhsm2', 'libsofthsm2']) {
    try {
      const files = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
      const lib = files.find((f) => f.endsWith('/libsofthsm2.so') && existsSync(f));
      if (lib) return lib;
    } catch {
      // Not installed under this name: try the next.
    }
  }
  return existsSync('/usr/lib/softhsm/libsofthsm2.so') ? '/usr/lib/softhsm/libsofthsm2.so' : undefined;
}

const dir = await mkdtemp(join(tmpdir(), 'custody-bench-sign-'));
try {
  const home = join(dir, 'home');
  await mkdir(join(home, 'keys'), { recursive: true });
  const kekFile = join(dir, 'kek');
  await writeFile(kekFile, randomBytes(32), { mode: 0o600 });

  const rows: [string, string][] = [];
  const ratios = new Map<KeyAlgorithm, number>();
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-3072-sha256'] as const) {
    const { privateKey } = generateKeyPair(algorithm);
    const store = new FileKeyStore(home, { kekFile });
    const staged = await store.stage(privateKey, algorithm);
    await staged.publish();
    await staged.finish();
    forgetUnlockedKeys();
    const unlock = await timed(() => store.signer(staged.keyid, algorithm, staged.ref, algorithm));
    const signer: Signer = unlock.value;
    const raw = rawSigner(algorithm, privateKey);
    const viaSigner = () => signer.sign(PAYLOAD);
    // Warm both paths so neither pays for lazy initialisation inside a measured slice.
    await rate(raw);
    await rate(viaSigner);
    const raws: number[] = [];
    const ours: number[] = [];
    const perRound: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // Each pair measures both back to back, alternating which goes first, so drift hits both alike.
      let a: number;
      let b: number;
      if (i % 2 === 0) {
        a = await rate(raw);
        b = await rate(viaSigner);
      } else {
        b = await rate(viaSigner);
        a = await rate(raw);
      }
      raws.push(a);
      ours.push(b);
      perRound.push(b / a);
    }
    const ratio = median(perRound);
    ratios.set(algorithm, ratio);
    rows.push([`${algorithm} raw node:crypto`, `${median(raws).toFixed(0)} sig/s`]);
    const sorted = [...perRound].sort((x, y) => x - y);
    rows.push([
      `${algorithm} file Signer`,
      `${median(ours).toFixed(0)} sig/s  (${ratio.toFixed(2)}x raw, median of ${PAIRS} pairs; middle half ${sorted[Math.floor(PAIRS / 4)]!.toFixed(2)}-${sorted[Math.floor((3 * PAIRS) / 4)]!.toFixed(2)})`,
    ]);
    rows.push([`${algorithm} unlock (KEK file)`, `${unlock.ms.toFixed(1)} ms once per process`]);
  }

  // The passphrase path's one-off cost: scrypt N=2^17, r=8, p=1.
  {
    const { privateKey } = generateKeyPair('ed25519');
    const store = new FileKeyStore(home, { passphrase: 'benchmark passphrase' });
    const staged = await store.stage(privateKey, 'ed25519');
    await staged.publish();
    await staged.finish();
    forgetUnlockedKeys();
    const unlock = await timed(() => store.signer(staged.keyid, 'ed25519', staged.ref, 'pass'));
    const again = await timed(() => store.signer(staged.keyid, 'ed25519', staged.ref, 'pass'));
    rows.push(['unlock (passphrase, scrypt)', `${unlock.ms.toFixed(0)} ms first, ${again.ms.toFixed(2)} ms after (cached)`]);
  }
  report(`signing, file backend vs raw node:crypto (1 KiB payload, ${PAIRS} paired ${SLICE_MS} ms slices)`, rows);

  const module = softhsmModule();
  if (module === undefined || !existsSync(module)) {
    console.log('\nSoftHSM2 not found (set SOFTHSM2_MODULE): PKCS#11 rate skipped');
  } else {
    const tokens = join(dir, 'tokens');
    await mkdir(tokens);
    const conf = join(dir, 'softhsm2.conf');
    await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    process.env['SOFTHSM2_CONF'] = conf;
    const out = execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', '1234', '--so-pin', '5678'], { encoding: 'utf8' });
    const slot = Number(/reassigned to slot (\d+)/.exec(out)?.[1]);
    const { generateInToken, tokenSigner, closeModules } = await import('../src/adapters/keys-pkcs11.ts');
    const hsmRows: [string, string][] = [];
    for (const algorithm of ['ecdsa-p256-sha256', 'ed25519'] as const) {
      const made = await generateInToken({ module, slot, pin: '1234', pinEnv: 'PIN' }, algorithm, `bench-${algorithm}`);
      if (made.ref.backend !== 'pkcs11') continue;
      const signer = await tokenSigner(made.ref, '1234', made.keyid, algorithm, algorithm);
      await rate(() => signer.sign(PAYLOAD));
      const rates: number[] = [];
      for (let i = 0; i < 5; i++) rates.push(await rate(() => signer.sign(PAYLOAD)));
      hsmRows.push([`${algorithm} SoftHSM2 Signer`, `${median(rates).toFixed(0)} sig/s`]);
    }
    closeModules();
    report('signing inside SoftHSM2 through PKCS#11 (report only, no goal)', hsmRows);
  }

  console.log('');
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256'] as const) {
    const r = ratios.get(algorithm) ?? 0;
    console.log(goal(`${algorithm} file Signer at least 0.8x raw node:crypto`, r >= 0.8, `${r.toFixed(2)}x`));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
