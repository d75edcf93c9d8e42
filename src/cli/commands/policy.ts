import type { OutputOf } from '../../app/operations/index.ts';
import type { SourceProblem } from '../../core/yaml.ts';
import type { Context } from '../../app/workspace.ts';
import { CustodyError } from '../../core/errors.ts';
import { withContext } from '../context.ts';
import { clientLimits, readPolicyFolder, readText, writeOut } from '../files.ts';
import { invoke } from '../invoke.ts';
import { shortDigest, table, type GlobalOptions } from '../output.ts';
import type { Registrar } from '../program.ts';

type Decision = OutputOf<'policy.explain'>;

/**
 * Opens the workspace when there is one; `check` and `test` also work on a bare
 * folder of policies. They read local files only, so they run here whether or
 * not --server is set.
 */
async function maybeContext<T>(g: GlobalOptions, fn: (ctx: Context | undefined) => Promise<T>): Promise<T> {
  try {
    return await withContext(g, fn);
  } catch (e) {
    if (e instanceof CustodyError && e.code === 'WORKSPACE_NOT_FOUND') return fn(undefined);
    throw e;
  }
}

async function defaultPath(ctx: Context | undefined, path: string | undefined): Promise<string> {
  if (path !== undefined) return path;
  if (ctx) return (await import('../../app/policy.ts')).policyDirOf(ctx);
  return 'policies';
}

const DEFAULT_MAX_BYTES = 1024 * 1024;

function problemLines(problems: readonly SourceProblem[], prefix: string): string[] {
  return problems.map((p) => `${prefix}${p.file}:${p.line}:${p.col}: ${p.message}`);
}

const MARK: Record<string, string> = { pass: 'PASS   ', fail: 'FAIL   ', waived: 'WAIVED ', pending: 'PENDING' };

export function decisionText(d: Decision): string {
  const policy = d.policy.source === 'published' ? `policy ${d.policy.name} v${d.policy.version ?? '?'}` : `policy ${d.policy.name} (unsigned files)`;
  const lines = [
    `${d.artifact.name}@${d.artifact.version} → ${d.environment}: ${d.outcome.toUpperCase()}`,
    `  ${policy}, digest ${shortDigest(d.policy.digest)}; tier ${d.tier ?? '-'}; at ${d.time}; as ${d.inputs.actor}`,
    '',
  ];
  for (const g of d.gates) {
    lines.push(`  ${MARK[g.outcome] ?? g.outcome} ${g.name} (${g.kind}): ${g.requirement}`);
    for (const r of g.reasons) lines.push(`          ${r.message}`);
  }
  for (const f of d.fastTrack) lines.push('', `  fast-track ${f.name} used: waived ${f.waived.join(', ')}`);
  if (d.exceptions.length > 0) {
    lines.push('', '  exceptions:');
    for (const e of d.exceptions) lines.push(`    ${e.id} (${e.gates.join(', ')}): ${e.applied ? 'applied' : 'not applied'}, ${e.reason}`);
  }
  lines.push('', `  ${d.summary}`);
  return lines.join('\n');
}

const EXIT: Record<Decision['outcome'], number> = { pass: 0, fail: 1, pending: 3 };

export function registerPolicy(r: Registrar): void {
  const policy = r.group('policy', 'policy-as-code: check, test, show, explain, simulate and publish policies');

  r.command(policy, 'check [path]', 'check a policy set: schema, unknown fields, CEL, templates, loosened gates (exit 0 or 2)', 'custody policy check examples/policies')
    .option('--strict', 'treat warnings (explicit loosenings, unknown predicate types, unknown keys) as errors')
    .action((path: string | undefined, opts: { strict?: boolean }) => {
      r.run(async (g) => {
        const { checkPolicies } = await import('../../app/policy.ts');
        const report = await maybeContext(g, async (ctx) =>
          checkPolicies(await defaultPath(ctx, path), { maxBytes: ctx?.config.limits.configBytes ?? DEFAULT_MAX_BYTES, ...(ctx ? { ctx } : {}), ...(opts.strict ? { strict: true } : {}) }),
        );
        const lines = [...problemLines(report.problems, ''), ...problemLines(report.warnings, 'warning: ')];
        lines.push(
          `${report.ok ? 'ok' : 'FAILED'}: ${report.files} files, ${report.policies.length} policies (${report.policies.join(', ') || 'none'}), ${report.tests} test cases; ${report.problems.length} problems, ${report.warnings.length} warnings`,
        );
        return { json: report, human: lines.join('\n'), exitCode: report.ok ? 0 : 2 };
      });
    });

  r.command(policy, 'test [path]', 'run the policy unit tests next to the policies (exit 0 all pass, 1 any fails)', 'custody policy test examples/policies')
    .option('--verbose', 'print every case, not only failures')
    .action((path: string | undefined, opts: { verbose?: boolean }) => {
      r.run(async (g) => {
        const { testPolicies } = await import('../../app/policy.ts');
        const report = await maybeContext(g, async (ctx) =>
          testPolicies(await defaultPath(ctx, path), { maxBytes: ctx?.config.limits.configBytes ?? DEFAULT_MAX_BYTES, ...(ctx ? { config: ctx.config } : {}) }),
        );
        const lines: string[] = [];
        for (const f of report.files) {
          const failed = f.cases.filter((c) => !c.ok).length;
          lines.push(`${failed === 0 ? 'ok  ' : 'FAIL'} ${f.file} (${f.name}, policy ${f.policy}): ${f.cases.length - failed}/${f.cases.length}`);
          for (const c of f.cases) {
            if (c.ok && !opts.verbose) continue;
            lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}`);
            for (const x of c.failures) lines.push(`         ${x}`);
          }
        }
        lines.push(`${report.passed} passed, ${report.failed} failed`);
        const json = { root: report.root, passed: report.passed, failed: report.failed, files: report.files.map((f) => ({ ...f, cases: f.cases.map((c) => ({ name: c.name, ok: c.ok, failures: c.failures, outcome: c.decision?.outcome ?? null })) })) };
        return { json, human: lines.join('\n'), exitCode: report.failed === 0 ? 0 : 1 };
      });
    });

  r.command(policy, 'show', "show an environment's policy, as written or fully resolved", 'custody policy show --env prod --resolved')
    .requiredOption('--env <environment>', 'the environment')
    .option('--resolved', 'after templates, parameters, overrides and tiers')
    .option('--policy <path>', 'proposed policy files instead of the policy in force')
    .action((opts: { env: string; resolved?: boolean; policy?: string }) => {
      r.run(async (g) => {
        const { stringify } = await import('yaml');
        const s = await invoke(g, 'policy.show', { environment: opts.env, ...(opts.policy === undefined ? {} : { files: await readPolicyFolder(opts.policy) }) });
        const header = `# environment ${s.environment}: policy ${s.policy}, ${s.source === 'published' ? `published v${s.version ?? '?'}` : 'unsigned files'}, digest ${s.digest}`;
        const body = opts.resolved || s.text === undefined ? stringify(s.resolved, { lineWidth: 0 }) : `# ${s.file ?? ''}\n${s.text}`;
        return { json: s, human: `${header}\n${body}` };
      });
    });

  r.command(policy, 'explain <artifact>', "evaluate an artifact against an environment's policy and explain every gate; changes nothing (exit 0 pass, 1 fail, 3 pending)", 'custody policy explain pkg:npm/app@1.4.2 --env prod')
    .requiredOption('--env <environment>', 'the environment')
    .option('--policy <bundle.json>', 'a signed policy bundle (policy publish --out) instead of the policy in force')
    .action((artifact: string, opts: { env: string; policy?: string }) => {
      r.run(async (g) => {
        const policy = opts.policy;
        const given =
          policy === undefined
            ? {}
            : /\.json$/.test(policy)
              ? { bundle: await readText(policy, (await clientLimits()).evidenceBytes, 'policy bundle'), bundleSource: policy }
              : { files: await readPolicyFolder(policy) };
        const d = await invoke(g, 'policy.explain', { artifact, environment: opts.env, ...given });
        return { json: d, human: decisionText(d), exitCode: EXIT[d.outcome] };
      });
    });

  r.command(policy, 'simulate', 'which artifacts would flip between pass and fail under proposed policy files, before they are published', 'custody policy simulate --env prod --policy ./policies')
    .requiredOption('--env <environment>', 'the environment')
    .option('--policy <path>', 'the proposed policy files (default: the workspace policy folder)')
    .option('--limit <n>', 'at most n artifacts, newest first', (v) => Number.parseInt(v, 10))
    .action((opts: { env: string; policy?: string; limit?: number }) => {
      r.run(async (g) => {
        const s = await invoke(g, 'policy.simulate', {
          environment: opts.env,
          ...(opts.policy === undefined ? {} : { files: await readPolicyFolder(opts.policy) }),
          ...(opts.limit === undefined || Number.isNaN(opts.limit) ? {} : { limit: opts.limit }),
        });
        const lines = [
          `simulating ${s.environment}: proposed ${s.proposed.path} (${shortDigest(s.proposed.digest)}) against ${s.current ? `${s.current.source === 'published' ? `published v${s.current.version ?? '?'}` : 'the policy files'} (${shortDigest(s.current.digest)})` : 'no policy in force'}`,
          `note: ${s.note}`,
          `${s.evaluated} artifacts evaluated: ${s.flips.length} would change, ${s.unchanged} unchanged`,
        ];
        if (s.flips.length > 0) {
          lines.push(
            '',
            table(
              ['ARTIFACT', 'BEFORE', 'AFTER', 'GATES'],
              s.flips.map((f) => [`${f.artifact.name}@${f.artifact.version}`, f.before, f.after, f.gates.map((x) => `${x.name} ${x.before}→${x.after}`).join(', ')]),
            ),
          );
        }
        return { json: s, human: lines.join('\n') };
      });
    });

  r.command(policy, 'publish [path]', 'sign the resolved policy set with a policy key and make it the version in force (policy-admin)', 'custody policy publish ./policies --key policy-signer --out policy-v1.json')
    .requiredOption('--key <name>', 'the signing key (purpose policy), name or name@version')
    .option('--out <file>', 'also write the signed bundle to this file')
    .action((path: string | undefined, opts: { key: string; out?: string }) => {
      r.run(async (g) => {
        // Without a path, the workspace's own policy folder (policies.dir) is published, on whichever side it is.
        const res = await invoke(g, 'policy.publish', { key: opts.key, ...(path === undefined ? {} : { files: await readPolicyFolder(path) }) });
        if (opts.out !== undefined) await writeOut(opts.out, res.bundle);
        const { bundle: _bundle, ...json } = res;
        const human = res.created
          ? `published policy set v${res.version} (${res.setDigest}), signed by ${res.key}: ${res.policies.join(', ')}${res.loosened ? `; ${res.loosened} explicit loosening(s) recorded` : ''}`
          : `nothing changed since v${res.version} (${res.setDigest}); not published again`;
        return { json: { ...json, ...(opts.out === undefined ? {} : { out: opts.out }) }, human: opts.out === undefined ? human : `${human}\nbundle written to ${opts.out}` };
      });
    });

  r.command(policy, 'versions', 'list published policy versions, newest first', 'custody policy versions')
    .action(() => {
      r.run(async (g) => {
        const out = await invoke(g, 'policy.versions', {});
        const list = out.versions;
        return {
          json: out,
          human: list.length === 0 ? 'no published policy yet: custody policy publish --key <policy-key>' : table(['VERSION', 'DIGEST', 'KEYID', 'PUBLISHED', 'BY'], list.map((v) => [String(v.version), shortDigest(v.setDigest), v.keyid.slice(0, 12), v.publishedAt, v.publishedBy])),
        };
      });
    });

  r.command(policy, 'verify <bundle>', "verify a signed policy bundle file against this workspace's keys", 'custody policy verify policy-v1.json')
    .action((file: string) => {
      r.run(async (g) => {
        const p = await invoke(g, 'policy.verify', { bundle: await readText(file, (await clientLimits()).evidenceBytes, 'policy bundle'), source: file });
        return {
          json: p,
          human: `ok: policy set v${p.version} (${p.setDigest}), published ${p.publishedAt} by ${p.publishedBy}; policies ${p.policies.join(', ')}`,
        };
      });
    });
}
