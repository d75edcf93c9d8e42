import { Option } from 'commander';
import type { Artifact } from '../../core/artifact.ts';
import { withContext } from '../context.ts';
import { progressBar, shortDigest, table } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

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
        const { addArtifact } = await import('../../app/artifacts.ts');
        const bar = progressBar(streams, !g.json, 'hashing');
        const { artifact: a, created } = await withContext(g, (ctx) =>
          addArtifact(ctx, {
            ...(file === undefined ? {} : { file }),
            ...(opts.digest === undefined ? {} : { digest: opts.digest }),
            name: opts.name,
            version: opts.version,
            labels: opts.label ?? [],
            ...(opts.source === undefined ? {} : { source: opts.source }),
            onProgress: (p) => bar.update(p.bytes, p.total),
          }),
        ).finally(() => bar.done());
        return {
          json: { digest: a.digest, name: a.name, version: a.version, size: a.size, created, digests: a.digests, labels: a.labels, source: a.source },
          human: `${a.digest}\n${created ? 'registered' : 'already registered'} ${a.name}@${a.version}${a.size === null ? ' (by digest)' : ` (${a.size} bytes)`}`,
        };
      });
    });

  r.command(artifact, 'list', 'list registered artifacts, newest first', 'custody artifact list --name pkg:npm/app --label tier=critical')
    .option('--name <name>', 'only this name')
    .option('--label <key=value>', 'only artifacts with this label (repeatable)', collect)
    .option('--limit <n>', 'at most n rows', (v) => Number.parseInt(v, 10))
    .action((opts: { name?: string; label?: string[]; limit?: number }) => {
      r.run(async (g) => {
        const { listArtifacts } = await import('../../app/artifacts.ts');
        const list = await withContext(g, (ctx) =>
          listArtifacts(ctx, {
            ...(opts.name === undefined ? {} : { name: opts.name }),
            labels: opts.label ?? [],
            ...(opts.limit === undefined || Number.isNaN(opts.limit) ? {} : { limit: opts.limit }),
          }),
        );
        return {
          json: { artifacts: list },
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
        const { showArtifact } = await import('../../app/artifacts.ts');
        const { artifact: a, history } = await withContext(g, (ctx) => showArtifact(ctx, ref));
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
        return { json: { artifact: a, history }, human: lines.join('\n') };
      });
    });
}

function labelText(a: Artifact): string {
  return Object.entries(a.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
