import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addArtifact, listArtifacts } from '../app/artifacts.ts';
import { createKey } from '../app/keys.ts';
import { checkPolicies, explainArtifact, policyDirOf, publishPolicies, testPolicies } from '../app/policy.ts';
import { initWorkspace, loadConfig, openWorkspace, type Context } from '../app/workspace.ts';
import { decisionText } from './commands/policy.ts';
import { CustodyError } from '../core/errors.ts';
import { EVIDENCE_STEPS } from './demo-evidence.ts';
import { LOG_STEPS } from './demo-log.ts';
import { shortDigest, table } from './output.ts';

/** One step of the guided demo: a title, what it does, and what it shows. */
interface DemoStep {
  title: string;
  run(d: DemoState): Promise<string>;
}

export interface DemoState {
  ctx: Context;
  dir: string;
  facts: Record<string, string>;
}

// The demo grows with the product: later capabilities append steps here.
export const STEPS: DemoStep[] = [
  {
    title: 'Build: register two builds of the app and a library',
    async run(d) {
      const lines: string[] = [];
      for (const [name, version, body, label] of [
        ['pkg:npm/acme-app', '1.4.1', 'console.log("app 1.4.1")\n', 'tier=critical'],
        ['pkg:npm/acme-app', '1.4.2', 'console.log("app 1.4.2")\n', 'tier=critical'],
        ['pkg:npm/acme-lib', '0.9.0', 'export const lib = 1;\n', 'tier=standard'],
      ] as const) {
        const file = join(d.dir, `${name.split('/').pop() ?? 'artifact'}-${version}.tgz`);
        await writeFile(file, body);
        const { artifact } = await addArtifact(d.ctx, { file, name, version, labels: [label], source: 'https://github.com/acme/app@3f2c1e9' });
        d.facts[`${name}@${version}`] = artifact.digest;
        lines.push(`$ custody artifact add ${file.slice(d.dir.length + 1)} --name ${name} --version ${version} --label ${label}`);
        lines.push(`  ${artifact.digest}`);
      }
      return lines.join('\n');
    },
  },
  {
    title: 'Immutability: the same version with other bytes is refused',
    async run(d) {
      const file = join(d.dir, 'tampered.tgz');
      await writeFile(file, 'console.log("not what was built")\n');
      try {
        await addArtifact(d.ctx, { file, name: 'pkg:npm/acme-app', version: '1.4.2' });
        throw new CustodyError('INTERNAL', 'the demo expected a conflict');
      } catch (e) {
        if (!(e instanceof CustodyError) || e.code !== 'ARTIFACT_CONFLICT') throw e;
        return `$ custody artifact add tampered.tgz --name pkg:npm/acme-app --version 1.4.2\n  refused (exit ${e.exitCode}, ${e.code}): ${e.message}`;
      }
    },
  },
  {
    title: 'Inventory',
    async run(d) {
      const list = await listArtifacts(d.ctx);
      return `$ custody artifact list\n${table(
        ['NAME', 'VERSION', 'DIGEST', 'LABELS'],
        list.map((a) => [a.name, a.version, shortDigest(a.digest), Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(',')]),
      )}`;
    },
  },
  ...EVIDENCE_STEPS,
];

/** The example policy set, shipped with the package next to dist/ and src/. */
const EXAMPLE_POLICIES = join(import.meta.dirname, '..', '..', 'examples', 'policies');

const GRAPH = `environments:
  dev: {}
  staging: { from: [dev] }
  prod: { from: [staging] }
groups:
  release-managers: [carol@acme.example]
`;

STEPS.push(
  {
    title: 'Policy as code: check and test the example dev → staging → prod policies',
    async run(d) {
      const config = join(d.ctx.home, 'custody.yaml');
      await writeFile(config, (await readFile(config, 'utf8')).replace('environments: {}\n', GRAPH));
      d.ctx.config = await loadConfig(d.ctx.home);
      await cp(EXAMPLE_POLICIES, policyDirOf(d.ctx), { recursive: true });
      const check = await checkPolicies(policyDirOf(d.ctx), { maxBytes: d.ctx.config.limits.configBytes });
      const tests = await testPolicies(policyDirOf(d.ctx), { maxBytes: d.ctx.config.limits.configBytes, config: d.ctx.config });
      return [
        '$ custody policy check',
        ...check.warnings.map((w) => `  warning: ${w.file}:${w.line}:${w.col}: ${w.message}`),
        `  ${check.ok ? 'ok' : 'FAILED'}: ${check.policies.length} policies (${check.policies.join(', ')}), ${check.problems.length} problems, ${check.warnings.length} explicit loosenings`,
        '$ custody policy test',
        ...tests.files.map((f) => `  ${f.file}: ${f.cases.filter((c) => c.ok).length}/${f.cases.length}`),
        `  ${tests.passed} passed, ${tests.failed} failed`,
      ].join('\n');
    },
  },
  {
    title: 'Publish: sign the policy set; decisions use only the signed version',
    async run(d) {
      // The demo's own key-encryption key, in its temporary folder, unless one is configured.
      const kekVars = ['CUSTODY_KEK_FILE', 'CUSTODY_KEY_PASSPHRASE'] as const;
      const saved = kekVars.map((k) => process.env[k]);
      if (saved.every((v) => v === undefined)) {
        const kek = join(d.dir, 'demo.kek');
        await writeFile(kek, randomBytes(32), { mode: 0o600 });
        process.env['CUSTODY_KEK_FILE'] = kek;
      }
      try {
        const key = await createKey(d.ctx, { name: 'policy-signer', purposes: ['policy'] });
        const pub = await publishPolicies(d.ctx, { key: 'policy-signer' });
        const decision = await explainArtifact(d.ctx, 'pkg:npm/acme-app@1.4.2', 'dev');
        return [
          '$ custody key create policy-signer --purpose policy',
          `  ${key.name}@${key.version} (${key.algorithm})`,
          '$ custody policy publish --key policy-signer',
          `  published policy set v${pub.version} (${shortDigest(pub.setDigest)}), signed by ${pub.key}; ${pub.loosened} explicit loosenings recorded`,
          '$ custody policy explain pkg:npm/acme-app@1.4.2 --env dev',
          decisionText(decision).replace(/^/gm, '  '),
          '  (no evidence is attached yet, so the provenance gate says what it needs)',
        ].join('\n');
      } finally {
        kekVars.forEach((k, i) => {
          const v = saved[i];
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        });
      }
    },
  },
);

// Last: the log covers everything the steps above did.
STEPS.push(...LOG_STEPS);

export interface DemoRun {
  steps: { title: string; output: string }[];
  home: string;
}

/** Runs every step in a fresh temporary workspace; `onStep` prints as it goes. */
export async function runDemo(keep: boolean, onStep: (index: number, title: string, output: string) => void): Promise<DemoRun> {
  const dir = await mkdtemp(join(tmpdir(), 'custody-demo-'));
  const home = join(dir, '.custody');
  const steps: { title: string; output: string }[] = [];
  try {
    await initWorkspace(home, { identity: 'release-bot@acme.example' });
    const ctx = await openWorkspace(home);
    try {
      const state: DemoState = { ctx, dir, facts: {} };
      for (const [i, step] of STEPS.entries()) {
        const output = await step.run(state);
        steps.push({ title: step.title, output });
        onStep(i, step.title, output);
      }
    } finally {
      await ctx.close();
    }
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
  return { steps, home };
}
