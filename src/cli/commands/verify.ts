import type { OutputOf } from '../../app/operations/index.ts';
import { CustodyError } from '../../core/errors.ts';
import { invoke } from '../invoke.ts';
import { shortDigest, table, type CommandOutput, type GlobalOptions } from '../output.ts';
import type { Registrar } from '../program.ts';
import { requireOfflineFlags } from './promote.ts';

type DeployReport = OutputOf<'promotion.verify'>;

async function verifyEnv(g: GlobalOptions, artifact: string, environment: string, opts: { offline?: boolean; receipts?: string; keys?: string }): Promise<CommandOutput> {
  let report: DeployReport;
  if (opts.offline) {
    if (g.server !== undefined) throw new CustodyError('USAGE', '--offline verifies local files; drop --server');
    const dirs = requireOfflineFlags(opts);
    const { verifyOffline } = await import('../../app/receipts.ts');
    report = await verifyOffline({ artifact, environment, receiptsDir: dirs.receipts, keysDir: dirs.keys });
  } else {
    if (opts.receipts !== undefined || opts.keys !== undefined) throw new CustodyError('USAGE', '--receipts and --keys go with --offline');
    report = await invoke(g, 'promotion.verify', { artifact, environment });
  }
  return { json: report, human: deployText(report), exitCode: report.ok ? 0 : 1 };
}

export function deployText(r: DeployReport): string {
  const what = r.artifact.name !== null ? `${r.artifact.name}@${r.artifact.version ?? '?'} (${shortDigest(r.artifact.digest)})` : r.artifact.digest;
  const lines = [`${r.ok ? 'VERIFIED' : 'REFUSED'}: ${what} ${r.ok ? 'may' : 'may not'} run in ${r.environment} (${r.mode}, at ${r.checkedAt})`];
  if (r.current) lines.push(`  ${r.environment} runs ${r.current.version} (${shortDigest(r.current.digest)}), promotion ${r.current.promotion}`);
  if (r.head) lines.push(`  head signed ${r.head.issuedAt}, valid until ${r.head.expiresAt}`);
  if (r.chain.length > 0) lines.push(`  chain: ${r.chain.map((c) => `${c.environment} ${c.ok ? 'ok' : 'FAILED'}${c.version ? ` ${c.version}` : ''}${c.kind === 'rollback' ? ' (rollback)' : ''}${c.logIndex === null ? '' : ` [log #${c.logIndex}]`}`).join(' <- ')}`);
  for (const x of r.reasons) lines.push(`  ${x.code}: ${x.message}`);
  return lines.join('\n');
}

export function registerVerify(r: Registrar): void {
  r.command(
    r.program,
    'verify <artifact>',
    'verify every stored signature and attestation of an artifact against the workspace keys; with --env, the deploy-time gate: may it run in that environment? (exit 0 yes, 1 no)',
    'custody verify pkg:npm/app@1.4.2 --predicate-type https://slsa.dev/provenance/v1\ncustody verify pkg:npm/app@1.4.2 --env prod\ncustody verify sha256:<64 hex> --env prod --offline --receipts ./prod-receipts --keys ./prod-receipts/keys',
  )
    .option('--predicate-type <uri>', 'only attestations of this predicate type')
    .option('--env <env>', 'the deploy-time gate: a current receipt for this environment, signed by a trusted receipt key, with its chain complete, its evidence still valid and in the log')
    .option('--offline', 'with --env: verify from exported files, with no workspace (custody receipts export)')
    .option('--receipts <dir>', 'with --offline: the exported receipts folder')
    .option('--keys <dir>', 'with --offline: the folder of trusted public key records')
    .action((artifact: string, opts: { predicateType?: string; env?: string; offline?: boolean; receipts?: string; keys?: string }) => {
      r.run(async (g) => {
        if (opts.env !== undefined) return verifyEnv(g, artifact, opts.env, opts);
        if (opts.offline || opts.receipts !== undefined || opts.keys !== undefined) throw new CustodyError('USAGE', '--offline, --receipts and --keys go with --env');
        const res = await invoke(g, 'evidence.verify', { artifact, ...(opts.predicateType === undefined ? {} : { predicateType: opts.predicateType }) });
        const a = res.artifact;
        const head = `${a.name}@${a.version} ${a.digest}`;
        const human =
          res.items.length === 0
            ? `${head}\nno ${opts.predicateType === undefined ? 'signatures or attestations' : `attestations of type ${opts.predicateType}`} stored: nothing verified`
            : `${head}\n${table(
                ['RESULT', 'KIND', 'TYPE', 'SIGNED BY', 'STORED', 'EVIDENCE'],
                res.items.map((i) => [i.verified ? 'verified' : 'FAILED', i.kind ?? '', i.predicateType || '-', signerText(i), i.storedAt, shortDigest(i.digest)]),
              )}${failures(res.items)}`;
        return {
          json: res,
          human,
          exitCode: res.ok ? 0 : 1,
        };
      });
    });

  r.command(r.program, 'verify-bundle <file-or-digest>', 'verify one Sigstore bundle or DSSE envelope against an artifact, like cosign verify-blob (no workspace needed)', 'custody verify-bundle --bundle app.sigstore.json --key release.pub dist/app.tgz\ncustody verify-bundle --bundle att.json --certificate-identity https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com sha256:<64 hex>')
    .requiredOption('--bundle <file>', 'the Sigstore bundle (v0.1–v0.3) or DSSE envelope')
    .option('--key <pem-file>', 'verify with this public key (PEM SubjectPublicKeyInfo)')
    .option('--certificate-identity <id>', 'keyless: the exact certificate identity (SAN) required')
    .option('--certificate-oidc-issuer <url>', 'keyless: the exact OIDC issuer required')
    .option('--trusted-root <file>', 'keyless: Sigstore trusted root JSON (default: the public-good root shipped in @sigstore/tuf)')
    .option('--predicate-type <uri>', 'require this predicate type')
    .action((target: string, opts: { bundle: string; key?: string; certificateIdentity?: string; certificateOidcIssuer?: string; trustedRoot?: string; predicateType?: string }) => {
      r.run(async () => {
        const { verifyBundleFile } = await import('../../app/verify-bundle.ts');
        const { result } = await verifyBundleFile({
          bundle: opts.bundle,
          target,
          ...(opts.key === undefined ? {} : { key: opts.key }),
          ...(opts.certificateIdentity === undefined ? {} : { certificateIdentity: opts.certificateIdentity }),
          ...(opts.certificateOidcIssuer === undefined ? {} : { certificateOidcIssuer: opts.certificateOidcIssuer }),
          ...(opts.trustedRoot === undefined ? {} : { trustedRoot: opts.trustedRoot }),
          ...(opts.predicateType === undefined ? {} : { predicateType: opts.predicateType }),
        });
        const { statement: _statement, ...json } = result;
        const who = result.certificate ? `${result.certificate.identity} (${result.certificate.issuer})` : result.signers.join(', ');
        return {
          json,
          human: result.ok
            ? `Verified OK\n  ${result.kind ?? ''}${result.predicateType ? ` ${result.predicateType}` : ''} signed by ${who}${result.certificate && result.signedAt ? ` at ${result.signedAt} (transparency log)` : ''}`
            : `Verification failed\n${result.reasons.map((x) => `  ${x.code}: ${x.message}`).join('\n')}`,
          exitCode: result.ok ? 0 : 1,
        };
      });
    });
}

type EvidenceItem = OutputOf<'evidence.verify'>['items'][number];

function signerText(i: EvidenceItem): string {
  const s = i.signatures.find((x) => x.ok) ?? i.signatures[0];
  if (!s) return '-';
  if (s.signer.certificateIdentity) return s.signer.certificateIdentity;
  return s.signer.keyName ? `${s.signer.keyName}@${s.signer.keyVersion ?? ''}` : s.signer.keyid.slice(0, 16);
}

function failures(items: EvidenceItem[]): string {
  const lines = items.filter((i) => !i.verified).flatMap((i) => [`${shortDigest(i.digest)}:`, ...i.reasons.map((x) => `  ${x.code}: ${x.message}`)]);
  return lines.length ? `\n\n${lines.join('\n')}` : '';
}
