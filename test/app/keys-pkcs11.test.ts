/**
 * The PKCS#11 backend against a real SoftHSM2 token (Debian's softhsm2, which
 * `scripts/services.sh` installs): keys are generated and used inside the token.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pkcs11js from 'pkcs11js';
import { closeModules, generateInToken } from '../../src/adapters/keys-pkcs11.ts';
import { createKey, listKeys, loadSigner, rotateKey, showKey } from '../../src/app/keys.ts';
import type { Context } from '../../src/app/workspace.ts';
import { parsePublicKeyPem, verifyBytes } from '../../src/core/crypto.ts';
import type { KeyRecord } from '../../src/core/key.ts';
import { rejectsWithCode, spawnCli, tempDir, tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';
import { softhsmToken, type TestToken } from '../fixtures/softhsm.ts';

let token: TestToken;
// SoftHSM enumerates its tokens when a process first initialises it: make them all up front.
const spare: Record<'other' | 'gone' | 'undo' | 'cli', TestToken> = {} as never;
const PIN_ENV = 'CUSTODY_TEST_HSM_PIN';

before(async () => {
  token = await softhsmToken('custody-main');
  for (const name of ['other', 'gone', 'undo', 'cli'] as const) spare[name] = await softhsmToken(`custody-${name}`);
  process.env[PIN_ENV] = token.pin;
  await useFreshKek();
});

after(() => closeModules());

function hsm(t: TestToken = token) {
  return { backend: 'pkcs11', module: t.module, slot: String(t.slot), pinEnv: PIN_ENV };
}

/** Reads the token directly, as an auditor would: what objects exist and what their attributes say. */
function inspect(t: TestToken, pin: string = t.pin) {
  const m = new pkcs11js.PKCS11();
  m.load(t.module);
  try {
    m.C_Initialize();
  } catch {
    // Already initialised in this process by the adapter: the library is shared.
  }
  const slot = m.C_GetSlotList(true).find((h) => h.readBigUInt64LE(0) === BigInt(t.slot))!;
  const s = m.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    m.C_Login(s, pkcs11js.CKU_USER, pin);
  } catch {
    // Logged in already through another session of this process.
  }
  const objects = (template: pkcs11js.Template = []) => {
    m.C_FindObjectsInit(s, template);
    const found = m.C_FindObjects(s, 1000);
    m.C_FindObjectsFinal(s);
    return found;
  };
  return {
    count: () => objects().length,
    mechanisms: () => m.C_GetMechanismList(slot),
    privateKeys: () => objects([{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]),
    flags: (h: Buffer) => {
      const [sensitive, extractable, onToken, neverExtractable] = m.C_GetAttributeValue(s, h, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]).map((a) => a.value[0] === 1);
      return { sensitive, extractable, onToken, neverExtractable };
    },
    valueReadable: (h: Buffer) => {
      try {
        m.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_VALUE }]);
        return true;
      } catch (e) {
        return !/CKR_ATTRIBUTE_SENSITIVE/.test((e as Error).message);
      }
    },
    destroyAll: () => {
      for (const h of objects()) m.C_DestroyObject(s, h);
    },
    close: () => m.C_CloseSession(s),
  };
}

async function signAndVerify(ctx: Context, name: string): Promise<KeyRecord> {
  const { key, signer } = await loadSigner(ctx, name, 'attest');
  const data = Buffer.from(`signed in the token by ${name}`);
  const sig = await signer.sign(data);
  // Verified by node:crypto from the recorded SPKI, exactly as a file-backend signature is.
  assert.ok(verifyBytes(key.algorithm, parsePublicKeyPem(key.publicKeyPem), data, sig), `${name} verifies`);
  assert.ok(!verifyBytes(key.algorithm, parsePublicKeyPem(key.publicKeyPem), Buffer.from('other'), sig));
  return key;
}

describe('PKCS#11 backend (SoftHSM2)', () => {
  let ws: Workspace;
  let ctx: Context;
  before(async () => {
    ws = await tempWorkspace();
    ctx = await ws.open();
  });

  it('generates an ECDSA P-256 key inside the token, non-extractable, and signs there in DER that node verifies', async () => {
    const k = await createKey(ctx, { name: 'hsm-ec', purposes: ['attest'], ...hsm() });
    assert.equal(k.backend, 'pkcs11');
    assert.equal(k.algorithm, 'ecdsa-p256-sha256', 'the default in a token: every token has P-256');
    const shown = await showKey(ctx, 'hsm-ec');
    assert.equal(shown.privateKey.backend, 'pkcs11');
    if (shown.privateKey.backend === 'pkcs11') {
      assert.equal(shown.privateKey.slot, token.slot);
      assert.equal(shown.privateKey.tokenLabel, 'custody-main');
      assert.equal(shown.privateKey.pinEnv, PIN_ENV);
      assert.ok(!JSON.stringify(shown).includes(token.pin), 'the PIN is never recorded');
    }
    for (let i = 0; i < 20; i++) await signAndVerify(ctx, 'hsm-ec');
    const t = inspect(token);
    try {
      const keys = t.privateKeys();
      assert.equal(keys.length, 1);
      assert.deepEqual(t.flags(keys[0]!), { sensitive: true, extractable: false, onToken: true, neverExtractable: true });
      assert.equal(t.valueReadable(keys[0]!), false, 'CKA_VALUE is not readable');
    } finally {
      t.close();
    }
  });

  it('generates and signs with Ed25519 where the token offers CKM_EC_EDWARDS_KEY_PAIR_GEN', async (t) => {
    const probe = inspect(token);
    const edwards = probe.mechanisms().includes(0x1055);
    probe.close();
    if (!edwards) {
      // Optional for tokens: then Custody must say so clearly instead.
      const e = await rejectsWithCode(() => createKey(ctx, { name: 'hsm-ed', algorithm: 'ed25519', purposes: ['attest'], ...hsm() }), 'HSM_ERROR');
      assert.equal(e.details?.['problem'], 'mechanism');
      t.skip('this token has no Ed25519');
      return;
    }
    await createKey(ctx, { name: 'hsm-ed', algorithm: 'ed25519', purposes: ['attest'], ...hsm() });
    const k = await signAndVerify(ctx, 'hsm-ed');
    assert.equal(k.algorithm, 'ed25519');
  });

  it('rotates inside the token', async () => {
    const { key, retired } = await rotateKey(ctx, { name: 'hsm-ec', overlap: '1d' });
    assert.equal(key.version, 2);
    assert.equal(key.backend, 'pkcs11');
    assert.equal(retired[0]?.version, 1);
    assert.equal((await signAndVerify(ctx, 'hsm-ec')).version, 2);
    assert.equal((await signAndVerify(ctx, 'hsm-ec@1')).version, 1);
  });

  it('refuses RSA in a token, naming the algorithms it makes, and creates nothing', async () => {
    const t = inspect(token);
    const before = t.count();
    await rejectsWithCode(() => createKey(ctx, { name: 'hsm-rsa', algorithm: 'rsa-pss-3072-sha256', ...hsm() }), 'KEY_ALGORITHM_UNSUPPORTED');
    assert.equal(t.count(), before);
    t.close();
    assert.ok(!(await listKeys(ctx)).some((k) => k.name === 'hsm-rsa'));
  });

  it('gives HSM_ERROR naming the problem for a missing slot, module or PIN variable, and creates nothing', async () => {
    const names = (await listKeys(ctx)).map((k) => `${k.name}@${k.version}`);
    const missingSlot = await rejectsWithCode(() => createKey(ctx, { name: 'x', ...hsm(), slot: '4242' }), 'HSM_ERROR');
    assert.match(missingSlot.message, /no token in slot 4242/);
    assert.match(missingSlot.hint ?? '', new RegExp(`${token.slot} \\(custody-main\\)`));
    assert.equal(missingSlot.details?.['problem'], 'slot');
    const dir = await tempDir();
    const missingModule = await rejectsWithCode(() => createKey(ctx, { name: 'x', ...hsm(), module: join(dir, 'libnothing.so') }), 'HSM_ERROR');
    assert.match(missingModule.message, /cannot load the PKCS#11 module .*libnothing\.so/);
    assert.equal(missingModule.details?.['problem'], 'module');
    const notALibrary = join(dir, 'fake.so');
    await writeFile(notALibrary, 'not an ELF file');
    assert.equal((await rejectsWithCode(() => createKey(ctx, { name: 'x', ...hsm(), module: notALibrary }), 'HSM_ERROR')).details?.['problem'], 'module');
    const noPin = await rejectsWithCode(() => createKey(ctx, { name: 'x', ...hsm(), pinEnv: 'CUSTODY_TEST_UNSET_PIN' }), 'HSM_ERROR');
    assert.match(noPin.message, /CUSTODY_TEST_UNSET_PIN/);
    assert.equal(missingSlot.exitCode, 2);
    assert.deepEqual((await listKeys(ctx)).map((k) => `${k.name}@${k.version}`), names);
  });

  it('gives HSM_ERROR for a wrong PIN on a token this process has not logged in to, and creates nothing', async () => {
    const other = spare.other;
    const wrongEnv = 'CUSTODY_TEST_WRONG_PIN';
    process.env[wrongEnv] = 'not-the-pin';
    const e = await rejectsWithCode(() => createKey(ctx, { name: 'x', ...hsm(other), pinEnv: wrongEnv }), 'HSM_ERROR');
    assert.match(e.message, /wrong PIN for the token in slot \d+ \(CKR_PIN_INCORRECT\)/);
    assert.ok(!e.message.includes('not-the-pin') && !(e.hint ?? '').includes('not-the-pin'), 'the PIN never appears in an error');
    assert.equal(e.details?.['problem'], 'pin');
    const t = inspect(other);
    assert.equal(t.count(), 0);
    t.close();
  });

  it('refuses to sign when the token no longer holds the key', async () => {
    const other = spare.gone;
    const pinEnv = 'CUSTODY_TEST_GONE_PIN';
    process.env[pinEnv] = other.pin;
    const ws2 = await tempWorkspace();
    const ctx2 = await ws2.open();
    await createKey(ctx2, { name: 'gone', algorithm: 'ecdsa-p256-sha256', purposes: ['attest'], ...hsm(other), pinEnv });
    const t = inspect(other);
    t.destroyAll();
    t.close();
    const e = await rejectsWithCode(() => loadSigner(ctx2, 'gone', 'attest'), 'HSM_ERROR');
    assert.match(e.message, /no longer holds the key pair of gone@1/);
  });

  it('destroys both halves when a create is undone', async () => {
    const other = spare.undo;
    const made = await generateInToken({ module: other.module, slot: other.slot, pin: other.pin, pinEnv: 'X' }, 'ecdsa-p256-sha256', 'custody:undo@1');
    const t = inspect(other);
    assert.equal(t.count(), 2);
    await made.destroy();
    assert.equal(t.count(), 0);
    t.close();
  });

  it('exits 2 with HSM_ERROR from the CLI for a wrong PIN, a missing slot and a missing module', async () => {
    const fresh = spare.cli;
    const cliWs = await tempWorkspace();
    const base = ['key', 'create', 'cli-hsm', '--backend', 'pkcs11', '--pin-env', 'HSM_PIN', '--alg', 'ecdsa-p256-sha256', '--home', cliWs.home];
    const env = { SOFTHSM2_CONF: fresh.conf, HSM_PIN: 'wrong-pin' };
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--module', fresh.module, '--slot', String(fresh.slot)], env, /wrong PIN/],
      [['--module', fresh.module, '--slot', '4242'], { ...env, HSM_PIN: fresh.pin }, /no token in slot 4242/],
      [['--module', join(cliWs.dir, 'missing.so'), '--slot', String(fresh.slot)], { ...env, HSM_PIN: fresh.pin }, /cannot load the PKCS#11 module/],
    ];
    for (const [args, e, message] of cases) {
      const r = await spawnCli([...base, ...args, '--json'], { env: e });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.signal, null);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'HSM_ERROR');
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(!r.stdout.includes(fresh.pin) && !r.stderr.includes(fresh.pin));
    }
    const ok = await spawnCli([...base, '--module', fresh.module, '--slot', String(fresh.slot), '--json'], { env: { ...env, HSM_PIN: fresh.pin } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json<{ key: { name: string; backend: string } }>().key.backend, 'pkcs11');
  });
});
