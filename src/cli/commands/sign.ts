import { Option } from 'commander';
import { clientLimits, readUtf8, writeOut } from '../files.ts';
import { invoke } from '../invoke.ts';
import { shortDigest } from '../output.ts';
import type { Registrar } from '../program.ts';

const TYPES = ['provenance', 'test-result', 'vulns', 'spdx', 'cyclonedx'];

export function registerSign(r: Registrar): void {
  r.command(r.program, 'sign <artifact>', 'sign an artifact from its digest (with ECDSA or RSA keys the same signature as over the file: cosign verify-blob accepts it): a Sigstore bundle v0.3, stored, its path printed', 'custody sign pkg:npm/app@1.4.2 --key release --out app.sigstore.json')
    .requiredOption('--key <name>', 'the signing key (sign-artifact purpose)')
    .option('--out <file>', 'also write the bundle here')
    .action((artifact: string, opts: { key: string; out?: string }) => {
      r.run(async (g) => {
        const { bundle, ...res } = await invoke(g, 'evidence.sign', { artifact, key: opts.key });
        // The bundle comes back from wherever it was signed; --out is always a file on this machine.
        if (opts.out !== undefined) await writeOut(opts.out, bundle);
        return {
          json: { path: res.path, ...(opts.out === undefined ? {} : { out: opts.out }), created: res.created, evidence: res.evidence },
          human: `${res.path}\nsigned ${shortDigest(res.evidence.subjects[0] ?? '')} with ${res.evidence.signers.map((s) => s.slice(0, 16)).join(', ')}${res.created ? '' : ' (already stored)'}`,
        };
      });
    });

  const attest = r
    .command(r.program, 'attest <artifact>', 'sign an in-toto Statement v1 about an artifact (DSSE in a Sigstore bundle v0.3), store and index it', 'custody attest pkg:npm/app@1.4.2 --type provenance --predicate provenance.json --key ci-attest')
    .addOption(new Option('--predicate-type <uri>', 'predicate type URI, e.g. https://slsa.dev/provenance/v1'))
    .addOption(new Option('--type <shorthand>', 'predicate type shorthand').choices(TYPES))
    // Not requiredOption: commander checks a parent's mandatory options for its subcommands too (`attest import`).
    .option('--predicate <file>', 'the predicate, a JSON object (checked against its type\'s schema when Custody knows it) (required)')
    .option('--key <name>', 'the signing key, attest purpose (required)')
    .option('--out <file>', 'also write the bundle here')
    .action((artifact: string, opts: { predicateType?: string; type?: string; predicate?: string; key?: string; out?: string }) => {
      r.run(async (g) => {
        const { CustodyError } = await import('../../core/errors.ts');
        if (opts.predicate === undefined || opts.key === undefined) {
          throw new CustodyError('USAGE', `required option '${opts.predicate === undefined ? '--predicate <file>' : '--key <name>'}' not specified`, { hint: 'see `custody attest --help`' });
        }
        const { predicate, key } = opts;
        const max = (await clientLimits()).evidenceBytes;
        const text = await readUtf8(predicate, max, 'predicate');
        // Parsed here too, so a file that is not JSON is named as the user named it, whichever side signs.
        const { parsePredicate } = await import('../../app/sign.ts');
        parsePredicate(text, predicate, max);
        const { bundle, ...res } = await invoke(g, 'evidence.attest', {
          artifact,
          key,
          predicate: text,
          ...(opts.predicateType === undefined ? {} : { predicateType: opts.predicateType }),
          ...(opts.type === undefined ? {} : { type: opts.type }),
        });
        if (opts.out !== undefined) await writeOut(opts.out, bundle);
        return {
          json: { path: res.path, ...(opts.out === undefined ? {} : { out: opts.out }), created: res.created, evidence: res.evidence },
          human: `${res.path}\nattested ${res.evidence.predicateType ?? ''} about ${shortDigest(res.evidence.subjects[0] ?? '')}${res.created ? '' : ' (already stored)'}`,
        };
      });
    });

  r.command(attest, 'import <file>', 'store evidence a CI made elsewhere (bundle, DSSE envelope or .intoto.jsonl), verified now and on every use', 'custody attest import provenance.intoto.jsonl\ncustody attest import app.sigstore.json --certificate-identity https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main --certificate-oidc-issuer https://token.actions.githubusercontent.com')
    .option('--certificate-identity <id>', 'keyless bundles: the exact certificate identity (SAN) required')
    .option('--certificate-oidc-issuer <url>', 'keyless bundles: the exact OIDC issuer required')
    .action((file: string, opts: { certificateIdentity?: string; certificateOidcIssuer?: string }) => {
      r.run(async (g) => {
        const res = await invoke(g, 'evidence.import', {
          evidence: await readUtf8(file, (await clientLimits()).evidenceBytes, 'evidence'),
          source: file,
          ...(opts.certificateIdentity === undefined ? {} : { certificateIdentity: opts.certificateIdentity }),
          ...(opts.certificateOidcIssuer === undefined ? {} : { certificateOidcIssuer: opts.certificateOidcIssuer }),
        });
        return {
          json: res,
          human: res.stored
            .map((s) => `${s.path}\n  ${s.evidence.kind} ${s.evidence.predicateType ?? ''} about ${shortDigest(s.evidence.subjects[0] ?? '')}, signed by ${s.evidence.signers.join(', ')}${s.created ? '' : ' (already stored)'}`)
            .join('\n'),
        };
      });
    });
}
