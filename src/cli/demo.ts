import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addArtifact, listArtifacts } from '../app/artifacts.ts';
import { initWorkspace, openWorkspace, type Context } from '../app/workspace.ts';
import { CustodyError } from '../core/errors.ts';
import { EVIDENCE_STEPS } from './demo-evidence.ts';
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
