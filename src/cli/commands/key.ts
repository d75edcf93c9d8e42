import type { KeyView } from '../../app/keys.ts';
import { withContext } from '../context.ts';
import { table } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerKey(r: Registrar): void {
  const key = r.group('key', 'create, rotate, retire and revoke signing keys');

  r.command(
    key,
    'create <name>',
    'create a signing key: the private half encrypted in the workspace (file) or generated inside an HSM (pkcs11)',
    'custody key create release --alg ecdsa-p256-sha256 --purpose sign-artifact --purpose attest --expires 90d',
  )
    .option('--alg <algorithm>', 'ed25519 (default), ecdsa-p256-sha256 or rsa-pss-3072-sha256')
    .option('--purpose <purpose>', 'sign-artifact, attest, promotion-receipt, policy or log-checkpoint (repeatable; default: sign-artifact and attest)', collect)
    .option('--expires <duration>', 'validity from now, e.g. 90d (default: no expiry)')
    .option('--backend <backend>', 'file (default: encrypted under CUSTODY_KEK_FILE or CUSTODY_KEY_PASSPHRASE) or pkcs11')
    .option('--owner <identity>', 'who owns the key (default: the acting identity)')
    .action((name: string, opts: { alg?: string; purpose?: string[]; expires?: string; backend?: string; owner?: string }) => {
      r.run(async (g) => {
        const { createKey } = await import('../../app/keys.ts');
        const k = await withContext(g, (ctx) =>
          createKey(ctx, {
            name,
            ...(opts.alg === undefined ? {} : { algorithm: opts.alg }),
            purposes: opts.purpose ?? [],
            ...(opts.expires === undefined ? {} : { expires: opts.expires }),
            ...(opts.backend === undefined ? {} : { backend: opts.backend }),
            ...(opts.owner === undefined ? {} : { owner: opts.owner }),
          }),
        );
        return {
          json: { key: k },
          human: `created ${k.name}@${k.version} (${k.algorithm}, ${k.backend})\n  keyid:    ${k.keyid}\n  purposes: ${k.purposes.join(', ')}\n  valid:    ${k.notBefore} → ${k.notAfter ?? 'no expiry'}`,
        };
      });
    });

  r.command(key, 'list', 'list every version of every key, with what it can do now', 'custody key list --json').action(() => {
    r.run(async (g) => {
      const { listKeys } = await import('../../app/keys.ts');
      const keys = await withContext(g, (ctx) => listKeys(ctx));
      return {
        json: { keys },
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
      const { showKey } = await import('../../app/keys.ts');
      const d = await withContext(g, (ctx) => showKey(ctx, ref));
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
        `  versions:  ${d.versions.map((v: KeyView) => `${v.version} (${v.state})`).join(', ')}`,
        '  history:',
        ...d.history.map((h) => `    #${h.index} ${h.time} ${h.type} by ${h.actor}`),
      ];
      return { json: d, human: lines.join('\n') };
    });
  });
}
