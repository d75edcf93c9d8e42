/**
 * The guided demo (`custody demo`, `npm start`): a realistic pipeline on the
 * example dev → staging → prod policies, in a temporary workspace. Two builds
 * of an app get provenance, tests and a scan; they are promoted through the
 * graph (staging after a soak in dev, prod after a day in staging and an
 * approval by a second identity); the deploy-time gate admits the current
 * one, online and offline; a CI key leaks and the gate flips to refusing; the
 * rollback revalidates the previous version against today's keys and policy.
 *
 * The demo runs on its own clock, starting on a Tuesday morning, so soak
 * times and freeze windows behave the same whenever it runs: "a day passes"
 * moves that clock, and every time printed is the demo's.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addArtifact } from '../app/artifacts.ts';
import { verifyArtifact } from '../app/evidence.ts';
import { createKey, exportPublicKey, revokeKeyVersion } from '../app/keys.ts';
import { checkPolicies, policyDirOf, publishPolicies, testPolicies } from '../app/policy.ts';
import { approvePromotion, promote, rollback, type PromotionView } from '../app/promotion.ts';
import { promotionHistory, promotionStatus } from '../app/promotion-board.ts';
import { exportReceipts, verifyEnvironment, verifyOffline, writeExport } from '../app/receipts.ts';
import { attestArtifact, signArtifact } from '../app/sign.ts';
import { verifyBundleFile } from '../app/verify-bundle.ts';
import { moduleUrl } from '../adapters/module-url.ts';
import { initWorkspace, loadConfig, openWorkspace, type Context } from '../app/workspace.ts';
import { CustodyError } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { deployText } from './commands/verify.ts';
import { promotionText } from './commands/promote.ts';
import { LOG_STEPS } from './demo-log.ts';
import { shortDigest, table } from './output.ts';

/** One step of the guided demo: a title, what it does, and what it shows. */
interface DemoStep {
  title: string;
  run(d: DemoState): Promise<string>;
}

/** The demo's clock: it only moves when the story says time passes. */
export class DemoClock implements Clock {
  private t: number;
  constructor(iso: string) {
    this.t = Date.parse(iso);
  }
  now(): Date {
    return new Date(this.t);
  }
  pass(ms: number): void {
    this.t += ms;
  }
}

export interface DemoState {
  ctx: Context;
  dir: string;
  clock: DemoClock;
  /** The workspace acting as another identity, on the same clock. */
  as(identity: string): Promise<Context>;
  facts: Record<string, string>;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const BOT = 'release-bot@acme.example';
const CAROL = 'carol@acme.example';
const APP = 'pkg:npm/acme-app';
const CI = 'ci:github/acme/app';

/** The example policy set, shipped with the package next to dist/ and src/. */
const examplePolicies = (): string => join(dirname(fileURLToPath(moduleUrl(import.meta.url))), '..', '..', 'examples', 'policies');

const GRAPH = `environments:
  dev: { target: { type: fs, dir: channels } }
  staging: { from: [dev], target: { type: fs, dir: channels } }
  prod: { from: [staging], target: { type: fs, dir: channels } }
groups:
  release-managers: [${CAROL}]
`;

function rel(d: DemoState, p: string): string {
  return p.startsWith(d.dir) ? p.slice(d.dir.length + 1) : p;
}

function indent(text: string, by = '  '): string {
  return text.replace(/^/gm, by);
}

function when(d: DemoState): string {
  const t = d.clock.now();
  const day = t.toLocaleDateString('en-GB', { weekday: 'long', timeZone: 'Europe/Berlin' });
  const hm = t.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Berlin' });
  return `${day} ${hm} Berlin`;
}

/** One line per promotion for the steps that move fast. */
function outcomeLine(p: PromotionView): string {
  const exit = p.state === 'promoted' ? 0 : p.state === 'awaiting-approval' ? 3 : 1;
  const why = p.state === 'promoted' ? `receipt ${shortDigest(p.receipt ?? '')}` : p.reasons.map((r) => r.message).join('; ');
  return `  exit ${exit}: ${p.state} (${p.decision?.summary ?? '-'}); ${why}`;
}

/** A build: bytes, then provenance and tests from CI (build-ci) and a scan from the scanner, each signed as DSSE. */
async function build(d: DemoState, version: string): Promise<string[]> {
  const file = join(d.dir, `acme-app-${version}.tgz`);
  await writeFile(file, `console.log("acme-app ${version}")\n`);
  const { artifact } = await addArtifact(d.ctx, { file, name: APP, version, labels: ['tier=standard', 'team=payments'], source: 'https://github.com/acme/app@3f2c1e9' });
  d.facts[version] = artifact.digest;
  const now = d.clock.now().toISOString();
  const predicates = {
    provenance: {
      buildDefinition: { buildType: 'https://actions.github.io/buildtypes/workflow/v1', externalParameters: { workflow: { repository: 'https://github.com/acme/app', ref: 'refs/heads/main', path: '.github/workflows/release.yml' } } },
      runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' }, metadata: { invocationId: `https://github.com/acme/app/actions/runs/${version.replace(/\./g, '')}`, finishedOn: now } },
    },
    'test-result': { result: 'PASSED', configuration: [{ uri: 'https://github.com/acme/app/blob/3f2c1e9/.github/workflows/ci.yml' }], passedTests: ['unit', 'integration', 'e2e'], failedTests: [] },
    vulns: {
      scanner: { uri: 'pkg:github/aquasecurity/trivy@0.50.0', result: [{ id: 'CVE-2026-0001', severity: [{ method: 'nvd', score: '5.3' }] }] },
      metadata: { scanStartedOn: now, scanFinishedOn: now },
    },
  } as const;
  const lines = [`$ custody artifact add acme-app-${version}.tgz --name ${APP} --version ${version} --label tier=standard --label team=payments`, `  ${artifact.digest}`];
  for (const [type, key] of [['provenance', 'build-ci'], ['test-result', 'build-ci'], ['vulns', 'scanner']] as const) {
    const predicate = join(d.dir, `${type}-${version}.json`);
    await writeFile(predicate, JSON.stringify(predicates[type]));
    const att = await attestArtifact(d.ctx, { artifact: artifact.digest, key, type, predicate });
    lines.push(`$ custody attest ${APP}@${version} --type ${type} --predicate ${type}-${version}.json --key ${key}`, `  ${rel(d, att.path)}`);
  }
  return lines;
}

async function promoteLine(d: DemoState, version: string, env: string): Promise<string[]> {
  const p = await promote(d.ctx, { artifact: `${APP}@${version}`, to: env, idempotencyKey: `release-${version}-${env}` });
  d.facts[`${version}/${env}`] = p.id;
  return [`$ custody promote ${APP}@${version} --to ${env} --idempotency-key release-${version}-${env}   # ${when(d)}`, outcomeLine(p)];
}

export const STEPS: DemoStep[] = [
  {
    title: 'Set up: the dev → staging → prod graph, and the keys of CI, the scanner, receipts, policy and the log',
    async run(d) {
      const config = join(d.ctx.home, 'custody.yaml');
      const text = (await readFile(config, 'utf8')).replace('environments: {}\n', GRAPH).replace(/^roles:\n/m, `roles:\n  ${CAROL}: [approver]\n`);
      await writeFile(config, text);
      d.ctx.config = await loadConfig(d.ctx.home);
      const lines = ['# custody.yaml', ...GRAPH.trimEnd().split('\n').map((l) => `  ${l}`), `  roles: { ${CAROL}: [approver], ${BOT}: [all roles] }`];
      for (const [name, purposes, owner] of [
        ['build-ci', ['attest', 'sign-artifact'], CI],
        ['scanner', ['attest'], 'ci:github/acme/scanner'],
        ['receipts', ['promotion-receipt'], BOT],
        ['policy-signer', ['policy'], BOT],
        ['log', ['log-checkpoint'], BOT],
      ] as const) {
        const key = await createKey(d.ctx, { name, purposes, owner });
        lines.push(`$ custody key create ${name} ${purposes.map((p) => `--purpose ${p}`).join(' ')} --owner ${owner}`, `  ${key.name}@${key.version} ${key.algorithm} keyid ${key.keyid.slice(0, 16)}…`);
      }
      return lines.join('\n');
    },
  },
  {
    title: 'Policy as code: check, test and publish the example policies (decisions use only the signed set)',
    async run(d) {
      await cp(examplePolicies(), policyDirOf(d.ctx), { recursive: true });
      const check = await checkPolicies(policyDirOf(d.ctx), { maxBytes: d.ctx.config.limits.configBytes });
      const tests = await testPolicies(policyDirOf(d.ctx), { maxBytes: d.ctx.config.limits.configBytes, config: d.ctx.config });
      const pub = await publishPolicies(d.ctx, { key: 'policy-signer' });
      return [
        '$ custody policy check',
        `  ${check.ok ? 'ok' : 'FAILED'}: ${check.policies.length} policies (${check.policies.join(', ')}), ${check.problems.length} problems, ${check.warnings.length} explicit loosenings`,
        '$ custody policy test',
        `  ${tests.passed} passed, ${tests.failed} failed`,
        '$ custody policy publish --key policy-signer',
        `  published policy set v${pub.version} (${shortDigest(pub.setDigest)}), signed by ${pub.key}`,
        '  dev: provenance from CI. staging: provenance from acme/app, tests PASSED, no HIGH vulnerability, 1h in dev.',
        '  prod: the same, 24h in staging, newer than the current, one approval (not the requester, not a signer), no weekend or year-end deploys.',
      ].join('\n');
    },
  },
  {
    title: 'Build 1.4.1: the artifact, SLSA provenance and test results from CI, and a vulnerability scan',
    async run(d) {
      d.clock.pass(5 * MINUTE);
      return (await build(d, '1.4.1')).join('\n');
    },
  },
  {
    title: 'Immutability: the same version with other bytes is refused',
    async run(d) {
      const file = join(d.dir, 'tampered.tgz');
      await writeFile(file, 'console.log("not what was built")\n');
      try {
        await addArtifact(d.ctx, { file, name: APP, version: '1.4.1' });
        throw new CustodyError('INTERNAL', 'the demo expected a conflict');
      } catch (e) {
        if (!(e instanceof CustodyError) || e.code !== 'ARTIFACT_CONFLICT') throw e;
        return `$ custody artifact add tampered.tgz --name ${APP} --version 1.4.1\n  refused (exit ${e.exitCode}, ${e.code}): ${e.message}`;
      }
    },
  },
  {
    title: '1.4.1 goes through dev and staging, then prod with an approval: the version a rollback can return to',
    async run(d) {
      const lines = [...(await promoteLine(d, '1.4.1', 'dev'))];
      d.clock.pass(70 * MINUTE);
      lines.push(...(await promoteLine(d, '1.4.1', 'staging')));
      d.clock.pass(24 * HOUR);
      lines.push(...(await promoteLine(d, '1.4.1', 'prod')));
      const approved = await approvePromotion(await d.as(CAROL), { id: d.facts['1.4.1/prod'] ?? '', comment: 'first release of the quarter' });
      lines.push(`$ custody approve ${approved.id} --as ${CAROL}`, outcomeLine(approved));
      return lines.join('\n');
    },
  },
  {
    title: 'Build 1.4.2 the next morning, and promote it to dev; staging refuses it until it has soaked an hour',
    async run(d) {
      // The CI key will turn out to have leaked a quarter of an hour from now: after 1.4.1's evidence, before 1.4.2's.
      d.facts['leak'] = new Date(d.clock.now().getTime() + 15 * MINUTE).toISOString();
      d.clock.pass(30 * MINUTE);
      const lines = await build(d, '1.4.2');
      lines.push(...(await promoteLine(d, '1.4.2', 'dev')));
      d.clock.pass(10 * MINUTE);
      const early = await promote(d.ctx, { artifact: `${APP}@1.4.2`, to: 'staging' });
      lines.push(`$ custody promote ${APP}@1.4.2 --to staging   # ${when(d)}, 10 minutes later`, outcomeLine(early));
      d.clock.pass(HOUR);
      lines.push(...(await promoteLine(d, '1.4.2', 'staging')));
      return lines.join('\n');
    },
  },
  {
    title: 'Prod a day later: held for a missing approval; the requester may not approve it; a second identity does',
    async run(d) {
      d.clock.pass(24 * HOUR);
      const held = await promote(d.ctx, { artifact: `${APP}@1.4.2`, to: 'prod', idempotencyKey: 'release-1.4.2-prod' });
      d.facts['1.4.2/prod'] = held.id;
      const lines = [`$ custody promote ${APP}@1.4.2 --to prod --idempotency-key release-1.4.2-prod   # ${when(d)}`, indent(promotionText(held)), `  (exit 3: awaiting approval)`];
      const retried = await promote(d.ctx, { artifact: `${APP}@1.4.2`, to: 'prod', idempotencyKey: 'release-1.4.2-prod' });
      lines.push('$ custody promote … --idempotency-key release-1.4.2-prod   # the CI job retries', `  the same promotion ${retried.id}, ${retried.state}: no second one`);
      try {
        await approvePromotion(d.ctx, { id: held.id });
      } catch (e) {
        if (!(e instanceof CustodyError) || e.code !== 'APPROVAL_REFUSED') throw e;
        lines.push(`$ custody approve ${held.id}   # as ${BOT}, who requested it`, `  refused (exit ${e.exitCode}, ${e.code}): ${e.message}`);
      }
      d.clock.pass(20 * MINUTE);
      const done = await approvePromotion(await d.as(CAROL), { id: held.id, comment: 'release notes reviewed' });
      lines.push(`$ custody approve ${held.id} --comment "release notes reviewed" --as ${CAROL}`, indent(promotionText(done).split('\n').filter((l) => /\u2192 prod|approvals|votes:|approve by|receipt/.test(l)).join('\n')));
      return lines.join('\n');
    },
  },
  {
    title: 'The deploy-time gate: custody verify --env prod, online and offline (no workspace)',
    async run(d) {
      const digest = d.facts['1.4.2'] ?? '';
      const online = await verifyEnvironment(d.ctx, { artifact: digest, environment: 'prod' });
      const out = join(d.dir, 'prod-receipts');
      const exported = await exportReceipts(d.ctx, { environment: 'prod', validFor: '24h' });
      await writeExport(out, exported.files);
      const offline = await verifyOffline({ artifact: digest, environment: 'prod', receiptsDir: out, keysDir: join(out, 'keys'), now: d.clock.now() });
      const stale = await verifyOffline({ artifact: digest, environment: 'prod', receiptsDir: out, keysDir: join(out, 'keys'), now: new Date(d.clock.now().getTime() + 25 * HOUR) });
      const old = await verifyEnvironment(d.ctx, { artifact: d.facts['1.4.1'] ?? '', environment: 'prod' });
      const receipt = (await verifyArtifact(d.ctx, { artifact: digest })).items.find((i) => i.predicateType === 'https://slsa.dev/verification_summary/v1' && i.statement?.predicate?.['custody'] !== undefined && JSON.stringify(i.statement.predicate['verifiedLevels']).includes('PROD'));
      const p = receipt?.statement?.predicate ?? {};
      return [
        `$ custody verify ${APP}@1.4.2 --env prod`,
        indent(deployText(online)),
        `  the receipt: ${JSON.stringify({ verifier: p['verifier'], resourceUri: p['resourceUri'], policy: p['policy'], verificationResult: p['verificationResult'], verifiedLevels: p['verifiedLevels'] })}`,
        `$ custody receipts export --env prod --out prod-receipts   # ${exported.files.length} files: head, receipts, evidence, log entries, keys`,
        `$ custody verify ${shortDigest(digest)}… --env prod --offline --receipts prod-receipts --keys prod-receipts/keys`,
        indent(deployText(offline)),
        '$ … the same, 25 hours later, with the head never refreshed (a freeze attack)',
        indent(deployText(stale)),
        `$ custody verify ${APP}@1.4.1 --env prod   # an older, once valid receipt replayed (a rollback attack)`,
        indent(deployText(old)),
      ].join('\n');
    },
  },
  {
    title: 'Tampering is caught: the signature checked against another build, and edited',
    async run(d) {
      const sig = await signArtifact(d.ctx, { artifact: `${APP}@1.4.2`, key: 'build-ci' });
      const pub = join(d.dir, 'build-ci.pub');
      await writeFile(pub, (await exportPublicKey(d.ctx, 'build-ci')).pem ?? '');
      const other = d.facts['1.4.1'] ?? '';
      const wrongArtifact = await verifyBundleFile({ bundle: sig.path, key: pub, target: other });
      const edited = join(d.dir, 'edited.sigstore.json');
      const json = JSON.parse(await readFile(sig.path, 'utf8')) as { messageSignature: { signature: string } };
      const bytes = Buffer.from(json.messageSignature.signature, 'base64');
      bytes[bytes.length - 1]! ^= 0x01;
      json.messageSignature.signature = bytes.toString('base64');
      await writeFile(edited, JSON.stringify(json));
      const flipped = await verifyBundleFile({ bundle: edited, key: pub, target: d.facts['1.4.2'] ?? '' });
      const show = (r: typeof flipped) => (r.result.ok ? 'Verified OK' : `exit 1, ${r.result.reasons.map((x) => x.code).join(', ')}`);
      return [
        `$ custody sign ${APP}@1.4.2 --key build-ci`,
        `  ${rel(d, sig.path)}   (Sigstore bundle v0.3)`,
        `$ custody verify-bundle --bundle ${rel(d, sig.path)} --key build-ci.pub ${shortDigest(other)}   # 1.4.1's digest`,
        `  ${show(wrongArtifact)}`,
        '$ custody verify-bundle --bundle edited.sigstore.json --key build-ci.pub sha256:…   (one bit of the signature flipped)',
        `  ${show(flipped)}`,
      ].join('\n');
    },
  },
  {
    title: 'Incident: the CI key leaked; everything it signed since the leak stops verifying, and the gate flips',
    async run(d) {
      d.clock.pass(3 * HOUR);
      // It leaked the morning 1.4.2 was built: 1.4.1's evidence is older, 1.4.2's is not.
      const since = new Date(d.facts['leak'] ?? '');
      await revokeKeyVersion(d.ctx, 'build-ci@1', { reason: 'compromised', compromisedSince: since.toISOString() });
      const refused = await verifyEnvironment(d.ctx, { artifact: d.facts['1.4.2'] ?? '', environment: 'prod' });
      return [
        `$ custody key revoke build-ci@1 --reason compromised --compromised-since ${since.toISOString()}   # ${when(d)}`,
        `$ custody verify ${APP}@1.4.2 --env prod`,
        indent(deployText(refused)),
        `  (exit ${refused.ok ? 0 : 1}: an admission controller now refuses 1.4.2)`,
      ].join('\n');
    },
  },
  {
    title: 'Rollback revalidates: 1.4.1 is checked against today\'s keys and policy (not versioning or soak), approved, and applied',
    async run(d) {
      const back = await rollback(d.ctx, { environment: 'prod' });
      const lines = [`$ custody rollback prod   # ${when(d)}`, outcomeLine(back)];
      const done = back.state === 'awaiting-approval' ? await approvePromotion(await d.as(CAROL), { id: back.id, comment: 'incident INC-42: roll back' }) : back;
      if (back.state === 'awaiting-approval') lines.push(`$ custody approve ${back.id} --as ${CAROL}`, outcomeLine(done));
      const ok = await verifyEnvironment(d.ctx, { artifact: d.facts['1.4.1'] ?? '', environment: 'prod' });
      lines.push(`$ custody verify ${APP}@1.4.1 --env prod`, indent(deployText(ok)));
      return lines.join('\n');
    },
  },
  {
    title: 'The board and the record',
    async run(d) {
      const board = await promotionStatus(d.ctx);
      const history = await promotionHistory(d.ctx, { ref: 'prod' });
      return [
        '$ custody status',
        indent(
          table(
            ['ENV', 'CURRENT', 'SINCE', 'BY', 'APPROVED BY'],
            board.environments.map((e) => [e.name, e.current ? `${e.current.artifact.name}@${e.current.artifact.version}${e.current.kind === 'rollback' ? ' (rollback)' : ''}` : '-', e.current?.since ?? '-', e.current?.by ?? '-', e.current?.approvedBy.join(', ') || '-']),
          ),
        ),
        '$ custody history prod',
        indent(table(['REQUESTED', 'ARTIFACT', 'KIND', 'STATE', 'APPROVED BY'], history.promotions.map((p) => [p.requestedAt, `${p.artifact.name}@${p.artifact.version}`, p.kind, p.state, p.approvals.join(', ') || '-']))),
      ].join('\n');
    },
  },
];

// Last: the log covers everything the steps above did.
STEPS.push(...LOG_STEPS);

export interface DemoRun {
  steps: { title: string; output: string }[];
  home: string;
}

/** A Tuesday morning in Berlin, far from any freeze window of the example policies. */
const DEMO_START = '2026-03-10T08:00:00.000Z';

/** Runs every step in a fresh temporary workspace; `onStep` prints as it goes. */
export async function runDemo(keep: boolean, onStep: (index: number, title: string, output: string) => void): Promise<DemoRun> {
  const dir = await mkdtemp(join(tmpdir(), 'custody-demo-'));
  const home = join(dir, '.custody');
  const steps: { title: string; output: string }[] = [];
  // The demo's own key-encryption key, in its temporary folder, unless one is configured.
  const kekVars = ['CUSTODY_KEK_FILE', 'CUSTODY_KEY_PASSPHRASE'] as const;
  const saved = kekVars.map((k) => process.env[k]);
  if (saved.every((v) => v === undefined)) {
    const kek = join(dir, 'demo.kek');
    await writeFile(kek, randomBytes(32), { mode: 0o600 });
    process.env['CUSTODY_KEK_FILE'] = kek;
  }
  const opened: Context[] = [];
  try {
    await initWorkspace(home, { identity: BOT });
    const clock = new DemoClock(DEMO_START);
    const ctx = await openWorkspace(home, { clock });
    opened.push(ctx);
    const state: DemoState = {
      ctx,
      dir,
      clock,
      facts: {},
      async as(identity) {
        const c = await openWorkspace(home, { clock, as: identity });
        opened.push(c);
        return c;
      },
    };
    for (const [i, step] of STEPS.entries()) {
      const output = await step.run(state);
      steps.push({ title: step.title, output });
      onStep(i, step.title, output);
    }
  } finally {
    for (const c of opened) await c.close();
    kekVars.forEach((k, i) => {
      const v = saved[i];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    });
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
  return { steps, home };
}
