/**
 * A workspace set up for promotion tests: a dev → staging → prod graph with
 * small unsigned policies, a build-ci attestation key, a receipts key, and
 * identities with the roles the separation-of-duties tests need. It runs on
 * the embedded store or, given a URL, on PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addArtifact } from '../../src/app/artifacts.ts';
import { createKey } from '../../src/app/keys.ts';
import { auditVerify, signWorkspaceCheckpoint, type AuditReport } from '../../src/app/log.ts';
import { attestArtifact } from '../../src/app/sign.ts';
import type { Context } from '../../src/app/workspace.ts';
import type { Artifact } from '../../src/core/artifact.ts';
import type { Clock } from '../../src/core/ports.ts';
import { tempWorkspace, useFreshKek, type Workspace } from '../helpers.ts';

export const DEPLOYER = 'ci:deployer';
export const BUILDER = 'ci:acme';
export const CAROL = 'carol@acme.example';
export const DAVE = 'dave@acme.example';
export const MALLORY = 'mallory@acme.example';

let kekReady: Promise<void> | undefined;

/** A key-encryption key for the test process (file backend keys need one). */
export function useTestKek(): Promise<void> {
  kekReady ??= useFreshKek().then(() => undefined);
  return kekReady;
}

export class TestClock implements Clock {
  private t: number;
  private readonly real: boolean;
  constructor(iso = '2026-03-10T09:00:00.000Z') {
    this.real = iso === 'real';
    this.t = this.real ? Date.now() : Date.parse(iso);
  }
  now(): Date {
    return this.real ? new Date() : new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const provenanceRequire = `    require:
      predicateType: https://slsa.dev/provenance/v1
      signers: [{ key: build-ci }]`;

export function policies(prodApprovals: number): Record<string, string> {
  const head = (name: string) => `apiVersion: custody.dev/v1\nkind: Policy\nname: ${name}\ngates:\n`;
  return {
    'dev.yaml': `${head('dev')}  provenance:\n${provenanceRequire}\n`,
    'staging.yaml': `${head('staging')}  provenance:\n${provenanceRequire}\n  promoted-from:\n    from: {}\n  versioning:\n    versioning:\n      noDowngrade: true\n`,
    'prod.yaml': `${head('prod')}  provenance:\n${provenanceRequire}\n  promoted-from:\n    from: {}\n  versioning:\n    versioning:\n      noDowngrade: true\n  approvals:\n    approvals:\n      count: ${prodApprovals}\n      approvers: [{ role: approver }]\n      distinctFrom: [requester, signers]\n`,
  };
}

export interface WorldOptions {
  /** YAML of each environment's extra settings, e.g. `target: { type: fs, dir: channels }`. */
  environments?: Partial<Record<'dev' | 'staging' | 'prod', string>>;
  prodApprovals?: number;
  /** Run on PostgreSQL at this URL (through $CUSTODY_TEST_DB). */
  postgresUrl?: string;
  /** Use the real clock (for worlds that CLI processes act on too). */
  realTime?: boolean;
}

export interface PromoWorld {
  ws: Workspace;
  clock: TestClock;
  /** The deployer's context. */
  ctx: Context;
  as(identity: string): Promise<Context>;
  /** Registers `pkg:npm/app@version` from bytes and attests SLSA provenance for it with build-ci (or another key). */
  build(version: string, options?: { key?: string; name?: string }): Promise<Artifact>;
}

export async function promoWorld(options: WorldOptions = {}): Promise<PromoWorld> {
  await useTestKek();
  const ws = await tempWorkspace(DEPLOYER);
  const path = join(ws.home, 'custody.yaml');
  const original = await readFile(path, 'utf8');
  const origin = /origin: (\S+)/.exec(original)?.[1] ?? 'custody.test/x';
  const env = (name: 'dev' | 'staging' | 'prod', from: string) => {
    const extra = options.environments?.[name];
    return `  ${name}: { ${[from, extra].filter((x) => x !== undefined && x !== '').join(', ')} }`;
  };
  await writeFile(
    path,
    [
      'version: 1',
      `identity: ${DEPLOYER}`,
      'roles:',
      `  ${DEPLOYER}: [builder, signer, deployer, key-admin, policy-admin]`,
      `  ${CAROL}: [approver]`,
      `  ${DAVE}: [approver, deployer]`,
      `  ${BUILDER}: [approver, signer]`,
      `  ${MALLORY}: [builder]`,
      `log: { origin: ${origin} }`,
      'requireSignedPolicies: false',
      ...(options.postgresUrl === undefined ? [] : ['store: { driver: postgres, urlEnv: CUSTODY_TEST_DB }']),
      'environments:',
      env('dev', ''),
      env('staging', 'from: [dev]'),
      env('prod', 'from: [staging]'),
      '',
    ].join('\n'),
  );
  await mkdir(join(ws.home, 'policies'), { recursive: true });
  for (const [f, text] of Object.entries(policies(options.prodApprovals ?? 1))) await writeFile(join(ws.home, 'policies', f), text);
  const clock = new TestClock(options.realTime ? 'real' : undefined);
  const openEnv = options.postgresUrl === undefined ? {} : { env: { ...process.env, CUSTODY_TEST_DB: options.postgresUrl } };
  const ctx = await ws.open({ clock, ...openEnv });
  await createKey(ctx, { name: 'build-ci', purposes: ['attest'], owner: BUILDER });
  await createKey(ctx, { name: 'receipts', purposes: ['promotion-receipt'], owner: 'custody@acme.example' });
  // The log key: every promotion's receipt entry gets its inclusion proof in a signed checkpoint.
  await createKey(ctx, { name: 'log', purposes: ['log-checkpoint'], owner: 'custody@acme.example' });
  const world: PromoWorld = {
    ws,
    clock,
    ctx,
    as: (identity) => ws.open({ clock, as: identity, ...openEnv }),
    async build(version, o = {}) {
      clock.advance(1000);
      const file = join(ws.dir, `app-${version}-${randomBytes(3).toString('hex')}.tgz`);
      await writeFile(file, `app ${version} ${randomBytes(8).toString('hex')}\n`);
      const { artifact } = await addArtifact(ctx, { file, name: o.name ?? 'pkg:npm/app', version });
      const predicate = join(ws.dir, `provenance-${version}.json`);
      await writeFile(
        predicate,
        JSON.stringify({
          buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1', externalParameters: { workflow: { repository: 'https://github.com/acme/app' } } },
          runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' } },
        }),
      );
      await attestArtifact(ctx, { artifact: artifact.digest, key: o.key ?? 'build-ci', type: 'provenance', predicate });
      clock.advance(1000);
      return artifact;
    },
  };
  return world;
}

/** `audit verify` of the whole log, after a checkpoint that covers every entry (so nothing is reported uncovered). */
export async function audited(ctx: Context): Promise<AuditReport> {
  await signWorkspaceCheckpoint(ctx, { force: true });
  return auditVerify(ctx);
}
