import { Option } from 'commander';
import type { OutputOf } from '../../app/operations/index.ts';
import { CustodyError } from '../../core/errors.ts';
import { invoke } from '../invoke.ts';
import { progressBar, shortDigest, table } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

type Artifact = OutputOf<'artifact.list'>['artifacts'][number];

export function registerArtifact(r: Registrar): void {
  const streams = r.streams;
  const artifact = r.group('artifact', 'register and inspect immutable artifacts');

  r.command(artifact, 'add [file]', 'register an artifact: hash it (sha256 + sha512), store it, record it', 'custody artifact add dist/app.tgz --name pkg:npm/app --version 1.4.2 --label tier=critical --source https://github.com/acme/app@3f2c1e9')
    .requiredOption('--name <name>', 'package URL or plain name, e.g. pkg:npm/app')
    .requiredOption('--version <semver>', 'semantic version, e.g. 1.4.2')
    .addOption(new Option('--digest <sha256:hex>', 'register by digest, without a file (e.g. an OCI image)'))
    .option('--label <key=value>', 'label (repeatable), e.g. tier=critical', collect)
    .option('--source <repo[@commit]>', 'source repository and commit')
    .action((file: string | undefined, opts: { name: string; version: string; digest?: string; label?: string[]; source?: string }) => {
      r.run(async (g) => {
        if ((file === undefined) === (opts.digest === undefined)) {
          throw new CustodyError('USAGE', 'give either a file or --digest, not both and not neither');
        }
        const fields = {
          name: opts.name,
          version: opts.version,
          labels: opts.label ?? [],
          ...(opts.source === undefined ? {} : { source: opts.source }),
        };
        let out: OutputOf<'artifact.add'>;
        if (file === undefined) {
          out = await invoke(g, 'artifact.add', { ...fields, digest: opts.digest ?? '' });
        } else {
          // Locally the bytes are hashed in place; remotely they stream to the server, which hashes them.
          const bar = progressBar(streams, !g.json, g.server || process.env['CUSTODY_SERVER'] ? 'uploading' : 'hashing');
          out = await invoke(g, 'artifact.upload', fields, { file, onProgress: (p) => bar.update(p.bytes, p.total) }).finally(() => bar.done());
        }
        return {
          json: out,
          human: `${out.digest}\n${out.created ? 'registered' : 'already registered'} ${out.name}@${out.version}${out.size === null ? ' (by digest)' : ` (${out.size} bytes)`}`,
        };
      });
    });

  r.command(artifact, 'list', 'list registered artifacts, newest first', 'custody artifact list --name pkg:npm/app --label tier=critical')
    .option('--name <name>', 'only this name')
    .option('--label <key=value>', 'only artifacts with this label (repeatable)', collect)
    .option('--limit <n>', 'at most n rows', (v) => Number.parseInt(v, 10))
    .action((opts: { name?: string; label?: string[]; limit?: number }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'artifact.list', {
          ...(opts.name === undefined ? {} : { name: opts.name }),
          labels: opts.label ?? [],
          ...(opts.limit === undefined || Number.isNaN(opts.limit) ? {} : { limit: opts.limit }),
        });
        const list = out.artifacts;
        return {
          json: out,
          human:
            list.length === 0
              ? 'no artifacts yet: custody artifact add <file> --name <name> --version <semver>'
              : table(
                  ['NAME', 'VERSION', 'DIGEST', 'SIZE', 'LABELS', 'ADDED'],
                  list.map((a) => [a.name, a.version, shortDigest(a.digest), a.size === null ? '-' : String(a.size), labelText(a), a.createdAt]),
                ),
        };
      });
    });

  r.command(artifact, 'show <ref>', 'show one artifact (name@version or digest) with its metadata and history', 'custody artifact show pkg:npm/app@1.4.2')
    .action((ref: string) => {
      r.run(async (g) => {
        const out = await invoke(g, 'artifact.show', { ref });
        const { artifact: a, history } = out;
        const lines = [
          `${a.name}@${a.version}`,
          `  digest:   ${a.digest}`,
          ...(a.digests.sha512 ? [`  sha512:   ${a.digests.sha512}`] : []),
          `  size:     ${a.size === null ? 'unknown (registered by digest)' : `${a.size} bytes`}`,
          `  stored:   ${a.stored ? 'yes' : 'no'}`,
          `  labels:   ${labelText(a) || '-'}`,
          `  source:   ${a.source ? `${a.source.repository ?? ''}${a.source.commit ? `@${a.source.commit}` : ''}` : '-'}`,
          `  added:    ${a.createdAt} by ${a.createdBy}`,
          '  history:',
          ...history.map((h) => `    #${h.index} ${h.time} ${h.type} by ${h.actor}`),
        ];
        return { json: out, human: lines.join('\n') };
      });
    });
}

function labelText(a: Pick<Artifact, 'labels'>): string {
  return Object.entries(a.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
