import { clientLimits, readText } from '../files.ts';
import { invoke } from '../invoke.ts';
import { table } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** As the use case reads a PEM public key: a few KiB at most. */
async function readPem(file: string): Promise<string> {
  return readText(file, Math.min(16 * 1024, (await clientLimits()).configBytes), 'PEM public key');
}

export function registerKey(r: Registrar): void {
  const key = r.group('key', 'create, rotate, retire and revoke signing keys');

  r.command(
    key,
    'create <name>',
    'create a signing key: the private half encrypted in the workspace (file) or generated inside an HSM (pkcs11)',
    'custody key create release --alg ecdsa-p256-sha256 --purpose sign-artifact --purpose attest --expires 90d',
  )
    .option('--alg <algorithm>', 'ed25519 (default; ecdsa-p256-sha256 for pkcs11), ecdsa-p256-sha256 or rsa-pss-3072-sha256 (file only)')
    .option('--purpose <purpose>', 'sign-artifact, attest, promotion-receipt, policy or log-checkpoint (repeatable; default: sign-artifact and attest)', collect)
    .option('--expires <duration>', 'validity from now, e.g. 90d (default: no expiry)')
    .option('--backend <backend>', 'file (default: encrypted under CUSTODY_KEK_FILE or CUSTODY_KEY_PASSPHRASE) or pkcs11')
    .option('--owner <identity>', 'who owns the key (default: the acting identity)')
    .option('--module <path>', 'pkcs11: absolute path of the PKCS#11 library')
    .option('--slot <id>', 'pkcs11: the slot id holding the token')
    .option('--pin-env <var>', 'pkcs11: the environment variable that holds the user PIN (never the PIN itself)')
    .action((name: string, opts: { alg?: string; purpose?: string[]; expires?: string; backend?: string; owner?: string; module?: string; slot?: string; pinEnv?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'key.create', {
          name,
          ...(opts.alg === undefined ? {} : { algorithm: opts.alg }),
          purposes: opts.purpose ?? [],
          ...(opts.expires === undefined ? {} : { expires: opts.expires }),
          ...(opts.backend === undefined ? {} : { backend: opts.backend }),
          ...(opts.owner === undefined ? {} : { owner: opts.owner }),
          ...(opts.module === undefined ? {} : { module: opts.module }),
          ...(opts.slot === undefined ? {} : { slot: opts.slot }),
          ...(opts.pinEnv === undefined ? {} : { pinEnv: opts.pinEnv }),
        });
        const k = out.key;
        return {
          json: out,
          human: `created ${k.name}@${k.version} (${k.algorithm}, ${k.backend})\n  keyid:    ${k.keyid}\n  purposes: ${k.purposes.join(', ')}\n  valid:    ${k.notBefore} → ${k.notAfter ?? 'no expiry'}`,
        };
      });
    });

  r.command(key, 'list', 'list every version of every key, with what it can do now', 'custody key list --json').action(() => {
    r.run(async (g) => {
      const out = await invoke(g, 'key.list', {});
      const keys = out.keys;
      return {
        json: out,
        human:
          keys.length === 0
            ? 'no keys yet: custody key create <name>'
            : table(
                ['KEY', 'STATE', 'ALGORITHM', 'BACKEND', 'PURPOSES', 'KEYID', 'OWNER', 'NOT AFTER'],
                keys.map((k) => [`${k.name}@${k.version}`, k.state, k.algorithm, k.backend, k.purposes.join(','), k.keyid.slice(0, 12), k.owner, k.notAfter ?? '-']),
              ),
      };
    });
  });

  r.command(key, 'show <key>', 'show one key (name for the newest version, or name@version) with its history', 'custody key show release@2').action((ref: string) => {
    r.run(async (g) => {
      const d = await invoke(g, 'key.show', { ref });
      const k = d.key;
      const where =
        d.privateKey.backend === 'file'
          ? `encrypted file ${d.privateKey.path}`
          : d.privateKey.backend === 'pkcs11'
            ? `PKCS#11 ${d.privateKey.module} slot ${d.privateKey.slot}${d.privateKey.tokenLabel ? ` (token ${d.privateKey.tokenLabel})` : ''}, object ${d.privateKey.objectId}, PIN from $${d.privateKey.pinEnv}`
            : 'external (Custody holds only the public key)';
      const lines = [
        `${k.name}@${k.version}`,
        `  keyid:     ${k.keyid}`,
        `  state:     ${k.state} (status ${k.status})`,
        `  algorithm: ${k.algorithm}`,
        `  purposes:  ${k.purposes.join(', ')}`,
        `  owner:     ${k.owner}`,
        `  valid:     ${k.notBefore} → ${k.notAfter ?? 'no expiry'}`,
        ...(k.retiredAt ? [`  retired:   ${k.retiredAt} (verify-only from then on)`] : []),
        ...(k.revokedAt ? [`  revoked:   ${k.revokedAt} (${k.revocationReason ?? 'no reason'}), compromised since ${k.compromisedSince ?? k.revokedAt}`] : []),
        `  private:   ${where}`,
        `  created:   ${k.createdAt} by ${k.createdBy}`,
        `  versions:  ${d.versions.map((v) => `${v.version} (${v.state})`).join(', ')}`,
        '  history:',
        ...d.history.map((h) => `    #${h.index} ${h.time} ${h.type} by ${h.actor}`),
      ];
      return { json: d, human: lines.join('\n') };
    });
  });

  r.command(key, 'check <key>', 'prove a key can sign here: unlock it (KEK or HSM PIN), sign a challenge, verify it', 'custody key check release --purpose attest')
    .option('--purpose <purpose>', 'check it may sign for this purpose (default: its first)')
    .action((ref: string, opts: { purpose?: string }) => {
      r.run(async (g) => {
        const c = await invoke(g, 'key.check', { ref, ...(opts.purpose === undefined ? {} : { purpose: opts.purpose }) });
        return {
          json: c,
          human: `${c.name}@${c.version} can sign for ${c.purpose} (${c.backend}); a test signature verified against ${c.keyid.slice(0, 12)}`,
        };
      });
    });

  r.command(key, 'export-public <key>', 'print the public key of a key (name for the newest version, or name@version)', 'custody key export-public release@2 --format jwk')
    .option('--format <format>', 'pem (default) or jwk')
    .action((ref: string, opts: { format?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'key.export-public', { ref, ...(opts.format === undefined ? {} : { format: opts.format }) });
        return { json: out, human: out.pem ?? JSON.stringify(out.jwk, null, 2) };
      });
    });

  r.command(key, 'import-public <name> <pem-file>', 'register an external key from its PEM public key: it verifies, Custody never holds its private half', 'custody key import-public ci-release ci-release.pub.pem --purpose attest --owner github:acme/app --keyid 3f9a…')
    .option('--purpose <purpose>', 'what it is trusted for (repeatable; default: sign-artifact and attest)', collect)
    .option('--owner <identity>', 'who holds the private half (default: the acting identity)')
    .option('--keyid <hex>', 'refuse the file unless its key id is exactly this (SHA-256 of the SPKI)')
    .option('--expires <duration>', 'validity from now, e.g. 365d (default: no expiry)')
    .action((name: string, pemFile: string, opts: { purpose?: string[]; owner?: string; keyid?: string; expires?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'key.import-public', {
          name,
          pem: await readPem(pemFile),
          source: pemFile,
          purposes: opts.purpose ?? [],
          ...(opts.owner === undefined ? {} : { owner: opts.owner }),
          ...(opts.keyid === undefined ? {} : { keyid: opts.keyid }),
          ...(opts.expires === undefined ? {} : { expires: opts.expires }),
        });
        const k = out.key;
        return { json: out, human: `imported ${k.name}@${k.version} (${k.algorithm}, external)\n  keyid:    ${k.keyid}\n  owner:    ${k.owner}\n  purposes: ${k.purposes.join(', ')}` };
      });
    });

  r.command(key, 'rotate <name>', 'make the next version of a key; earlier versions become verify-only (after the overlap)', 'custody key rotate release --overlap 7d')
    .option('--overlap <duration>', 'how long the replaced version may keep signing, e.g. 7d (default: none)')
    .option('--alg <algorithm>', 'algorithm of the new version (default: the same)')
    .option('--expires <duration>', 'validity of the new version (default: the same length as the replaced one)')
    .option('--public-key <pem-file>', 'external keys: the successor\'s public key')
    .action((name: string, opts: { overlap?: string; alg?: string; expires?: string; publicKey?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'key.rotate', {
          name,
          ...(opts.overlap === undefined ? {} : { overlap: opts.overlap }),
          ...(opts.alg === undefined ? {} : { algorithm: opts.alg }),
          ...(opts.expires === undefined ? {} : { expires: opts.expires }),
          ...(opts.publicKey === undefined ? {} : { publicKeyPem: await readPem(opts.publicKey) }),
        });
        const { key: k, retired } = out;
        return {
          json: out,
          human: [`rotated ${k.name}: now ${k.name}@${k.version} (${k.keyid})`, ...retired.map((o) => `  ${o.name}@${o.version} signs until ${o.retiredAt ?? '?'}, then verifies only`)].join('\n'),
        };
      });
    });

  r.command(key, 'retire <key@version>', 'stop one version signing now; it keeps verifying what it signed before', 'custody key retire release@1').action((ref: string) => {
    r.run(async (g) => {
      const out = await invoke(g, 'key.retire', { ref });
      const k = out.key;
      return { json: out, human: `retired ${k.name}@${k.version} at ${k.retiredAt ?? '?'}: verify-only from now on` };
    });
  });

  r.command(
    key,
    'revoke <key@version>',
    'revoke one version, permanently: it never signs again, and its signatures from --compromised-since on stop verifying',
    'custody key revoke release@1 --reason compromised --compromised-since 2026-11-20T09:00:00Z',
  )
    .requiredOption('--reason <reason>', 'compromised, superseded, cessation-of-operation, affiliation-changed or unspecified')
    .option('--compromised-since <rfc3339>', 'earliest instant the key may have been misused (default: now; never in the future)')
    .action((ref: string, opts: { reason: string; compromisedSince?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'key.revoke', { ref, reason: opts.reason, ...(opts.compromisedSince === undefined ? {} : { compromisedSince: opts.compromisedSince }) });
        const k = out.key;
        return {
          json: out,
          human: `revoked ${k.name}@${k.version} (${k.revocationReason ?? ''}): signatures made at or after ${k.compromisedSince ?? '?'} no longer verify`,
        };
      });
    });
}
